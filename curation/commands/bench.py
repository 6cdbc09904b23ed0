"""python -m curation bench --workspace W --out DIR [--set FILE] [--name SET] [--model-types ...]
   python -m curation bench import --workspace W FILE
   python -m curation bench make-set --workspace W --out FILE [--per-category 4]"""
from __future__ import annotations

import argparse
import sys

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="InnoAds-Bench: leaderboard, radar, per-domain, agreement, user study",
                       description="Run the benchmark (no sub-command), `bench import FILE` a benchmark-set "
                                   "file, or `bench make-set --out FILE` to draft one from the workspace.")
    add_workspace_arg(p)
    p.add_argument("--out", "-o", help="report folder")
    p.add_argument("--set", dest="set_file", help="benchmark-set JSON file to import before running")
    p.add_argument("--name", help="benchmark set (triples.benchmark_set) to run; default: the only one")
    p.add_argument("--model-types", help="MODEL=TYPE,... or a JSON file mapping models to types "
                                         "(e.g. open-source / commercial)")
    p.add_argument("--metrics", help="comma-separated subset of the metrics (default: the six and CLIPScore, "
                                     "which is not one of the paper's six)")
    p.add_argument("--no-score", action="store_true", help="report cached scores only; score nothing")
    p.add_argument("--allow-mixed", action="store_true",
                   help="rank models even when one metric column was scored by different backends (cells marked)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(action="run")
    acts = p.add_subparsers(dest="action", metavar="{import,make-set}")
    imp = acts.add_parser("import", help="ingest a benchmark-set file (cases, videos, model types)")
    add_workspace_arg(imp)
    imp.add_argument("file", help="benchmark-set JSON file")
    imp.add_argument("--json", action="store_true")
    mk = acts.add_parser("make-set", help="draft a set file: N cases per subcategory from the workspace")
    add_workspace_arg(mk)
    mk.add_argument("--out", "-o", required=True, help="set file to write")
    mk.add_argument("--name", default="innoads-bench")
    mk.add_argument("--per-category", type=int, default=4, help="cases per subcategory (paper: 4)")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--json", action="store_true")
    return p


def _human(s: dict) -> str:
    lines = [f"benchmark {s['benchmark_set'] or '(all triples)'}: {s['cases']} cases x {len(s['models'])} models"]
    lines += [f"  warning: {w}" for w in s["warnings"]]
    lines += [f"  {n}" for n in s["unavailable"]]
    lines.append(f"  report: {s['files']['report_md']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..benchset import BenchSetError, import_set, make_set, parse_model_types

    try:
        if args.action == "import":
            with Workspace.open(args.workspace) as ws:
                r = import_set(ws, args.file)
            emit(args, r, lambda r: f"imported set {r['name']}: {r['cases']} cases, {r['ingest']['added']} added, "
                                    f"{len(r['ingest']['failed'])} failed" + "".join(f"\n  {p}" for p in r["problems"])
                                    + "".join(f"\n  FAILED {f['path']}: {f['error']}" for f in r["ingest"]["failed"]))
            return 1 if r["ingest"]["failed"] or r["problems"] else 0
        if args.action == "make-set":
            with Workspace.open(args.workspace, create=False) as ws:
                r = make_set(ws, args.out, name=args.name or "innoads-bench", per_category=args.per_category,
                             seed=args.seed)
            emit(args, r, lambda r: f"wrote {r['file']}: {r['cases']} of {r['target']} cases; "
                                    f"{len(r['categories_short'])} subcategories short")
            return 0
        if not args.out:
            print("error: bench needs --out DIR", file=sys.stderr)
            return 2
        from ..benchmark import run_benchmark

        from ..jobs import to_stderr as progress

        with Workspace.open(args.workspace, create=False) as ws:
            s = run_benchmark(ws, args.out, benchmark_set=args.name, set_file=args.set_file,
                              model_types=parse_model_types(args.model_types),
                              metrics=[m.strip() for m in args.metrics.split(",")] if args.metrics else None,
                              score=not args.no_score, n_boot=args.bootstrap, seed=args.seed, progress=progress,
                              allow_mixed=args.allow_mixed)
    except (BenchSetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    emit(args, s, _human)
    return 0
