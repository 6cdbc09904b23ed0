"""Per-metric time per video for a 5 s, 81-frame, 960x960 ad video (the demo generator's product-ad scene
at 960 px: a moving product, static headline and tagline), with the decode-only floor and a reference
implementation of OpenS2V's motion amplitude (Farneback at full resolution on every frame) in the same run.

    python bench/bench_metrics.py [--device cpu|cuda] [--repeats 3] [--out bench/results/metrics_cpu]

Writes <out>.json and <out>.md. Models run where the backends put them (ADVFX_DEVICE=<device>); metrics
whose weights are absent are reported as unavailable (their time is then only the check).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZE, N_FRAMES, FPS = 960, 81, 16


def make_media(d: Path) -> tuple[Path, Path]:
    import numpy as np

    from curation.demo import render_ad, render_video_frames
    from media.encode import write_mp4

    idx = 12                                    # "Glow cream": a jar, headline + tagline
    frames = render_video_frames(idx, "text_stays", seed=0, size=SIZE)
    frames = (frames + [frames[-1]])[:N_FRAMES]
    video = d / "bench_960.mp4"
    write_mp4(video, [np.ascontiguousarray(f) for f in frames], fps=FPS)
    image, _ = render_ad(idx, 0, size=SIZE)
    ref = d / "bench_960.png"
    image.save(ref)
    return video, ref


CASE = {"triple_id": 1, "prompt": "The jar sways gently.", "product": "Glow cream"}


def suite_job(video: Path, ref: Path):
    """The scoring job for the whole suite without the MLLM (what score_video runs per video)."""
    from curation.scoring import Job
    from metrics.registry import METRICS, get_spec

    specs = {m: get_spec(m) for m in METRICS if m != "crscore"}
    return Job(1, str(video), [{**CASE, "image_path": str(ref)}],
               todo=[(m, 0 if not s.per_triple else 1, "bench") for m, s in specs.items()])


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall seconds, the matching median process CPU seconds (all threads, so it can exceed wall
    time on an idle machine, but it barely moves when other processes share the CPU), the last output."""
    times, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpus), out


