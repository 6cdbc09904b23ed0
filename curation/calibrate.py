"""Video filtering learned from the designers' accept/reject labels (`python -m curation calibrate`).

    rec = calibrate(ws)          # fit, cross-validate, store; NotEnoughLabels when a class is short
    rep = apply(ws, direction="both", dry_run=False)   # label unlabelled videos as rule:<calibration id>
    rep = undo_last_apply(ws)    # one undo takes the whole newest batch back

Training labels: each video's decision by the one label rule (storage.labels.resolved_labels) where a person
decided it; a decision made by a rule's label (by_rule) is never learnt from, or rules would learn themselves.
Features: every current metric value (curation.current, storage.metric_results CURRENT) and the components its
trace stores (metric_results.TRACE_COMPONENTS), per video, a per-triple metric averaged over the video's triples.
A labelled video without any current ok result is left out (counted as no_metrics).
Fitted: a threshold per feature (calibrate_fit.MetricThreshold) and a logistic model over all of them
(calibrate_fit.MetricModel). Both are cross-validated in stratified k folds, k = min(5, minority class): a
feature's folds refit its direction, the model's give out-of-fold P(accept). On those out-of-fold scores each
direction ("auto-reject": score below t, "auto-accept": at or above) gets its precision / recall / coverage curve
and an operating point: the most coverage at precision >= 0.9, or none, said so. `apply` uses the model's.
The operating points are chosen on the same out-of-fold scores they are reported on: with few labels their
precision is optimistic; the curves show how fast it falls off.
"""
from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np

from metrics.registry import METRICS, display_names
from storage import Workspace, calibrations, labels, metric_results, videos
from storage.metric_results import TRACE_COMPONENTS

from .calibrate_fit import (TARGET_PRECISION, MetricModel, MetricThreshold, direction_curve, operating_point,
                            stratified_folds, thin)
from .current import current_keys
from .jobs import Progress, Refused, check, quiet

VERSION = "calibrate-1"
MIN_PER_CLASS = 3       # the fewest per class for which every one of >= 3 folds holds out a video of each class
MAX_FOLDS = 5
MODEL = "model"         # the model's entry beside the features in curves and operating points
DIRECTIONS = ("reject", "accept")


class NotEnoughLabels(Refused, ValueError):
    """Too few labelled videos with metric values in a class; `needed` says how many more of each."""

    def __init__(self, counts: dict[str, int], needed: dict[str, int]) -> None:
        self.counts, self.needed = counts, needed
        super().__init__(
            f"too few labelled videos with metric values to calibrate: {counts['accept']} accepted, "
            f"{counts['reject']} rejected; at least {MIN_PER_CLASS} of each are needed "
            f"({needed['accept']} more accepted, {needed['reject']} more rejected)")


def rule_annotator(calibration_id: int) -> str:
    return f"{labels.RULE_PREFIX}{int(calibration_id)}"


def feature_order() -> list[str]:
    """Every feature name a calibration can have, in the benchmark's metric order, components after their metric."""
    return [name for m in METRICS for name in [m, *(f"{m}.{c}" for c in TRACE_COMPONENTS.get(m, {}))]]


def feature_label(name: str) -> str:
    """A feature's name in tables: "MotionX", "MotionX amplitude"."""
    metric, _, comp = name.partition(".")
    disp = display_names().get(metric, metric)
    return f"{disp} {comp.replace('_', ' ')}" if comp else disp


def _matrix(cols: dict[str, np.ndarray], ids: list[int] | np.ndarray, names: list[str]) -> np.ndarray:
    """videos x features (NaN where missing) from metric_results.video_features' columns."""
    ids = np.asarray(ids, dtype=np.int64)
    X = np.full((len(ids), len(names)), np.nan)
    order = np.argsort(ids)
    pos = np.searchsorted(ids, cols["video_id"], sorter=order).clip(0, max(len(ids) - 1, 0))
    row = order[pos] if len(ids) else pos
    known = (ids[row] == cols["video_id"]) if len(ids) else np.zeros(len(pos), bool)
    for j, name in enumerate(names):
        metric = name.partition(".")[0]
        take = known & (cols["metric"] == metric)
        X[row[take], j] = cols["value" if name == metric else name][take]
    return X


