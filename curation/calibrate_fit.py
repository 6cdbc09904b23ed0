"""The estimators and curves of `calibrate` (curation.calibrate), free of the workspace: labels are y = 1 accept,
0 reject; a feature value is NaN where the metric has no current ok result.

- MetricThreshold: one metric's cut between accept and reject. Its direction comes from the rank AUC (every
  metric is meant to be "higher is better", but a component is not assumed to be), its cut maximises balanced
  accuracy, halfway between two neighbouring values, so it never sits on a labelled video.
- MetricModel: median imputation with missing-indicators, standardisation, L2 logistic regression with
  balanced class weights (sklearn's objective, solved by Newton's method: a few features, so each step is one
  small linear solve, and the CLI does not pay scikit-learn's and SciPy's import, seconds on a loaded 2-core
  box); everything it learnt is in `to_dict()`, so a stored calibration predicts without pickles.
- stratified_folds: the seeded stratified k-fold split both are cross-validated on.
- direction_curve / operating_point: precision, recall and coverage of "auto-reject" (score < t) and
  "auto-accept" (score >= t) over the thresholds where another labelled video of that direction's class is
  caught; the operating point is the one deciding the most videos at precision >= the target.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

TARGET_PRECISION = 0.9
CURVE_POINTS = 101          # a stored or printed curve keeps at most this many thresholds (and its operating point)


def _column(X: Any) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"MetricThreshold takes one feature, got shape {x.shape}")
    return x


def _by_value(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores ascending, with how many rejects and accepts hold each."""
    u, inv = np.unique(s, return_inverse=True)
    return u, np.bincount(inv, weights=(y == 0), minlength=len(u)), np.bincount(inv, weights=(y == 1), minlength=len(u))


def _midpoints(u: np.ndarray) -> np.ndarray:
    """Halfway between neighbours u[i] < u[i+1]; where rounding lands on u[i] (neighbours one ulp apart) the
    point moves to u[i+1], so that "s < t" still takes u[i] in and "s >= t" still leaves it out."""
    mid = (u[:-1] + u[1:]) / 2
    return np.where(mid > u[:-1], mid, u[1:])


def rank_auc(s: np.ndarray, y: np.ndarray) -> float:
    """P(an accepted video scores above a rejected one), ties counting half (the Mann-Whitney AUC). Written out
    because sklearn's input checks cost more than the sum itself, and calibrate asks it (folds + 1) x features
    times."""
    u, rej, acc = _by_value(s, y)
    below = np.cumsum(rej) - rej
    return float((acc * (below + 0.5 * rej)).sum() / max(rej.sum() * acc.sum(), 1))


