"""python -m curation ingest --workspace W PATH..."""
from __future__ import annotations

import argparse

from storage import Workspace

from ..cli import add_workspace_arg, emit
from ..ingest import ingest


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("ingest", help="add folders of images/videos or triples manifests (CSV/JSONL)")
    add_workspace_arg(p)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--source", help="free-text source tag stored with each image")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    return p


def _human(r: dict) -> str:
    a = r["added"]
    lines = [f"added {a['images']} images, {a['videos']} videos, {a['triples']} triples; "
             f"skipped {r['skipped']} already ingested; {len(r['failed'])} failed"]
    lines += [f"  FAILED {f['path']}: {f['error']}" for f in r["failed"]]
    lines += [f"  warning {w['path']}: {w['warning']}" for w in r["warnings"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with Workspace.open(args.workspace) as ws:
        report = ingest(ws, args.paths, source=args.source)
    emit(args, report.as_dict(), _human)
    return report.exit_code
