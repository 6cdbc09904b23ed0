"""Cross-validation of the image-quality classifier's candidates: out-of-fold metrics, repeated splits with a 95 %
interval of the mean, and the heuristic filters as a fixed rule scored on the same folds.

A candidate ("entry") is a feature set with an estimator, or a rule. Every entry is scored on the same splits:
stratified k folds (grouped by near-duplicate group when groups exist), repeated with fresh shuffles. For each
entry: the mean over all k x r folds of the fold's ROC-AUC and PR-AUC ('good' = positive class) with a 95 %
interval of that mean, and the out-of-fold score of every labelled image (its mean over the repeats), from which
the threshold, F1, confusion, calibration and ROC curve are reported (`cv_report`).

The interval is Student's t with Nadeau & Bengio's correction for overlapping training sets (variance of the
fold values times 1/J + n_test/n_train, J = k r): folds of one data set are not independent samples, and the
uncorrected interval would be far too narrow on a few dozen labels.

The rules need no training. `max-severity`: score = 1 / (1 + s), s = the worst severity of the image's measured
filters (a filter passes at s <= 1): a monotone map of -max log severity into (0, 1], 0.5 at the pass/fail
boundary, so it reads as P(good) wherever the app shows a score. `failed-count`: score = 1 / (1 + number of
failed filters).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

LARGE_N = 10_000          # from this many labels on, CV uses 3 folds
SMALL_N = 2_000           # below this many labels CV is repeated REPEATS_SMALL times (cheap there, and needed)
REPEATS_SMALL = 5
REPEAT_SEED_STEP = 10_007  # repeat r shuffles with seed + r * step: repeat 0 is the plain seeded k-fold
RULES = ("max-severity", "failed-count")
RULE_ESTIMATOR = "rule"


# -- metrics ------------------------------------------------------------------------------------

def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    curve, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            conf, acc = float(p[m].mean()), float(y[m].mean())
            ece += m.mean() * abs(conf - acc)
            curve.append({"bin": b, "n": int(m.sum()), "mean_score": round(conf, 4), "frac_good": round(acc, 4)})
    return {"brier": float(brier_score_loss(y, p)), "ece": float(ece), "curve": curve}


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The threshold maximizing F1 of the positive class ('good') on out-of-fold scores."""
    order = np.argsort(-p)
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    pos = ys.sum()
    f1 = 2 * tp / np.maximum(tp + fp + pos, 1)
    # only cut between distinct scores
    valid = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(valid, f1, -1)
    k = int(np.argmax(f1))
    thr = float(ps[k] if k == len(ps) - 1 else (ps[k] + ps[k + 1]) / 2)
    return thr, float(f1[k])


def cv_report(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
    thr, _ = best_threshold(y, p) if threshold is None else (threshold, 0.0)
    pred = (p >= thr).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 101)).astype(int))
    return {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "threshold": float(thr), "f1": float(f1_score(y, pred, zero_division=0)),
            "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "calibration": calibration(y, p),
            "roc_curve": {"fpr": [round(float(fpr[i]), 4) for i in keep], "tpr": [round(float(tpr[i]), 4) for i in keep]}}


# -- splits and intervals -------------------------------------------------------------------------

@dataclass
class Splits:
    folds: list[tuple[int, np.ndarray, np.ndarray]]   # (repeat, train rows, validation rows)
    n_splits: int
    repeats: int
    grouped: bool


def default_repeats(n_labels: int) -> int:
    return REPEATS_SMALL if n_labels < SMALL_N else 1


