"""python -m curation score --workspace W [--metrics motionx,tsscore,...] [--force] [--json]"""
from __future__ import annotations

import argparse
import sys

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("score", help="compute the InnoAds-Bench video metrics for every ingested video")
    add_workspace_arg(p)
    p.add_argument("--metrics", default=None,
                   help="comma-separated subset of motionx,tsscore,productscore,aesscore,gmescore,crscore "
                        "(default: all)")
    p.add_argument("--force", action="store_true", help="re-score even when the store has a result")
    p.add_argument("--json", action="store_true", help="print {scored, results} as JSON")
    return p


def _human(payload: dict) -> str:
    lines = [f"scored {payload['scored']} video(s)"]
    for r in payload["results"]:
        val = "n/a" if r["status"] == "n/a" else (f"{100 * r['value']:.1f}%" if r["value"] is not None
                                                   else r["status"])
        extra = f"  ({r.get('reason')})" if r.get("reason") and r["status"] != "ok" else ""
        lines.append(f"{r['metric']:>12}  {val:>11}  {r['video']}"
                     f"{'  vs ' + r['image'] if r.get('image') else ''}{extra}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from metrics.registry import parse_metrics

    from ..scoring import run_scoring

    try:
        metrics = parse_metrics(args.metrics)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with Workspace.open(args.workspace, create=False) as ws:
        payload = run_scoring(ws, metrics, force=args.force)
    emit(args, payload, _human)
    return 0
