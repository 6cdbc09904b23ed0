"""python -m curation filters --workspace W [--only quality,layout] [--set quality.blur_min=800] [--force] [--json]
    [--image-ids 1,2,3]"""
from __future__ import annotations

import argparse
import sys

from storage import Workspace

from ..cli import add_workspace_arg, emit, parse_ids


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("filters", help="run the heuristic image filters (quality, layout, saliency, text); "
                                       "results cached by parameter hash")
    add_workspace_arg(p)
    p.add_argument("--only", help="comma-separated filters to run (default: all four)")
    p.add_argument("--set", action="append", default=[], metavar="FILTER.PARAM=VALUE",
                   help="override a threshold, e.g. quality.blur_min=800 (repeatable)")
    p.add_argument("--force", action="store_true", help="recompute even when cached")
    p.add_argument("--image-ids", default=None, help="comma-separated image ids (default: every image)")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    return p


def _overrides(items: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for it in items:
        key, sep, val = it.partition("=")
        f, dot, k = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"error: --set expects FILTER.PARAM=VALUE, got {it!r}")
        try:
            out.setdefault(f.strip(), {})[k.strip()] = float(val)
        except ValueError:
            raise SystemExit(f"error: --set {it!r}: {val!r} is not a number") from None
    return out


def _human(r: dict) -> str:
    lines = [f"{r['images']} images: computed {r['computed']} filter results, {r['cached']} cached, "
             f"{len(r['errors'])} unreadable ({r['seconds']} s)"]
    if r.get("backends"):
        lines.append("backends: " + ", ".join(f"{k}={v}" for k, v in r["backends"].items()))
    for s in r["summary"]:
        lines.append(f"  {s['filter']:<9} passed {s['passed']:>6}  failed {s['failed']:>6}  "
                     f"unavailable {s['unavailable']:>6}")
    lines += [f"  ERROR {e['path']}: {e['error']}" for e in r["errors"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..filter_runs import run_filters
    from ..filters import FILTER_NAMES, params_for

    names = tuple(n.strip() for n in args.only.split(",")) if args.only else FILTER_NAMES
    try:
        params = params_for(_overrides(args.set))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        image_ids = parse_ids(args.image_ids, "--image-ids")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    show = None
    if not args.json and sys.stderr.isatty():
        def _show(fraction: float | None, msg: str) -> None:
            print(f"\r  {msg[-70:]:<70}", end="", file=sys.stderr, flush=True)
        show = _show
    with Workspace.open(args.workspace, create=False) as ws:
        try:
            report = run_filters(ws, names=names, params=params, force=args.force, progress=show,
                                 image_ids=image_ids)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if show:
        print(file=sys.stderr)
    emit(args, report, _human)
    return 0
