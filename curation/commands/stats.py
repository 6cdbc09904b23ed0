"""python -m curation stats --workspace W --out DIR [--set NAME] [--tokenizer words|clip]"""
from __future__ import annotations

import argparse

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("stats", help="dataset statistics (domains, metric distributions, prompt lengths, terms)")
    add_workspace_arg(p)
    p.add_argument("--out", "-o", required=True, help="folder for the PNG figures and stats.json")
    p.add_argument("--set", dest="benchmark_set", help="only the triples of this benchmark set")
    p.add_argument("--tokenizer", choices=("words", "clip"), default="words",
                   help="prompt tokens: words+punctuation (default) or CLIP BPE (needs open_clip)")
    p.add_argument("--json", action="store_true")
    return p


def _human(s: dict) -> str:
    t = s["totals"]
    lines = [f"{t['images']} images, {t['triples']} triples, {t['videos']} videos, {t['prompts']} prompts"]
    for d, v in s["domains"].items():
        lines.append(f"  {d:<28} {v[s['unit']]:>6} {s['unit']}")
    pl = s["prompt_length"]["summary"]
    if pl.get("n"):
        lines.append(f"prompt length: mean {pl['mean']:.1f} {s['prompt_length']['tokenizer']} tokens")
    lines.append("figures: " + ", ".join(s["files"].values()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..stats import compute_stats

    with Workspace.open(args.workspace, create=False) as ws:
        s = compute_stats(ws, args.out, tokenizer=args.tokenizer, benchmark_set=args.benchmark_set)
    emit(args, s, _human)
    return 0