def best_cut(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(t, balanced accuracy) of the rule "reject iff s < t" with the highest balanced accuracy; t halfway
    between two neighbouring distinct scores (the lowest such t on ties)."""
    u, rej, acc = _by_value(s, y)
    if len(u) < 2:
        return float(u[0]), 0.5
    j = np.cumsum(rej)[:-1] / max(rej.sum(), 1) - np.cumsum(acc)[:-1] / max(acc.sum(), 1)
    i = int(np.argmax(j))
    return float(_midpoints(u)[i]), float((1 + j[i]) / 2)


class MetricThreshold:
    """A threshold on one metric. fit(x, y) ignores NaN; predict gives 1 accept, 0 reject, -1 for a missing value."""

    def fit(self, X, y):
        x, y = _column(X), np.asarray(y, dtype=np.int64)
        ok = ~np.isnan(x)
        x, y = x[ok], y[ok]
        if len(np.unique(y)) != 2:
            raise ValueError("MetricThreshold needs accepted and rejected videos with a value")
        self.classes_ = np.array([0, 1])
        self.n_ = int(len(x))
        self.auc_ = rank_auc(x, y)
        self.higher_is_better_ = bool(self.auc_ >= 0.5)
        t, self.balanced_accuracy_ = best_cut(self.sign_ * x, y)
        self.threshold_ = self.sign_ * t
        return self

    @property
    def sign_(self) -> float:
        return 1.0 if self.higher_is_better_ else -1.0

    def decision_function(self, X) -> np.ndarray:
        """The value oriented so that higher means more like an accepted video (NaN stays NaN)."""
        return self.sign_ * _column(X)

    def predict(self, X) -> np.ndarray:
        s = self.decision_function(X)
        out = np.where(s >= self.sign_ * self.threshold_, 1, 0)
        return np.where(np.isnan(s), -1, out)


class MetricModel:
    """Standardised logistic regression over the metric features; NaN imputed with the training median, and a
    missing-indicator column for each feature that had missing values in training. Deterministic: no seed."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
        miss = np.isnan(X)
        have = (~miss).sum(axis=0)
        # a column with no value in this training set imputes 0: nanmedian of nothing is NaN (and a warning)
        filled = np.where(miss, 0.0, X)
        self.medians_ = np.array([np.median(filled[~miss[:, j], j]) if have[j] else 0.0 for j in range(X.shape[1])])
        self.indicators_ = np.flatnonzero(miss.any(axis=0))
        Z = self._design(X)
        self.mean_ = Z.mean(axis=0)
        scale = Z.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.coef_, self.intercept_ = logistic_newton((Z - self.mean_) / self.scale_, y, self.C)
        self.classes_ = np.array([0, 1])
        return self

    def _design(self, X: np.ndarray) -> np.ndarray:
        miss = np.isnan(X)
        return np.hstack([np.where(miss, self.medians_, X), miss[:, self.indicators_].astype(np.float64)])

    def decision_function(self, X) -> np.ndarray:
        Z = self._design(np.asarray(X, dtype=np.float64))
        return ((Z - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"C": self.C, "medians": self.medians_.tolist(),
                "indicators": self.indicators_.tolist(), "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                "coef": self.coef_.tolist(), "intercept": self.intercept_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MetricModel":
        m = cls(C=d["C"])
        m.medians_, m.mean_, m.scale_, m.coef_ = (np.asarray(d[k], dtype=np.float64)
                                                  for k in ("medians", "mean", "scale", "coef"))
        m.indicators_ = np.asarray(d["indicators"], dtype=np.int64)
        m.intercept_ = float(d["intercept"])
        m.classes_ = np.array([0, 1])
        return m


def logistic_newton(Z: np.ndarray, y: np.ndarray, C: float, max_iter: int = 50) -> tuple[np.ndarray, float]:
    """(coef, intercept) minimising 0.5 |coef|^2 + C * sum_i w_i logloss_i with balanced weights w (each class
    weighs n / 2 in all), the intercept unpenalised: scikit-learn's LogisticRegression(class_weight="balanced").
    Newton steps, halved until the objective falls; the objective is strictly convex, so this converges."""
    n, d = Z.shape
    A = np.hstack([Z, np.ones((n, 1))])
    counts = np.bincount(y, minlength=2).astype(np.float64)
    w = n / (2.0 * counts[y])
    pen = np.r_[np.ones(d), 0.0]

    def loss(beta: np.ndarray) -> float:
        t = A @ beta
        return float(0.5 * (pen * beta ** 2).sum() + C * (w * (np.logaddexp(0, t) - y * t)).sum())

    beta = np.zeros(d + 1)
    f = loss(beta)
    # one BLAS thread: these products are small, and OpenBLAS's threads, waiting on each other on a busy 2-core
    # box, turned a 1 ms Hessian into hundreds of ms (measured)
    with threadpool_limits(1, user_api="blas"):
        for _ in range(max_iter):
            p = sigmoid(A @ beta)
            grad = pen * beta + C * A.T @ (w * (p - y))
            hess = (A * (C * w * p * (1 - p))[:, None]).T @ A + np.diag(pen + 1e-10)
            step = np.linalg.solve(hess, grad)
            t = 1.0
            f_new = loss(beta - step)
            while f_new > f and t > 1e-6:
                t /= 2
                f_new = loss(beta - t * step)
            if f_new > f:               # no step lowers it: at the optimum up to rounding
                break
            beta, f_old, f = beta - t * step, f, f_new
            if np.abs(t * step).max() < 1e-9 or f_old - f <= 1e-12 * max(1.0, abs(f)):
                break
    return beta[:d], float(beta[d])


def sigmoid(t: np.ndarray) -> np.ndarray:
    # the tanh form cannot overflow, unlike 1 / (1 + exp(-t))
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, test) index pairs; each class shuffled (seeded) and dealt round the folds, the second class
    carrying on where the first stopped, so fold sizes differ by at most one and each fold holds
    floor(class / k) or one more of every class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (start + np.arange(len(idx))) % k
        start += len(idx)
    everything = np.arange(len(y))
    return [(everything[fold != f], everything[fold == f]) for f in range(k)]


# -- curves -------------------------------------------------------------------------------------

def direction_curve(s: np.ndarray, y: np.ndarray, direction: str, n_total: int | None = None) -> dict[str, np.ndarray]:
    """Columns threshold, precision, recall, coverage, n of "reject iff s < t" (direction 'reject') or "accept iff
    s >= t" ('accept'). A NaN score is never decided but counts in recall's and coverage's denominators (n_total:
    all labelled videos, default len(s)). Only thresholds that catch one more video of the direction's class are
    listed: moving past a video of the other class alone adds an error and catches nothing."""
    s, y = np.asarray(s, dtype=np.float64), np.asarray(y, dtype=np.int64)
    n_total = len(s) if n_total is None else n_total
    want = 0 if direction == "reject" else 1
    n_class = int((y == want).sum())
    ok = ~np.isnan(s)
    u, rej, acc = _by_value(s[ok], y[ok])
    empty = {k: np.zeros(0) for k in ("threshold", "precision", "recall", "coverage", "n")}
    if not len(u):
        return empty
    if direction == "reject":
        hit, n = np.cumsum(rej), np.cumsum(rej + acc)
        t = np.append(_midpoints(u), np.nextafter(u[-1], np.inf))
        keep = rej > 0
    elif direction == "accept":
        hit, n = np.cumsum(acc[::-1])[::-1], np.cumsum((rej + acc)[::-1])[::-1]
        t = np.append(u[0], _midpoints(u))
        keep = acc > 0
    else:
        raise ValueError(f"direction is 'reject' or 'accept', not {direction!r}")
    return {"threshold": t[keep], "precision": hit[keep] / n[keep], "recall": hit[keep] / max(n_class, 1),
            "coverage": n[keep] / max(n_total, 1), "n": n[keep]}


def operating_point(curve: dict[str, np.ndarray], target: float = TARGET_PRECISION) -> dict[str, Any]:
    """The threshold deciding the most videos at precision >= target (the more precise one on a tie), or
    {"threshold": None, "reason": ...} when none reaches it."""
    prec, cov = curve["precision"], curve["coverage"]
    good = np.flatnonzero(prec >= target - 1e-12)
    if not len(good):
        if not len(prec):
            return {"threshold": None, "index": None, "reason": "no labelled video has a value"}
        b = int(np.argmax(prec))
        return {"threshold": None, "index": None, "best_precision": float(prec[b]),
                "reason": f"no threshold reaches precision {target:g} (best {prec[b]:.2f} deciding {cov[b]:.1%})"}
    i = int(good[np.lexsort((-prec[good], -cov[good]))[0]])
    return {"threshold": float(curve["threshold"][i]), "index": i, "precision": float(prec[i]),
            "recall": float(curve["recall"][i]), "coverage": float(cov[i]), "n": int(curve["n"][i])}


def thin(curve: dict[str, np.ndarray], keep_index: int | None, points: int = CURVE_POINTS,
         to_raw: float = 1.0) -> dict[str, list]:
    """At most `points` rows of a curve (evenly spread, the operating point kept) as JSON-ready columns; the
    thresholds multiplied by to_raw (-1 turns a flipped feature's thresholds back into its own units)."""
    m = len(curve["threshold"])
    idx = np.unique(np.linspace(0, m - 1, min(m, points)).astype(int)) if m else np.zeros(0, int)
    if keep_index is not None:
        idx = np.union1d(idx, [keep_index])
    out = {k: [round(float(v), 6) for v in curve[k][idx]] for k in ("threshold", "precision", "recall", "coverage")}
    out["threshold"] = [round(to_raw * t, 6) for t in out["threshold"]]
    out["n"] = [int(v) for v in curve["n"][idx]]
    return out


__all__ = ["TARGET_PRECISION", "MetricThreshold", "MetricModel", "best_cut", "direction_curve", "logistic_newton",
           "operating_point", "rank_auc", "stratified_folds", "thin"]