def alternating(fns: list, repeats: int) -> list[tuple[float, float, object]]:
    """`timed` for several short functions run in turn (after one untimed run of each), so that a cold
    first run or a change of machine load does not favour one of them."""
    for fn in fns:
        fn()
    runs = [[timed(fn, 1) for fn in fns] for _ in range(repeats)]
    return [(statistics.median(r[k][0] for r in runs), statistics.median(r[k][1] for r in runs), runs[-1][k][2])
            for k in range(len(fns))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="output path without extension (default bench/results/metrics_<device>)")
    args = ap.parse_args(argv)
    os.environ["ADVFX_DEVICE"] = args.device

    import av
    import cv2

    from curation.scoring import score_video
    from metrics import motionx
    from media.decode import FrameRequest, decode_video
    from metrics.registry import METRICS, Case, get_spec

    tmp = Path(tempfile.mkdtemp(prefix="bench_metrics_"))
    video, ref = make_media(tmp)
    rows: dict[str, dict] = {}

    def decode_only():
        with av.open(str(video)) as c:
            st = c.streams.video[0]
            st.thread_type = "AUTO"
            return sum(1 for _ in c.decode(st))

    # MotionX end to end (its own decode + flow) vs the decode-only floor, both short: in alternation
    mcfg = motionx.MotionXConfig()

    def mx():
        # as scoring runs it: frames stream into the flow while the video decodes
        v = decode_video(video, [], sinks=motionx.stream(mcfg))
        return motionx.run(v, None, mcfg)
    (t, c, n), (t_mx, c_mx, out_mx) = alternating([decode_only, mx], max(args.repeats, 9))
    assert n == N_FRAMES, n
    rows["decode-only (all frames, no pixel conversion)"] = {"seconds": t, "cpu_seconds": c}

    suite = [m for m in METRICS if m != "crscore"]
    specs = {m: get_spec(m) for m in suite}
    all_reqs = [r for s in specs.values() for r in s.requests()]
    t, c, _ = timed(lambda: decode_video(video, all_reqs), args.repeats)
    rows["decode for the suite (one pass, every request)"] = {"seconds": t, "cpu_seconds": c}
    rows["motionx (decode + flow at 256 px, streamed)"] = {"seconds": t_mx, "cpu_seconds": c_mx,
                                                           "value": out_mx.value, "status": out_mx.status}

    def reference():
        v = decode_video(video, [FrameRequest("all", gray=True)])
        return motionx.opens2v_motion_amplitude(v.get(FrameRequest("all", gray=True)).frames)
    t_ref, c, amp = timed(reference, 1)
    rows["reference: OpenS2V motion amplitude (Farneback, full res, every frame)"] = {"seconds": t_ref,
                                                                                      "cpu_seconds": c,
                                                                                      "value": amp}

    # each metric's compute on a shared decode, with a fresh case (no memo from another metric) and a segmenter
    # that has forgotten this video's frames and reference: a repeat pays what a new video pays
    from metrics.backends import BackendUnavailable, get_segmenter
    try:
        seg = get_segmenter()
    except BackendUnavailable:
        seg = None

    def forget() -> None:
        getattr(seg, "forget", lambda: None)()

    decoded = decode_video(video, all_reqs)
    for m in suite:
        def one(m=m):
            forget()
            return specs[m].run(decoded, Case(image_path=str(ref), **CASE))
        one()                                    # warm-up: model loading is not per-video time
        t, c, out = timed(one, args.repeats)
        rows[f"{m} (compute, shared decode)"] = {"seconds": t, "cpu_seconds": c, "value": out.value,
                                                 "status": out.status,
                                                 "backend": out.backend, "reason": out.reason}

    job = suite_job(video, ref)
    t_suite, c, res = timed(lambda: (forget(), score_video(job))[1], args.repeats)
    rows["whole suite without the MLLM (score_video: one decode + 5 metrics)"] = {
        "seconds": t_suite, "cpu_seconds": c, "statuses": {r["metric"]: r["status"] for r in res}}
    floor = rows["decode-only (all frames, no pixel conversion)"]["seconds"]
    goals = {
        "motionx_vs_decode_only": round(t_mx / floor, 2),
        "motionx_speedup_vs_reference": round(t_ref / t_mx, 1),
        "tsscore_seconds": round(rows["tsscore (compute, shared decode)"]["seconds"], 2),
        "suite_seconds": round(t_suite, 2),
    }
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    from metrics.backends import get_ocr

    ocr = get_ocr()
    meta = {"video": f"{SIZE}x{SIZE}, {N_FRAMES} frames, {FPS} fps (demo ad scene)", "device": args.device,
            "ocr_engine": f"{getattr(ocr, 'engine', '?')} on {getattr(ocr, 'device', '?')}",
            "cpus": os.cpu_count(), "loadavg_at_end": load, "python": platform.python_version(),
            "opencv": cv2.__version__, "pyav": av.__version__, "repeats": args.repeats}
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"metrics_{args.device}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "goals": goals, "rows": rows}, indent=2,
                                                   default=str))
    lines = [f"# Metrics benchmark ({args.device})", "",
             f"Video: {meta['video']}; {meta['cpus']} CPUs; OCR engine: {meta['ocr_engine']}; "
             f"load average at the end {load}; "
             f"median of {args.repeats} runs, each with the segmenter's per-image caches emptied "
             "(the reference: 1 run; decode-only and MotionX: "
             f"{max(args.repeats, 9)} runs in alternation after one untimed run of each).", "",
             "| step | wall s | CPU s (all threads) | value | status / backend |", "|---|---:|---:|---:|---|"]
    for k, r in rows.items():
        val = r.get("value")
        lines.append(f"| {k} | {r['seconds']:.3f} | {r.get('cpu_seconds', float('nan')):.3f} | "
                     f"{'' if val is None else f'{val:.3f}'} | "
                     f"{r.get('status', '')} {r.get('backend') or ''} |")
    lines += ["", f"MotionX / decode-only: {goals['motionx_vs_decode_only']}x (goal <= 2x); "
              f"reference / MotionX: {goals['motionx_speedup_vs_reference']}x (goal >= 3x); "
              f"TSScore {goals['tsscore_seconds']} s (goal < 8 s); suite {goals['suite_seconds']} s "
              "(goal < 15 s CPU, < 1.5 s GPU)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
