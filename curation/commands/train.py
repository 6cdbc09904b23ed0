"""python -m curation train --workspace W [--features auto|classical|clip+dino] [--heuristics]
[--pseudo-weight 0.25] [--folds 5] [--json]"""
from __future__ import annotations

import argparse
import sys

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train the image-quality classifier from the current labels; stores the "
                                     "run and writes predictions")
    add_workspace_arg(p)
    p.add_argument("--features", default="auto",
                   help="auto (CLIP if present + DINO, else the classical descriptor), classical, clip, dino, "
                        "clip+dino ...")
    p.add_argument("--heuristics", action="store_true", help="append the heuristic filter measurements")
    p.add_argument("--pseudo-weight", type=float, default=0.0,
                   help="add heuristic pseudo-labels of unlabelled images at this sample weight (0 = off)")
    p.add_argument("--estimators", default="logreg,ridge", help="estimators compared in CV (best PR-AUC wins)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print {run, n_labels, roc_auc, pr_auc, features, ...}")
    return p


def _human(r: dict) -> str:
    lines = [f"run {r['run']}: {r['n_labels']} labels ({r['label_counts']['used_good']} good, "
             f"{r['label_counts']['used_bad']} bad), features {r['features']}",
             f"best {r['estimator']}: ROC-AUC {r['roc_auc']:.3f}  PR-AUC {r['pr_auc']:.3f}  "
             f"F1 {r['f1']:.3f} at threshold {r['threshold']:.3f}"]
    for name, m in r["compared"].items():
        lines.append(f"  {name:<7} ROC-AUC {m['roc_auc']:.3f}  PR-AUC {m['pr_auc']:.3f}")
    lines.append(f"predictions written for {r['n_predictions']} images; model {r['model_path']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..classifier import NotEnoughLabels, train
    from ..jobs import Cancelled

    show = None
    if not args.json and sys.stderr.isatty():
        def _show(frac: float, msg: str) -> None:
            print(f"\r  {frac:4.0%} {msg[:70]:<70}", end="", file=sys.stderr, flush=True)
        show = _show
    with Workspace.open(args.workspace, create=False) as ws:
        try:
            r = train(ws, features=args.features, heuristics=args.heuristics, pseudo_weight=args.pseudo_weight,
                      estimators=tuple(e.strip() for e in args.estimators.split(",") if e.strip()),
                      folds=args.folds, seed=args.seed, progress=show)
        except NotEnoughLabels as exc:
            if show:
                print(file=sys.stderr)
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except (ValueError, Cancelled) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            from metrics.backends import BackendUnavailable
            if isinstance(exc, BackendUnavailable):
                print(f"error: {exc}", file=sys.stderr)
                return 2
            raise
    if show:
        print(file=sys.stderr)
    emit(args, r, _human)
    return 0
