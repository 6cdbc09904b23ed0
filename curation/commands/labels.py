"""python -m curation labels import --workspace W FILE [--annotator NAME] [--json]
python -m curation labels export --workspace W FILE [--kind image|video|triple|pair] [--json]"""
from __future__ import annotations

import argparse
import sys

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("labels", help="import or export labels in bulk (CSV or JSONL)")
    ss = p.add_subparsers(dest="labels_cmd", required=True, metavar="{import,export}")
    imp = ss.add_parser("import", help="append label events from a CSV/JSONL file (path or sha256, label, "
                                       "optional annotator, reasons, note)")
    add_workspace_arg(imp)
    imp.add_argument("file")
    imp.add_argument("--annotator", default="import", help="annotator for rows that name none (default: import)")
    imp.add_argument("--json", action="store_true")
    exp = ss.add_parser("export", help="write the label event log to FILE (.csv or .jsonl)")
    add_workspace_arg(exp)
    exp.add_argument("file")
    exp.add_argument("--kind", choices=("image", "video", "triple", "pair"), help="only events of this item kind")
    exp.add_argument("--json", action="store_true")
    return p


def _human_import(r: dict) -> str:
    lines = [f"{r['rows']} rows: {r['added']} labels added, {r['duplicates']} already imported, "
             f"{len(r['errors'])} rejected"]
    lines += [f"  line {e['line']}: {e['error']}" for e in r["errors"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..labels_io import export_labels, import_labels

    if args.labels_cmd == "import":
        with Workspace.open(args.workspace, create=False) as ws:
            try:
                rep = import_labels(ws, args.file, annotator=args.annotator).as_dict()
            except (FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        emit(args, rep, _human_import)
        return 1 if rep["errors"] and not rep["added"] and not rep["duplicates"] else 0
    with Workspace.open(args.workspace, create=False) as ws:
        n = export_labels(ws, args.file, item_kind=args.kind)
    emit(args, {"file": args.file, "events": n}, lambda r: f"wrote {r['events']} label events to {r['file']}")
    return 0