def _with_values(cols: dict[str, np.ndarray], names: list[str] | None = None) -> set[int]:
    """Videos with at least one current ok value (of these features' metrics, when given)."""
    keep = np.ones(len(cols["metric"]), bool) if names is None else np.isin(
        cols["metric"], list({n.partition(".")[0] for n in names}))
    return {int(v) for v in np.unique(cols["video_id"][keep])}


def _people_labels(ws: Workspace) -> tuple[dict[int, dict[str, Any]], str]:
    """The videos people decided (by the one label rule; rule-decided ones left out) and a hash of them."""
    human = {i: r for i, r in labels.resolved_labels(ws, "video").items() if not r["by_rule"]}
    text = "\n".join(f"{i}:{r['label']}" for i, r in sorted(human.items()))
    return human, hashlib.sha256(text.encode()).hexdigest()[:16]


def training_data(ws: Workspace, keys: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The labelled videos calibrate learns from: ids, y (1 accept), X, feature names, counts, label hash."""
    keys = keys if keys is not None else current_keys(ws)
    cols = metric_results.video_features(ws, [k["key"] for k in keys.values()])
    human, label_hash = _people_labels(ws)
    have = _with_values(cols)
    ids = [i for i in sorted(human) if i in have]
    y = np.array([1 if human[i]["label"] == "accept" else 0 for i in ids], dtype=np.int64)
    X = _matrix(cols, ids, feature_order())
    # a feature no labelled video has (a metric never scored here) is left out
    present = ~np.isnan(X).all(axis=0) if len(ids) else np.zeros(X.shape[1], bool)
    names = [n for n, p in zip(feature_order(), present) if p]
    X = X[:, present]
    counts = {"accept": int(y.sum()), "reject": int(len(y) - y.sum()), "no_metrics": len(human) - len(ids)}
    return {"ids": ids, "y": y, "X": X, "features": names, "counts": counts,
            "label_hash": label_hash, "n_human": len(human),
            "metric_keys": {m: k["key"] for m, k in keys.items()}, "cols": cols}


def _directions(s: np.ndarray, y: np.ndarray, to_raw: float = 1.0, withhold: str | None = None) -> dict[str, Any]:
    """Both directions' thinned curves and operating points; thresholds in the feature's own units."""
    out = {}
    for d in DIRECTIONS:
        curve = direction_curve(s, y, d)
        op = operating_point(curve)
        if withhold and op["threshold"] is not None:
            op = {"threshold": None, "index": None, "reason": withhold}
        out[d] = {"curve": thin(curve, op["index"], to_raw=to_raw),
                  "operating_point": {k: (v * to_raw if k == "threshold" and v is not None else v)
                                      for k, v in op.items() if k != "index"}}
    return out


def _fit_feature(x: np.ndarray, y: np.ndarray, splits: list) -> dict[str, Any] | None:
    ok = ~np.isnan(x)
    if len(np.unique(y[ok])) < 2:
        return None
    est = MetricThreshold().fit(x, y)
    signs = []
    pred = np.full(len(x), -1)          # out-of-fold: 1 accept, 0 reject, -1 no value (or a fold it cannot fit)
    for tr, te in splits:
        if len(np.unique(y[tr][ok[tr]])) < 2:
            signs.append(None)
            continue
        f = MetricThreshold().fit(x[tr], y[tr])
        signs.append(f.higher_is_better_)
        pred[te] = f.predict(x[te])
    per_class = [(pred[(pred >= 0) & (y == c)] == c).mean() for c in (0, 1) if ((pred >= 0) & (y == c)).any()]
    stable = all(s == est.higher_is_better_ for s in signs)
    rec = {"threshold": est.threshold_, "higher_is_better": est.higher_is_better_, "n": est.n_, "auc": est.auc_,
           "balanced_accuracy": est.balanced_accuracy_,
           "cv_balanced_accuracy": float(np.mean(per_class)) if len(per_class) == 2 else None,
           "direction_stable": stable}
    # a fixed threshold has only its direction to learn, so its out-of-fold scores are the value turned the way
    # the folds turned it; when folds disagree on the way, the feature says nothing reliable to act on
    rec.update(_directions(est.decision_function(x), y, to_raw=est.sign_,
                           withhold=None if stable else "the direction flips between folds"))
    return rec


def calibrate(ws: Workspace, *, seed: int = 0, keys: dict[str, dict[str, Any]] | None = None,
              progress: Progress | None = None, cancel: threading.Event | None = None) -> dict[str, Any]:
    """Fit, cross-validate and store a calibration, with its model's P(accept) for every scored video (out of
    fold for the training videos); returns it as stored (with id and created_at). Follows curation.jobs'
    protocol: progress(fraction, message), and `cancel` checked between steps (nothing is stored then)."""
    say = progress or quiet
    say(0.0, "reading the designers' video labels and the current metric values")
    data = training_data(ws, keys)
    counts, X, y, names = data["counts"], data["X"], data["y"], data["features"]
    needed = {c: max(0, MIN_PER_CLASS - counts[c]) for c in ("accept", "reject")}
    if any(needed.values()):
        raise NotEnoughLabels(counts, needed)
    k = min(MAX_FOLDS, counts["accept"], counts["reject"])
    splits = stratified_folds(y, k, seed)
    say(0.3, f"fitting a threshold per feature ({len(names)} features, {len(y)} labelled videos, {k} folds)")
    thresholds = {}
    for j, name in enumerate(names):
        rec = _fit_feature(X[:, j], y, splits)
        if rec is not None:
            thresholds[name] = rec
    check(cancel, "calibration")
    say(0.6, "fitting the model over all features")
    oof = np.zeros(len(y))
    for tr, te in splits:
        oof[te] = MetricModel().fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    model = MetricModel().fit(X, y)
    check(cancel, "calibration")
    terms = names + [f"{names[j]} (missing)" for j in model.indicators_]
    rec = {"version": VERSION, "item_kind": "video", "n_labels": int(len(y)), "label_counts": counts,
           "label_hash": data["label_hash"], "metric_keys": data["metric_keys"], "thresholds": thresholds,
           "model": {"features": names, "coefficients": dict(zip(terms, model.coef_.tolist())), **model.to_dict()},
           "cv_metrics": {"folds": k, "seed": seed, "target_precision": TARGET_PRECISION, "score": "P(accept)",
                          **_directions(oof, y)}}
    say(0.9, "storing the calibration and every scored video's P(accept)")
    stored = calibrations.record(ws, rec, _scores(data, model, oof))
    say(1.0, f"calibration {stored['id']}: {len(y)} labelled videos, {stored['n_scores']} videos scored")
    return {**stored, **rec}


def _scores(data: dict[str, Any], model: MetricModel, oof: np.ndarray) -> dict[str, np.ndarray]:
    """P(accept) for every video with a value of the model's metrics: the out-of-fold one for the training videos
    (the final model has seen their labels), the final model's for the rest."""
    names, cols = data["features"], data["cols"]
    ids = np.array(sorted(_with_values(cols, names)), dtype=np.int64)
    p = model.predict_proba(_matrix(cols, ids, names))[:, 1] if len(ids) else np.zeros(0)
    trained = dict(zip(data["ids"], oof))
    fold = np.array([int(v) in trained for v in ids], dtype=bool)
    p[fold] = [trained[int(v)] for v in ids[fold]]
    return {"video_id": ids, "p_accept": p, "out_of_fold": fold}


