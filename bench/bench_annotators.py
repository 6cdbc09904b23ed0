"""Concurrent annotators: N simulated annotators (gradio_client, one thread and one Client each) label M items
each against `python app.py` (a fresh process) on a workspace with >= 5,000 items; checks zero lost events,
zero duplicates, current-label view = event-log replay; reports label latency percentiles.

    python bench/bench_annotators.py [--annotators 10] [--items 500]

Writes bench/results/annotators.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--annotators", type=int, default=10)
    p.add_argument("--items", type=int, default=500, help="labels per annotator")
    p.add_argument("--bulk", type=int, default=5000, help="bulk image rows added to the demo workspace")
    p.add_argument("--out", default=str(RESULTS / "annotators"))
    args = p.parse_args(argv)

    from curation.demo import build_demo_workspace
    from storage import Workspace
    from tests.reliability.loadgen import (add_bulk_images, check_against_db, free_port, percentile,
                                           run_annotators, start_app, wait_http)

    with tempfile.TemporaryDirectory(prefix="bench_annot_") as tmp:
        root = Path(tmp) / "ws"
        build_demo_workspace(root, seed=0)
        with Workspace.open(root) as ws:
            add_bulk_images(ws, args.bulk)
            ids = [r[0] for r in ws.query("SELECT id FROM images ORDER BY id")]
        port = free_port()
        t0 = time.time()
        proc = start_app(root, port, Path(tmp) / "app.log")
        url = f"http://127.0.0.1:{port}/"
        try:
            startup = wait_http(url, 300, proc)
            load0 = os.getloadavg()[0]
            res = run_annotators(url, ids, annotators=args.annotators, per_annotator=args.items, seed=7,
                                 undo_every=25, retry_every=50)
            load1 = os.getloadavg()[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()
        with Workspace.open(root, read_only=True) as ws:
            chk = check_against_db(ws, res)
            n_items = ws.query_one("SELECT count(*) FROM images")[0] + ws.query_one("SELECT count(*) FROM videos")[0]
    lat = res.latencies_ms()
    doc = {"annotators": args.annotators, "per_annotator": args.items, "workspace_items": n_items,
           "actions": len(res.acks), "errors": res.errors[:20], "n_errors": len(res.errors),
           "retries_sent": res.retries_sent, "retries_duplicate": res.retries_duplicate, "check": chk,
           "latency_ms": {"p50": round(percentile(lat, 50), 1), "p90": round(percentile(lat, 90), 1),
                          "p95": round(percentile(lat, 95), 1), "p99": round(percentile(lat, 99), 1),
                          "max": round(lat[-1], 1) if lat else None},
           "wall_s": round(res.wall_s, 1), "actions_per_s": round(len(res.acks) / res.wall_s, 1),
           "app_startup_s": round(startup, 1), "loadavg_1m": [round(load0, 2), round(load1, 2)],
           "cpu_count": os.cpu_count(), "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    L = doc["latency_ms"]
    ok = chk["lost"] == 0 and chk["duplicate_keys"] == 0 and chk["current_view_mismatches"] == 0
    md = ["# Concurrent annotators", "",
          f"{args.annotators} simulated annotators (gradio_client, one thread and Client each) x {args.items} actions "
          f"(labels on random items of {n_items:,}, every 25th action an undo, every 50th label re-sent with the "
          f"same client_key) against `python app.py` on a {os.cpu_count()}-core CPU (1-min load average "
          f"{doc['loadavg_1m'][0]} → {doc['loadavg_1m'][1]}: the machine was shared).", "",
          "| actions | errors | lost | duplicates | view mismatches | retries deduplicated | p50 ms | p95 ms | "
          "p99 ms | max ms | actions/s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
          f"| {len(res.acks)} | {len(res.errors)} | {chk['lost']} | {chk['duplicate_keys']} | "
          f"{chk['current_view_mismatches']} | {res.retries_duplicate}/{res.retries_sent} | {L['p50']} | {L['p95']} | "
          f"{L['p99']} | {L['max']} | {doc['actions_per_s']} |", "",
          f"Integrity: {'PASS' if ok else 'FAIL'}; p95 target 100 ms: {'met' if L['p95'] < 100 else 'NOT met'}.",
          ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
