"""python -m curation demo --workspace W [--seed N]"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_workspace_arg, emit
from ..demo import build_demo_workspace


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="generate the synthetic demo workspace (no downloads)")
    add_workspace_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    if (Path(args.workspace) / "studio.duckdb").exists():
        print(f"error: {args.workspace} already holds a workspace; choose a new folder for the demo")
        return 2
    report = build_demo_workspace(args.workspace, seed=args.seed)
    emit(args, report, lambda r: f"demo workspace ready at {args.workspace}: {r['added']}")
    return 0 if not report["failed"] else 1