def summary(rec: dict[str, Any]) -> dict[str, Any]:
    """What `calibrate --json` prints: the stored record, plus every operating point in one place."""
    ops = {name: {d: t[d]["operating_point"] for d in DIRECTIONS} for name, t in rec["thresholds"].items()}
    ops[MODEL] = {d: rec["cv_metrics"][d]["operating_point"] for d in DIRECTIONS}
    return {**rec, "operating_points": ops}


# -- applying a calibration ---------------------------------------------------------------------

def apply(ws: Workspace, *, direction: str = "both", dry_run: bool = False, calibration_id: int | None = None,
          keys: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Label, as annotator rule:<id>, the videos no person has labelled that the calibration's model decides at
    its operating points, all in one batch. Refused when there is no calibration or the metrics it was fitted on
    are no longer the current ones. The report's "videos" lists, per direction, the videos it labels (or, with
    dry_run, would label), the surest first, with their P(accept)."""
    cal = calibrations.get(ws, calibration_id)
    if cal is None:
        raise Refused("no calibration yet: run `python -m curation calibrate` first")
    keys = keys if keys is not None else current_keys(ws)
    names = cal["model"]["features"]
    used = {n.partition(".")[0] for n in names}
    changed = sorted(m for m in used if cal["metric_keys"].get(m) != keys.get(m, {}).get("key"))
    if changed:
        raise Refused(f"calibration {cal['id']} was fitted on other versions of {', '.join(changed)} than the "
                      "current ones: run `python -m curation calibrate` again")
    who = rule_annotator(cal["id"])
    mine = {int(r["item_id"]) for r in labels.current_labels(ws, "video") if r["annotator"] == who}
    people = labels.human_labelled(ws, "video")
    todo = [int(v) for v, _, _ in videos.hashes_and_paths(ws) if v not in people and v not in mine]
    cols = metric_results.video_features(ws, [k["key"] for k in keys.values()])
    have = _with_values(cols, names)
    with_values = [v for v in todo if v in have]
    ops = {d: cal["cv_metrics"][d]["operating_point"]["threshold"] for d in DIRECTIONS
           if direction in (d, "both")}
    p = (MetricModel.from_dict(cal["model"]).predict_proba(_matrix(cols, with_values, names))[:, 1]
         if with_values else np.zeros(0))
    rej = p < ops["reject"] if ops.get("reject") is not None else np.zeros(len(p), bool)
    acc = p >= ops["accept"] if ops.get("accept") is not None else np.zeros(len(p), bool)
    # the two operating points come from different ends of one curve; should they overlap, a video both would
    # decide is left to the designers
    both = rej & acc
    decided = {v: ("reject" if r else "accept") for v, r, a, b in zip(with_values, rej, acc, both)
               if (r or a) and not b}
    # which videos, the surest first (a reject by ascending P(accept), an accept by descending), with their P
    prob = dict(zip(with_values, p.tolist()))
    chosen = {d: sorted((v for v, x in decided.items() if x == d), key=lambda v: (prob[v] if d == "reject"
                                                                               else -prob[v], v))
              for d in DIRECTIONS}
    rep = {"calibration": int(cal["id"]), "annotator": who, "direction": direction, "dry_run": dry_run,
           "operating_points": ops, "candidates": len(todo), "no_metrics": len(todo) - len(with_values),
           "reject": int((rej & ~both).sum()), "accept": int((acc & ~both).sum()), "conflicting": int(both.sum()),
           "undecided": int((~rej & ~acc).sum()), "already_labelled_by_people": len(people),
           "stale_labels": labels_changed(ws, cal), "written": 0, "session": None,
           "videos": {d: [{"video_id": int(v), "p_accept": float(prob[v])} for v in chosen[d]] for d in DIRECTIONS}}
    if not dry_run and decided:
        batch = labels.append_values(ws, item_kind="video", values=decided, annotator=who)
        rep.update(written=batch["n"], session=batch["session"])
    return rep


def labels_changed(ws: Workspace, cal: dict[str, Any]) -> bool:
    """Whether the people's video labels differ from the ones the calibration learnt from."""
    return _people_labels(ws)[1] != cal["label_hash"]


def undo_last_apply(ws: Workspace) -> dict[str, Any]:
    """Take back the newest batch of rule labels that is still live, all of it: {"session", "annotator", "undone"}."""
    batch = labels.latest_rule_batch(ws)
    if batch is None:
        raise Refused("no rule labels to undo")
    done = labels.undo_session(ws, batch["session"], annotator=batch["annotator"])
    return {"session": batch["session"], "annotator": batch["annotator"], "undone": len(done)}


__all__ = ["VERSION", "MIN_PER_CLASS", "NotEnoughLabels", "calibrate", "apply", "undo_last_apply", "summary",
           "training_data", "feature_label", "rule_annotator"]
