"""Calibrating TSScore's spurious-text report on the field videos (issue 18, §3).

For every field video: TSScore against its own clean first frame as the reference (so texts already in the
picture are references, not spurious), listing the raw OCR candidates linked to no reference and the texts
reported after the persistence rule; then the same video with a "SAMPLE" watermark drawn onto every frame,
which must be reported. Writes bench/results/spurious_calibration.md.

    .venv/bin/python bench/spurious_calibration.py [--fieldmedia ../shared/fieldmedia] [--frames 32]
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.decode import decode_video  # noqa: E402
from media.encode import write_mp4  # noqa: E402
from media.overlay_draw import label_font  # noqa: E402
from metrics import tsscore as ts  # noqa: E402
from metrics.registry import Case  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def watermark(frames: list[np.ndarray], text: str = "SAMPLE") -> list[np.ndarray]:
    out = []
    for f in frames:
        im = Image.fromarray(f)
        h, w = f.shape[:2]
        d = ImageDraw.Draw(im)
        font = label_font(max(14, h // 14))
        d.text((w * 0.62, h * 0.86), text, font=font, fill=(245, 245, 245), stroke_width=2, stroke_fill=(20, 20, 20))
        out.append(np.asarray(im))
    return out


def score(path: Path, ref: Path, cfg: ts.TSConfig):
    v = decode_video(path, ts.requests(cfg))
    s = v.get(cfg.request())
    return ts.compute(s.frames, Case(image_path=str(ref)), cfg, frame_scale=s.scale)


def row(name: str, out) -> str:
    tr = out.trace or {}
    cands = tr.get("spurious_candidates") or []
    by: dict[str, list] = {}
    for c in cands:
        by.setdefault(ts.norm_text(c["text"]), []).append(c)
    cand_txt = "; ".join(f"{k} ×{len({c['frame'] for c in v})} ({np.mean([c['conf'] for c in v]):.2f})"
                         for k, v in sorted(by.items(), key=lambda kv: -len(kv[1]))[:6]) or "—"
    rep = ", ".join(f"{s['text_norm']} ×{len(s['frames'])} ({s['conf']:.2f})" for s in tr.get("spurious") or []) or "—"
    return f"| {name} | {cand_txt} | {rep} |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fieldmedia", default=str(REPO.parent / "shared" / "fieldmedia"))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "spurious_calibration.md"))
    args = ap.parse_args()
    root = Path(args.fieldmedia)
    cfg = ts.TSConfig(target_frames=args.frames)
    videos = sorted(p for sub in ("videos_generated", "videos_other", "videos_text") for p in (root / sub).glob("*.mp4"))
    lines = [f"# TSScore spurious text on the field videos ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
             f"{args.frames} samples)", "",
             f"Rule: >= {cfg.spurious_min_chars} characters, read in >= {cfg.spurious_min_frames} sampled frames, "
             f"mean confidence >= {cfg.spurious_conf}, "
             f"median box height >= {cfg.spurious_min_height:.0%} of the frame. Reference: each video's own clean "
             "first frame. Candidates: OCR readings linked to no reference text, as text ×frames (mean conf).", "",
             "| video | raw candidates | reported |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for p in videos:
            v = decode_video(p, [ts.TSConfig(target_frames=2).request()]).get(ts.TSConfig(target_frames=2).request())
            ref = Path(tmp) / f"{p.stem}_ref.png"
            Image.fromarray(v.frames[0]).save(ref)
            t0 = time.perf_counter()
            lines.append(row(f"{p.parent.name}/{p.name}", score(p, ref, cfg)))
            all_frames = decode_video(p, [ts.FrameRequest("all", max_side=768)])
            fr = all_frames.get(ts.FrameRequest("all", max_side=768))
            wm = Path(tmp) / f"{p.stem}_wm.mp4"
            write_mp4(wm, watermark(list(fr.frames)), fps=fr.nominal_fps or fr.fps)
            lines.append(row("… + SAMPLE watermark", score(wm, ref, cfg)))
            print(lines[-2], lines[-1], f"{time.perf_counter() - t0:.1f} s", sep="\n", flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
