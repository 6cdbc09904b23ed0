"""Concurrent annotators: N simulated annotators (gradio_client, one thread and one Client each) label M items
each against `python app.py` (a fresh process) on a workspace with >= 5,000 items; checks zero lost events,
zero duplicates, current-label view = event-log replay; reports label latency percentiles.

    python bench/bench_annotators.py [--annotators 10] [--items 500] [--pace 0.5]

Four rows: gradio_client and Gradio's plain HTTP API, each closed-loop (no think time) and paced.

Writes bench/results/annotators.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"


# (client, paced, annotators: None = --annotators). The one-annotator rows are each client's own floor: the
# latency of one label with nothing else running.
SCENARIOS = (("gradio_client", False, None), ("http", False, None), ("gradio_client", True, None), ("http", True, None),
             ("gradio_client", True, 1), ("http", True, 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--annotators", type=int, default=10)
    p.add_argument("--items", type=int, default=500, help="labels per annotator")
    p.add_argument("--bulk", type=int, default=5000, help="bulk image rows added to the demo workspace")
    p.add_argument("--pace", type=float, default=0.5,
                   help="seconds between one annotator's actions in the paced rows (a fast designer)")
    p.add_argument("--out", default=str(RESULTS / "annotators"))
    args = p.parse_args(argv)

    from curation.demo import build_demo_workspace
    from storage import Workspace
    from tests.reliability.loadgen import (add_bulk_images, check_against_db, free_port, percentile,
                                           run_annotators, start_app, wait_http)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_annot_") as tmp:
        root = Path(tmp) / "ws"
        build_demo_workspace(root, seed=0)
        with Workspace.open(root) as ws:
            add_bulk_images(ws, args.bulk)
            ids = [r[0] for r in ws.query("SELECT id FROM images ORDER BY id")]
        port = free_port()
        proc = start_app(root, port, Path(tmp) / "app.log")
        url = f"http://127.0.0.1:{port}/"
        results = []
        try:
            startup = wait_http(url, 300, proc)
            for client, paced, n_ann in SCENARIOS:
                pace = args.pace if paced else 0.0
                n_ann = n_ann or args.annotators
                load0 = os.getloadavg()[0]
                res = run_annotators(url, ids, annotators=n_ann, per_annotator=args.items if n_ann > 1 else
                                     min(args.items, 200), seed=7, undo_every=25, retry_every=50, client=client,
                                     pace_s=pace, name_prefix=f"{client}-{'paced' if paced else 'closed'}-{n_ann}")
                results.append((client, pace, n_ann, res, load0, os.getloadavg()[0]))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()
        with Workspace.open(root, read_only=True) as ws:
            n_items = ws.query_one("SELECT count(*) FROM images")[0] + ws.query_one("SELECT count(*) FROM videos")[0]
            for client, pace, n_ann, res, load0, load1 in results:
                chk = check_against_db(ws, res)
                lat = res.latencies_ms()
                rows.append({
                    "client": client, "annotators": n_ann, "pace_s": pace, "actions": len(res.acks),
                    "n_errors": len(res.errors),
                    "errors": res.errors[:10], "retries_sent": res.retries_sent,
                    "retries_duplicate": res.retries_duplicate, "check": chk,
                    "latency_ms": {q: round(percentile(lat, v), 1) for q, v in
                                   (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99))} | {
                                       "max": round(lat[-1], 1) if lat else None},
                    "wall_s": round(res.wall_s, 1), "actions_per_s": round(len(res.acks) / res.wall_s, 1),
                    "loadavg_1m": [round(load0, 2), round(load1, 2)]})
    doc = {"annotators": args.annotators, "per_annotator": args.items, "workspace_items": n_items,
           "app_startup_s": round(startup, 1), "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    faults = ("lost", "duplicate_keys", "current_view_mismatches")
    ok = all(r["n_errors"] == 0 and not any(r["check"][k] for k in faults) for r in rows)
    md = ["# Concurrent annotators", "",
          f"{args.annotators} simulated annotators (one thread and one client each) x {args.items} actions per row "
          f"(labels on random items of {n_items:,}, every 25th action an undo, every 50th label re-sent with the "
          f"same client_key) against `python app.py` (a separate process) on a {os.cpu_count()}-core "
          f"{platform.machine()} CPU, {doc['at']}. Clients: `gradio_client` (its Client.predict), and `http`, "
          "Gradio's documented HTTP API (POST /gradio_api/call/label, result from the SSE stream: what a browser "
          "or a script pays). Pace: `closed` sends the next action as soon as the last is acknowledged (a stress "
          f"test: 10 annotators with no think time); `{args.pace} s` starts one action every {args.pace} s per "
          "annotator (a very fast designer). The one-annotator rows are each client's floor: gradio_client's own "
          "round trip (a fresh HTTP connection per call, an event stream reopened per call, 50 ms polling "
          "loops in its reader threads) against the plain HTTP API on the same server.", "",
          "| client | annotators | pace | actions | errors | lost | duplicates | view mismatches | "
          "retries deduplicated | p50 ms | p95 ms | p99 ms | max ms | actions/s | load 1m |",
          "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        L, c = r["latency_ms"], r["check"]
        md.append(f"| {r['client']} | {r['annotators']} | {r['pace_s'] or 'closed'} | {r['actions']} | "
                  f"{r['n_errors']} | {c['lost']} | {c['duplicate_keys']} | {c['current_view_mismatches']} | "
                  f"{r['retries_duplicate']}/{r['retries_sent']} | {L['p50']} | {L['p95']} | {L['p99']} | "
                  f"{L['max']} | {r['actions_per_s']} | {r['loadavg_1m'][0]} → {r['loadavg_1m'][1]} |")
    md += ["", f"Integrity (every row): {'PASS' if ok else 'FAIL'}. p95 under 100 ms: " + ", ".join(
        f"{r['client']}/{r['annotators']}/{r['pace_s'] or 'closed'} {'yes' if r['latency_ms']['p95'] < 100 else 'no'}"
        for r in rows)
        + ".", ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
