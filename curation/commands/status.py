"""python -m curation status --workspace W [--json]"""
from __future__ import annotations

import argparse

from storage import Workspace, catalog, labels

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("status", help="counts of what the workspace holds")
    add_workspace_arg(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    with Workspace.open(args.workspace, create=False) as ws:
        counts = catalog.counts(ws)
        # decided items per label, by the label rule the app, export and benchmark use
        for kind, words in (("image", ("good", "bad")), ("video", ("accept", "reject")),
                            ("triple", ("accept", "reject"))):
            decided = labels.label_counts(ws, kind)
            counts.update({f"{kind}s_{w}": decided.get(w, 0) for w in words})
    emit(args, counts, lambda c: "\n".join(f"{k:>15}: {v}" for k, v in c.items()))
    return 0