def make_splits(y: np.ndarray, groups: np.ndarray | None = None, *, folds: int = 5, repeats: int = 1,
                seed: int = 0) -> Splits:
    if len(y) >= LARGE_N:
        folds = min(folds, 3)      # 3 folds hold >= 3,300 labels each: enough, and CV stays within budget
    n_splits = int(max(2, min(folds, np.bincount(y, minlength=2).min())))
    grouped = groups is not None and len(np.unique(groups)) < len(groups)
    out = []
    for r in range(max(1, int(repeats))):
        rs = seed + r * REPEAT_SEED_STEP
        if grouped:
            it = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=rs).split(y, y, groups)
        else:
            it = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=rs).split(y, y)
        out += [(r, tr, va) for tr, va in it]
    return Splits(out, n_splits, max(1, int(repeats)), grouped)


def mean_interval(values: np.ndarray, test_over_train: float) -> tuple[float, float, float]:
    """(mean, low, high): 95 % t interval of the mean of per-fold values, Nadeau-Bengio corrected."""
    from scipy.stats import t as student_t

    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(student_t.ppf(0.975, len(v) - 1)) * math.sqrt((1 / len(v) + test_over_train) * v.var(ddof=1))
    return m, max(0.0, m - half), min(1.0, m + half)


def summarize(y: np.ndarray, oof: np.ndarray, splits: Splits) -> dict[str, Any]:
    """Metrics of one entry from its out-of-fold scores oof (repeats x n)."""
    roc, pr = [], []
    for r, _, va in splits.folds:
        yv, pv = y[va], oof[r, va]
        ok = len(np.unique(yv)) == 2
        roc.append(float(roc_auc_score(yv, pv)) if ok else math.nan)
        pr.append(float(average_precision_score(yv, pv)) if ok else math.nan)
    n_test = np.mean([len(va) for _, _, va in splits.folds])
    ratio = float(n_test / max(len(y) - n_test, 1))
    mean_oof = oof.mean(0)
    rep = cv_report(y, mean_oof)
    rep["oof_roc_auc"], rep["oof_pr_auc"] = rep.pop("roc_auc"), rep.pop("pr_auc")
    rm, rlo, rhi = mean_interval(np.array(roc), ratio)
    pm, plo, phi = mean_interval(np.array(pr), ratio)
    rep.update({"roc_auc": rm, "roc_auc_ci": [rlo, rhi], "pr_auc": pm, "pr_auc_ci": [plo, phi],
                "folds": len(splits.folds)})
    return rep


# -- the filters as a rule --------------------------------------------------------------------------

def rule_scores(kind: str, sev: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """Scores of a rule from the per-filter severities and failed flags (N x filters, NaN = not measured);
    NaN for an image with no measured filter."""
    measured = ~np.isnan(sev).all(1)
    with np.errstate(all="ignore"):
        if kind == "max-severity":
            s = 1.0 / (1.0 + np.nanmax(np.where(np.isnan(sev), -np.inf, sev), axis=1))
        elif kind == "failed-count":
            s = 1.0 / (1.0 + np.nansum(failed, axis=1))
        else:
            raise ValueError(f"unknown rule {kind!r}; rules are {', '.join(RULES)}")
    return np.where(measured, s, np.nan)


class FilterRule(BaseEstimator, ClassifierMixin):
    """A rule as an estimator (what a run that the rule won saves): X = the severities of the filters then their
    failed flags (features.filter_matrix, side by side); fitting learns nothing."""

    def __init__(self, kind: str = "max-severity") -> None:
        self.kind = kind

    def fit(self, X=None, y=None, sample_weight=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        X = np.asarray(X, np.float64)
        k = X.shape[1] // 2
        p = rule_scores(self.kind, X[:, :k], X[:, k:])
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def pick(entries: dict[str, dict[str, Any]]) -> str:
    """The eligible entry with the best mean PR-AUC (then ROC-AUC; then the earlier entry: rules come first, so
    a model must beat the rule, not tie it)."""
    keys = [k for k, e in entries.items() if e.get("eligible", True)]
    order = {k: i for i, k in enumerate(entries)}
    return max(keys, key=lambda k: (round(entries[k]["metrics"]["pr_auc"], 12),
                                    round(entries[k]["metrics"]["roc_auc"], 12), -order[k]))
