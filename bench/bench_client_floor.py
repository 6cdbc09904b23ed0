"""The round trip of each client against a Gradio endpoint that does nothing: gradio_client's own cost,
apart from anything the studio does. Same Gradio version and server as the app; the endpoint returns its
input.

    python bench/bench_client_floor.py [--calls 200] [--clients 1 10]

Rows: gradio_client (Client.predict, queued and queue=False endpoints) and plain HTTP (POST
/gradio_api/run/<name>, the request a browser sends for a queue=False event), one client or N concurrent
clients in threads, closed loop. Writes bench/results/client_floor.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def serve(port: int):
    import gradio as gr

    with gr.Blocks() as demo:
        box, out = gr.Textbox(), gr.Textbox()
        box.submit(lambda x: x, box, out, api_name="echo")
        box.change(lambda x: x, box, out, api_name="echo_direct", queue=False)
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True)
    return demo


def one_client(kind: str, url: str, calls: int, out: list[float], barrier: threading.Barrier) -> None:
    if kind == "http":
        import httpx

        client = httpx.Client(timeout=30)

        def call():
            r = client.post(f"{url}gradio_api/run/echo_direct", json={"data": ["x"]})
            r.raise_for_status()
    else:
        from gradio_client import Client

        c = Client(url, verbose=False)
        name = "/echo" if kind == "gradio_client" else "/echo_direct"

        def call():
            c.predict("x", api_name=name)
    call()  # connection set-up is not a label's cost
    barrier.wait()
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)


def row(kind: str, url: str, clients: int, calls: int) -> dict:
    times: list[float] = []
    barrier = threading.Barrier(clients)
    threads = [threading.Thread(target=one_client, args=(kind, url, calls, times, barrier)) for _ in range(clients)]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    s = sorted(times)
    return {"client": kind, "clients": clients, "calls": len(s), "p50_ms": round(statistics.median(s), 1),
            "p95_ms": round(s[int(0.95 * (len(s) - 1))], 1), "calls_per_s": round(len(s) / wall, 1),
            "load_1m": f"{load0:.2f} -> {os.getloadavg()[0]:.2f}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200, help="calls per client")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--port", type=int, default=7893)
    args = ap.parse_args(argv)
    import gradio
    import gradio_client

    demo = serve(args.port)
    url = f"http://127.0.0.1:{args.port}/"
    rows = []
    try:
        for n in args.clients:
            for kind in ("gradio_client", "gradio_client_direct", "http"):
                rows.append(row(kind, url, n, args.calls if n == 1 else max(20, args.calls // n)))
                print(rows[-1], flush=True)
    finally:
        demo.close()
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
            "gradio": gradio.__version__, "gradio_client": gradio_client.__version__,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "client_floor.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    md = ["# Client floor: a Gradio endpoint that does nothing", "",
          f"{meta['machine']}, Python {meta['python']}, gradio {meta['gradio']}, gradio_client "
          f"{meta['gradio_client']}, {meta['when']}. The endpoint returns its input; every number is the "
          "client's and Gradio's own round trip. `gradio_client`: Client.predict on a queued endpoint; "
          "`gradio_client_direct`: on a queue=False endpoint (gradio_client still joins the queue and reads "
          "the event stream); `http`: POST /gradio_api/run/<name>, what the app's page sends for its key presses.",
          "", "| client | clients | calls | p50 ms | p95 ms | calls/s | load 1m |",
          "|---|---:|---:|---:|---:|---:|---|"]
    md += [f"| {r['client']} | {r['clients']} | {r['calls']} | {r['p50_ms']} | {r['p95_ms']} | {r['calls_per_s']} | "
           f"{r['load_1m']} |" for r in rows]
    (RESULTS / "client_floor.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
