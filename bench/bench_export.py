"""Export benchmark: time `export_splits` for N synthetic triples pointing at demo media, on this CPU.

    .venv/bin/python bench/bench_export.py [--n 2000] [--out bench/results/export.md] [--keep DIR]

Setup (not timed): the demo generator's media; N distinct videos and N/2 distinct images made from them
(each copy gets a unique trailer, so every file has its own content hash as real media would), inserted in
bulk into a fresh workspace with labels (every triple accepted) and six metric results per triple.
Timed: a first export (all formats: Parquet, JSONL, CSV, WebDataset; media hard-linked), the verify step on
its own, a re-run into the same folder (idempotent: media kept), a copy-mode export, and a tables-only
export. The table is written as Markdown and JSON next to each other.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.demo import generate_demo_media  # noqa: E402
from curation.export import export_splits  # noqa: E402
from curation.export_verify import verify_export  # noqa: E402
from curation.splits import ExportOptions  # noqa: E402
from storage import Workspace, catalog, taxonomy  # noqa: E402

METRICS = ("motionx", "tsscore", "productscore", "aesscore", "gmescore", "crscore")


def build(root: Path, n: int) -> Path:
    media = root / "media"
    demo = media / "demo"
    generate_demo_media(demo, seed=0)
    rows = [json.loads(line) for line in (demo / "manifest.jsonl").read_text().splitlines()]
    vids = [r for r in rows if r["video"]]
    imgs = [r for r in rows if not r["video"]]
    (media / "v").mkdir(parents=True)
    (media / "i").mkdir(parents=True)
    ws = Workspace.open(root / "ws")
    catalog.add_media_root(ws, str(media))
    tax = {f"{c['domain']} / {c['category']}": c["id"] for c in taxonomy.taxonomy(ws)}
    n_img = max(1, n // 2)
    images, videos, prompts, triples = [], [], [], []
    for k in range(n_img):
        src = imgs[k % len(imgs)]
        data = (demo / src["image"]).read_bytes() + f"#synthetic-image-{k}".encode()
        p = media / "i" / f"img_{k:06d}.png"
        p.write_bytes(data)
        images.append([k + 1, hashlib.sha256(data).hexdigest(), str(p), len(data), "PNG", 384, 384, "RGB", False,
                       tax[src["category"]], src["product"], "bench", (k + 1) if k % 10 else None])
        prompts.append([k + 1, hashlib.sha256(f"p{k}".encode()).hexdigest(),
                        f"The {src['product'].lower()} turns slowly while light sweeps across it; case {k}.", k + 1])
    for k in range(n):
        src = vids[k % len(vids)]
        data = (demo / src["video"]).read_bytes() + f"#synthetic-video-{k}".encode()
        p = media / "v" / f"vid_{k:06d}.mp4"
        p.write_bytes(data)
        img = (k % n_img) + 1
        videos.append([k + 1, hashlib.sha256(data).hexdigest(), str(p), len(data), "mp4", "h264", 16.0, 80, 384, 384,
                       5.0, src["model"], img, img])
        triples.append([k + 1, img, img, k + 1, src["model"], images[img - 1][9], images[img - 1][10]])
    with ws.transaction() as cur:
        cur.executemany("INSERT INTO images (id, sha256, path, bytes, format, width, height, mode, has_alpha, "
                        "category_id, product, source, dup_group) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", images)
        cur.executemany("INSERT INTO prompts (id, sha256, text, image_id) VALUES (?,?,?,?)", prompts)
        cur.executemany("INSERT INTO videos (id, sha256, path, bytes, container, codec, fps, frame_count, width, "
                        "height, duration, model, source_image_id, prompt_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        videos)
        cur.executemany("INSERT INTO triples (id, image_id, prompt_id, video_id, model, category_id, product) "
                        "VALUES (?,?,?,?,?,?,?)", triples)
        cur.executemany("INSERT INTO label_events (item_kind, item_id, value, annotator) VALUES ('video', ?, "
                        "'accept', 'bench')", [[k + 1] for k in range(n)])
        res = []
        for k in range(n):
            for j, m in enumerate(METRICS):
                ok = m not in ("aesscore", "crscore")
                res.append([m, "1.0", "bench", k + 1, 0 if m in ("motionx", "aesscore") else k + 1,
                             ((k * 7 + j * 13) % 100) / 100.0 if ok else None, "ok" if ok else "unavailable",
                             None if ok else "weights not available"])
        cur.executemany("INSERT INTO metric_results (metric, metric_version, params_hash, video_id, triple_id, "
                        "value, status, reason) VALUES (?,?,?,?,?,?,?,?)", res)
    ws.close()
    return root / "ws"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "export.md"))
    ap.add_argument("--keep", help="build under this folder and keep it (default: a temp folder, removed)")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_export_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t_setup, ws_path = timed(lambda: build(tmp, args.n))
        print(f"setup {t_setup:.1f} s", file=sys.stderr)
        rows = []
        with Workspace.open(ws_path) as ws:
            mb = sum(os.path.getsize(p) for (p,) in ws.query("SELECT path FROM videos UNION ALL "
                                                              "SELECT path FROM images")) / 1e6
            t, s = timed(lambda: export_splits(ws, "full", ExportOptions(), verify=False))
            rows.append(("first export, all formats, media hard-linked", t, s))
            out = Path(s["out_dir"])
            t, v = timed(lambda: verify_export(out))
            assert v["ok"], v["problems"]
            rows.append(("verify (re-hash every file, re-read every format)", t, s))
            sums = (out / "SHA256SUMS").read_text()
            t, s2 = timed(lambda: export_splits(ws, "full", ExportOptions(), verify=False))
            assert (out / "SHA256SUMS").read_text() == sums, "re-run changed the export"
            rows.append(("re-run into the same folder (idempotent)", t, s2))
            t, s3 = timed(lambda: export_splits(ws, "copy", ExportOptions(media="copy"), verify=False))
            rows.append(("first export, all formats, media copied", t, s3))
            t, s4 = timed(lambda: export_splits(ws, "tables", ExportOptions(formats=("parquet", "jsonl", "csv")),
                                                verify=False))
            rows.append(("tables only (Parquet, JSONL, CSV; media hard-linked)", t, s4))
        n = s["counts"]["selected"]
        cpu = platform.processor() or platform.machine()
        lines = [f"# Export benchmark ({args.n} triples)", "",
                 f"`bench/bench_export.py --n {args.n}` on {os.cpu_count()} CPU core(s) ({cpu}), Python "
                 f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}. {n} triples selected "
                 f"(train/val/test {'/'.join(str(v) for v in s['counts']['splits'].values())}); source media "
                 f"{mb:.0f} MB ({args.n} videos, {max(1, args.n // 2)} images). Setup (not timed): {t_setup:.1f} s.",
                 "", "| step | seconds | triples/s |", "|:--|--:|--:|"]
        for name, t, _ in rows:
            lines.append(f"| {name} | {t:.2f} | {n / t:.0f} |")
        lines.append("")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines), encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(
            {"n": args.n, "selected": n, "cores": os.cpu_count(), "source_mb": round(mb, 1),
             "setup_s": round(t_setup, 2), "steps": [{"step": a, "seconds": round(t, 3)} for a, t, _ in rows]},
            indent=2), encoding="utf-8")
        print("\n".join(lines))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
