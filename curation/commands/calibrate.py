"""python -m curation calibrate --workspace W [--seed 0] [--json]
python -m curation calibrate --workspace W --apply [--direction reject|accept|both] [--dry-run] [--json]
python -m curation calibrate --workspace W --undo [--json]

Exit codes: 0 done; 1 refused (too few labels, no calibration, nothing to undo), the reason on stderr or, with
--json, as {"error": ...} on stdout; 2 the workspace cannot be opened."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from storage import Workspace, WorkspaceError

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("calibrate", help="learn per-metric thresholds and a small model from the designers' "
                                         "accept/reject labels of videos; --apply labels unlabelled videos by them")
    add_workspace_arg(p)
    p.add_argument("--apply", action="store_true",
                   help="label the videos no person labelled that the latest calibration decides (annotator "
                        "rule:<id>, one batch)")
    p.add_argument("--direction", choices=("reject", "accept", "both"), default="both",
                   help="with --apply: which auto-decisions to write (default both)")
    p.add_argument("--dry-run", action="store_true", help="with --apply: count, write nothing")
    p.add_argument("--undo", action="store_true", help="take back the newest --apply batch, all of it")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the model (default 0)")
    p.add_argument("--json", action="store_true")
    return p


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _op(op: dict[str, Any], sign: str) -> str:
    if op.get("threshold") is None:
        best = op.get("best_precision")
        return f"none (best P {best:.2f})" if best is not None else "none: " + op.get("reason", "")
    return (f"{sign} {op['threshold']:.4g}: P {op['precision']:.2f} R {op['recall']:.2f} "
            f"decides {_pct(op['coverage'])}")


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _term(name: str) -> str:
    """A model term in words: "MotionXScore", "AesScore missing" (its missing-indicator)."""
    from ..calibrate import feature_label

    base = name.removesuffix(" (missing)")
    return feature_label(base) + (" missing" if base != name else "")


def _human_fit(r: dict[str, Any]) -> str:
    from ..calibrate import feature_label

    c, cv = r["label_counts"], r["cv_metrics"]
    lines = [f"calibration {r['id']}: {r['n_labels']} labelled videos ({c['accept']} accepted, {c['reject']} "
             f"rejected; {c['no_metrics']} more without metric values), {cv['folds']}-fold CV, seed {cv['seed']}",
             f"operating points: the most videos decided at out-of-fold precision >= {cv['target_precision']:g}", "",
             f"{'feature':<26} {'threshold':>10} {'AUC':>5} {'bal.acc (CV)':>12}  {'auto-reject':<46} auto-accept"]
    for name, t in r["thresholds"].items():
        lo, hi = ("<", ">=") if t["higher_is_better"] else (">", "<=")
        cut = f"{lo} {t['threshold']:.4g}"
        acc = f"{_num(t['balanced_accuracy'])} ({_num(t['cv_balanced_accuracy'])})"
        lines.append(f"{feature_label(name):<26} {cut:>10} {t['auc']:5.2f} {acc:>12}  "
                     f"{_op(t['reject']['operating_point'], lo):<46} {_op(t['accept']['operating_point'], hi)}")
    lines.append(f"{'model P(accept)':<26} {'':>10} {'':>5} {'':>12}  "
                 f"{_op(cv['reject']['operating_point'], '<'):<46} {_op(cv['accept']['operating_point'], '>=')}")
    coef = sorted(r["model"]["coefficients"].items(), key=lambda kv: -abs(kv[1]))[:8]
    lines += ["", "model (standardised logistic regression), largest weights: "
              + ", ".join(f"{_term(k)} {v:+.2f}" for k, v in coef),
              f"--apply labels by the model's operating points, as annotator rule:{r['id']}"]
    return "\n".join(lines)


def _human_apply(r: dict[str, Any]) -> str:
    verb = "would label" if r["dry_run"] else "labelled"
    ops = ", ".join(("no operating point to " + d) if t is None else
                    f"{d} if P(accept) {'<' if d == 'reject' else '>='} {t:.3f}"
                    for d, t in r["operating_points"].items())
    lines = [f"calibration {r['calibration']} ({ops}) {verb} {r['reject']} rejected and {r['accept']} accepted "
             f"of {r['candidates']} videos no person has labelled, as {r['annotator']}",
             f"  left to the designers: {r['undecided']} undecided, {r['no_metrics']} without metric values"
             + (f", {r['conflicting']} both operating points claim" if r["conflicting"] else "")]
    if r["stale_labels"]:
        lines.append("  note: the designers' labels changed since this calibration; run calibrate again to learn them")
    if r["session"]:
        lines.append(f"  one batch ({r['session']}): `python -m curation calibrate --undo` takes it back")
    return "\n".join(lines)


def _refuse(args: argparse.Namespace, msg: str, extra: dict[str, Any] | None = None, code: int = 1) -> int:
    if args.json:
        print(json.dumps({"error": msg, **(extra or {})}))
    else:
        print(f"error: {msg}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from ..calibrate import NotEnoughLabels, apply, calibrate, summary, undo_last_apply
    from ..jobs import Refused

    if (args.dry_run or args.direction != "both") and not args.apply:
        return _refuse(args, "--dry-run and --direction go with --apply", code=2)
    if args.apply and args.undo:
        return _refuse(args, "--apply and --undo are separate runs", code=2)
    try:
        with Workspace.open(args.workspace, create=False) as ws:
            if args.undo:
                r = undo_last_apply(ws)
                emit(args, r, lambda x: f"undid {x['undone']} labels of {x['annotator']} (batch {x['session']})")
            elif args.apply:
                emit(args, apply(ws, direction=args.direction, dry_run=args.dry_run), _human_apply)
            else:
                emit(args, summary(calibrate(ws, seed=args.seed)), _human_fit)
    except NotEnoughLabels as exc:
        return _refuse(args, str(exc), {"needed": exc.needed, "have": exc.counts})
    except Refused as exc:
        return _refuse(args, str(exc))
    except WorkspaceError as exc:
        return _refuse(args, str(exc), code=2)
    return 0
