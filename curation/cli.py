"""`python -m curation <command>`: every module in curation/commands/ that defines `register` and
`run` is a sub-command, so a feature adds its command without touching this file."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Any, Callable

from storage import WorkspaceError

from . import commands


def add_workspace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", "-w", default="workspace", help="workspace folder (default: ./workspace)")


def emit(args: argparse.Namespace, payload: Any, human: Callable[[Any], str]) -> None:
    """Print JSON with --json, else the human rendering."""
    if getattr(args, "json", False):
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        print(human(payload))


def parse_ids(value: str | None, flag: str) -> list[int] | None:
    """A comma-separated id list ('1,2,3') or None; ValueError naming `flag` when an id is not an integer."""
    if not value:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m curation", description="Ad-VFX curation studio: batch commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{commands.__name__}.{mod_info.name}")
        if hasattr(mod, "register") and hasattr(mod, "run"):
            p = mod.register(sub)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
