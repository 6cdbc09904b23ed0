"""The image-quality classifier (issue #5): trained from designer labels, cross-validated, stored.

    result = train(ws, progress=lambda frac, msg: ..., cancel=threading.Event())

Training data: the image decisions of the one label rule (storage.labels.resolved_labels: each
annotator's latest non-undone label counts once; majority of annotators wins; a tie goes to the most
recent event), 'good' = positive class; optionally heuristic pseudo-labels on unlabelled images at a
lower sample weight (used for fitting only, never for scoring the CV).
Estimators: logistic regression (default) and a ridge classifier with Platt scaling are compared in
stratified k-fold CV (grouped by near-duplicate group when groups exist); the better PR-AUC wins.
Both use balanced class weights. The threshold maximizes F1 on the out-of-fold scores.
Every run is stored: runs/classifier_run_<id>.joblib + .json sidecar first, then the classifier_runs row and a
prediction for every image (out-of-fold score for labelled images, the final model's for the rest) in one
transaction, so the latest run (storage.classifier_runs) always comes with its predictions.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from storage import Workspace, labels
from storage import classifier_runs as runs
from storage import curation_store as cs

from . import features as F
from .jobs import Cancelled, Progress, Refused, check, sub

CLASSIFIER_VERSION = "quality-clf-1"
MIN_PER_CLASS = 5
LARGE_N = 10_000          # from this many labels on, CV uses 3 folds
ESTIMATORS = ("logreg", "ridge")


class NotEnoughLabels(Refused, ValueError):
    """Too few labels (or one class only); the message says how many of each are needed."""


# -- estimators ---------------------------------------------------------------------------------

class RidgePlatt(BaseEstimator, ClassifierMixin):
    """Weighted ridge regression on +-1 targets, solved in closed form (primal normal equations when
    n >= d, dual otherwise), with balanced class weights; its decision values are mapped to
    probabilities by a Platt sigmoid fitted on the training decisions."""

    def __init__(self, alpha: float = 10.0) -> None:
        self.alpha = alpha

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X, np.float32)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError("RidgePlatt needs two classes")
        pos = (y == self.classes_[1])
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        wp, wn = w[pos].sum(), w[~pos].sum()
        w = w * np.where(pos, 0.5 * w.sum() / max(wp, 1e-12), 0.5 * w.sum() / max(wn, 1e-12))
        t = np.where(pos, 1.0, -1.0)
        sw = w.sum()
        mu = (w.astype(np.float32) @ X).astype(np.float64) / sw
        tm = (w @ t) / sw
        n, d = X.shape
        w32 = w.astype(np.float32)
        if n >= d:
            # weighted Gram of the centred data without centring X: X'WX - sw * mu mu'
            # (Xs' Xs on one buffer lets BLAS use SYRK: half the flops of a general product)
            Xs = X * np.sqrt(w32)[:, None]
            A = (Xs.T @ Xs).astype(np.float64) - sw * np.outer(mu, mu)
            del Xs
            A[np.diag_indices(d)] += self.alpha
            b = (X.T @ (w * (t - tm)).astype(np.float32)).astype(np.float64) - mu * (w @ (t - tm))
            coef = np.linalg.solve(A, b)
        else:
            Xc = X.astype(np.float64) - mu
            K = Xc @ Xc.T
            K[np.diag_indices(n)] += self.alpha / np.maximum(w, 1e-12)
            coef = Xc.T @ np.linalg.solve(K, t - tm)
        self.coef_ = coef.astype(np.float32)
        self.intercept_ = float(tm - mu @ coef)
        dec = self.decision_function(X)
        self.platt_ = LogisticRegression(C=1.0, max_iter=200)
        self.platt_.fit(dec.reshape(-1, 1), pos.astype(int), sample_weight=w)
        return self

    def decision_function(self, X):
        return (np.asarray(X, np.float32) @ self.coef_).astype(np.float64) + self.intercept_

    def predict_proba(self, X):
        return self.platt_.predict_proba(self.decision_function(X).reshape(-1, 1))

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def make_estimator(name: str, n_features: int):
    """An unfitted estimator for standardized features (train() standardizes once, label-free, over
    all images, and saves the scaler in front of the model)."""
    if name == "logreg":
        return LogisticRegression(C=0.05 if n_features > 64 else 1.0, class_weight="balanced", max_iter=300,
                                  tol=1e-3)
    if name == "ridge":
        return RidgePlatt(alpha=max(10.0, float(n_features)))
    raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")


def _fit(est, X, y, w):
    return est.fit(X, y, sample_weight=w)


def fit_scaler(X: np.ndarray) -> StandardScaler:
    return StandardScaler().fit(X)


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


# -- labels -------------------------------------------------------------------------------------

def label_snapshot(ws: Workspace) -> dict[str, Any]:
    rows = list(labels.resolved_labels(ws, "image").values())
    ids = np.array([r["item_id"] for r in rows], np.int64)
    y = np.array([1 if r["label"] == "good" else 0 for r in rows], np.int64)
    text = "\n".join(f"{i}:{r['label']}" for i, r in zip(ids, rows))
    counts = {"good": int(y.sum()), "bad": int((1 - y).sum()), "conflicts": sum(1 for r in rows if r["conflict"])}
    return {"ids": ids, "y": y, "counts": counts, "hash": hashlib.sha256(text.encode()).hexdigest()[:16]}


def label_shortfall(counts: dict[str, int]) -> list[str]:
    """What training still lacks, e.g. ["2 more 'good'", "5 more 'bad'"]; empty when it can train. The app shows
    it beside the Train button, so the rule is read from here, not restated there."""
    return [f"{MIN_PER_CLASS - counts.get(c, 0)} more '{c}'" for c in ("good", "bad")
            if counts.get(c, 0) < MIN_PER_CLASS]


def check_label_counts(counts: dict[str, int], folds: int = 5) -> None:
    good, bad = counts.get("good", 0), counts.get("bad", 0)
    need = label_shortfall(counts)
    if need:
        raise NotEnoughLabels(
            f"not enough labels to train: have {good} good and {bad} bad image labels; training needs at least "
            f"{MIN_PER_CLASS} of each class (label {' and '.join(need)} in the Images tab or with "
            f"`python -m curation labels import`)")


# -- training -------------------------------------------------------------------------------------

def cross_validate(X: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None = None,
                   estimators: tuple[str, ...] = ESTIMATORS, folds: int = 5, seed: int = 0,
                   X_extra: np.ndarray | None = None, y_extra: np.ndarray | None = None,
                   w_extra: float = 0.0, progress: Progress | None = None,
                   cancel: threading.Event | None = None, frac0: float = 0.0,
                   frac1: float = 1.0) -> dict[str, Any]:
    """Out-of-fold scores and metrics of each estimator. Pseudo-labelled rows (X_extra) join every
    training fold at weight w_extra and are never scored."""
    if len(y) >= LARGE_N:
        folds = min(folds, 3)      # 3 folds hold >= 3,300 labels each: enough, and CV stays within budget
    n_splits = int(max(2, min(folds, np.bincount(y, minlength=2).min())))
    if groups is not None and len(np.unique(groups)) < len(groups):
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = list(splitter.split(X, y, groups))
        grouped = True
    else:
        splits = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, y))
        grouped = False
    use_extra = X_extra is not None and len(X_extra) > 0 and w_extra > 0
    total = len(estimators) * len(splits)
    out: dict[str, Any] = {"n_splits": n_splits, "grouped_by_dup_group": grouped, "estimators": {}}
    step = 0
    for name in estimators:
        oof = np.zeros(len(y), np.float64)
        t0 = time.perf_counter()
        for k, (tr, va) in enumerate(splits):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"training cancelled during cross-validation ({name}, fold {k + 1} of {len(splits)})")
            if progress is not None:
                progress(frac0 + (frac1 - frac0) * step / total, f"cross-validating {name}: fold {k + 1}/{len(splits)}")
            Xtr, ytr, wtr = X[tr], y[tr], np.ones(len(tr))
            if use_extra:
                Xtr = np.concatenate([Xtr, X_extra])
                ytr = np.concatenate([ytr, y_extra])
                wtr = np.concatenate([wtr, np.full(len(X_extra), w_extra)])
            est = _fit(make_estimator(name, X.shape[1]), Xtr, ytr, wtr)
            oof[va] = est.predict_proba(X[va])[:, 1]
            step += 1
        rep = cv_report(y, oof)
        rep["seconds"] = round(time.perf_counter() - t0, 3)
        out["estimators"][name] = {"metrics": rep, "oof": oof}
    best = max(estimators, key=lambda n: (out["estimators"][n]["metrics"]["pr_auc"], -estimators.index(n)))
    out["best"] = best
    return out


def pseudo_labels(ws: Workspace, image_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heuristic pseudo-labels for these images: all measured filters pass -> good (1), any fails ->
    bad (0); images without filter results get -1."""
    state: dict[int, list[bool]] = {}
    for r in cs.latest_filter_table(ws):
        if r["passed"] is not None:
            state.setdefault(int(r["image_id"]), []).append(bool(r["passed"]))
    y = np.array([(1 if all(state[i]) else 0) if int(i) in state else -1 for i in image_ids], np.int64)
    return image_ids[y >= 0], y[y >= 0]


def train(ws: Workspace, *, features: "str | list[F.EmbedderSpec]" = "auto", heuristics: bool = False, pseudo_weight: float = 0.0,
          estimators: tuple[str, ...] = ESTIMATORS, folds: int = 5, seed: int = 0,
          progress: Progress | None = None, cancel: threading.Event | None = None) -> dict[str, Any]:
    """Train, cross-validate, store the run and its predictions. Raises NotEnoughLabels or Cancelled."""
    t_start = time.perf_counter()

    def say(frac: float, msg: str) -> None:
        if progress is not None:
            progress(float(min(max(frac, 0.0), 1.0)), msg)

    def check_cancel(where: str) -> None:
        check(cancel, f"training {where}")

    say(0.0, "reading labels")
    snap = label_snapshot(ws)
    check_label_counts(snap["counts"], folds)
    images = cs.all_images(ws)
    all_ids = np.array([im["id"] for im in images], np.int64)
    all_shas = [im["sha256"] for im in images]

    # features: a spec string, or (programmatic use, e.g. the benchmark) a list of EmbedderSpec
    embedders = list(features) if isinstance(features, (list, tuple)) else F.resolve_embedders(features)
    for k, e in enumerate(embedders):
        check_cancel("before embedding")
        say(0.02 + 0.3 * k / len(embedders), f"embedding images with {e.model_id} (cached ones are skipped)")
        F.ensure_embeddings(ws, e, images, cancel=cancel, progress=sub(
            say, 0.02 + 0.3 * k / len(embedders), 0.02 + 0.3 * (k + 1) / len(embedders)))
    check_cancel("after embedding")
    say(0.33, "building features")
    X_all, feat_name, present = F.feature_matrix(ws, all_ids, all_shas, embedders, heuristics)
    scaler = fit_scaler(X_all[present]) if present.any() else fit_scaler(X_all)
    X_all = scaler.transform(X_all).astype(np.float32)
    pos = {int(i): r for r, i in enumerate(all_ids)}
    lab_rows = np.array([pos[int(i)] for i in snap["ids"] if int(i) in pos], np.int64)
    lab_y = np.array([y for i, y in zip(snap["ids"], snap["y"]) if int(i) in pos], np.int64)
    keep = present[lab_rows]
    lab_rows, lab_y = lab_rows[keep], lab_y[keep]
    check_label_counts({"good": int(lab_y.sum()), "bad": int((1 - lab_y).sum())}, folds)
    X, y = X_all[lab_rows], lab_y
    groups = None
    dg = [im.get("dup_group") for im in images]
    if any(g is not None for g in dg):
        groups = np.array([dg[r] if dg[r] is not None else -int(all_ids[r]) for r in lab_rows], np.int64)

    X_extra = y_extra = None
    n_pseudo = 0
    if pseudo_weight > 0:
        labelled = set(int(all_ids[r]) for r in lab_rows)
        cand = np.array([i for i in all_ids if int(i) not in labelled], np.int64)
        pid, py = pseudo_labels(ws, cand)
        prow = np.array([pos[int(i)] for i in pid], np.int64)
        if len(prow):
            ok = present[prow]
            X_extra, y_extra = X_all[prow[ok]], py[ok]
            n_pseudo = int(ok.sum())

    cv = cross_validate(X, y, groups=groups, estimators=tuple(estimators), folds=folds, seed=seed,
                        X_extra=X_extra, y_extra=y_extra, w_extra=pseudo_weight, progress=progress,
                        cancel=cancel, frac0=0.35, frac1=0.85)
    best = cv["best"]
    check_cancel("before the final fit")
    say(0.86, f"fitting the final {best} model on {len(y)} labels")
    Xf, yf, wf = X, y, np.ones(len(y))
    if X_extra is not None and n_pseudo:
        Xf = np.concatenate([X, X_extra])
        yf = np.concatenate([y, y_extra])
        wf = np.concatenate([wf, np.full(n_pseudo, pseudo_weight)])
    est = _fit(make_estimator(best, X.shape[1]), Xf, yf, wf)
    model = make_pipeline(scaler, est)       # what is saved: raw features in, P(good) out
    check_cancel("before saving")

    say(0.92, "scoring every image")
    scores = np.full(len(all_ids), np.nan)
    scores[present] = est.predict_proba(X_all[present])[:, 1]
    scores[lab_rows] = cv["estimators"][best]["oof"]     # labelled images keep their out-of-fold score
    metrics_best = cv["estimators"][best]["metrics"]
    cv_metrics = {
        "best": best, "n_splits": cv["n_splits"], "grouped_by_dup_group": cv["grouped_by_dup_group"],
        "estimators": {n: {k: v for k, v in e["metrics"].items()} for n, e in cv["estimators"].items()},
        "pseudo_labels": n_pseudo, "pseudo_weight": pseudo_weight, "positive_class": "good",
    }
    counts = {**snap["counts"], "used_good": int(y.sum()), "used_bad": int((1 - y).sum())}
    # the id names the model file, which exists before the run row that points at it
    run_id = runs.reserve_run_id(ws)
    say(0.95, "saving the model")
    model_path = save_model(ws, run_id, model, {
        "run": run_id, "version": CLASSIFIER_VERSION, "sklearn": sklearn.__version__, "features": feat_name,
        "embedders": [{"kind": e.kind, "model_id": e.model_id} for e in embedders], "heuristics": heuristics,
        "estimator": best, "threshold": metrics_best["threshold"], "label_hash": snap["hash"],
        "label_counts": counts, "cv": {n: {k: v for k, v in e["metrics"].items() if k != "roc_curve"}
                                       for n, e in cv["estimators"].items()}})
    ok = ~np.isnan(scores)
    runs.record_run(ws, run_id, {"version": f"{CLASSIFIER_VERSION} sklearn-{sklearn.__version__}",
                                 "n_labels": int(len(y)), "label_hash": snap["hash"], "label_counts": counts,
                                 "features": feat_name, "estimator": best, "threshold": metrics_best["threshold"],
                                 "cv_metrics": cv_metrics, "model_path": str(model_path)},
                    all_ids[ok], scores[ok])
    say(1.0, f"run {run_id}: PR-AUC {metrics_best['pr_auc']:.3f}, ROC-AUC {metrics_best['roc_auc']:.3f}")
    return {"run": run_id, "n_labels": int(len(y)), "roc_auc": metrics_best["roc_auc"],
            "pr_auc": metrics_best["pr_auc"], "f1": metrics_best["f1"], "threshold": metrics_best["threshold"],
            "features": feat_name, "estimator": best, "label_counts": counts,
            "compared": {n: {"roc_auc": e["metrics"]["roc_auc"], "pr_auc": e["metrics"]["pr_auc"]}
                         for n, e in cv["estimators"].items()},
            "n_predictions": int(ok.sum()), "model_path": str(model_path),
            "seconds": round(time.perf_counter() - t_start, 2)}


def save_model(ws: Workspace, run_id: int, model: Any, sidecar: dict[str, Any]) -> Path:
    import joblib

    path = ws.path("runs", f"classifier_run_{run_id}.joblib")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".joblib.tmp")
    joblib.dump(model, tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, default=float), encoding="utf-8")
    return path


def load_model(ws: Workspace, run_id: int | None = None) -> tuple[Any, dict[str, Any]]:
    """(model, run row) of a run, the latest with predictions by default."""
    import joblib

    run = runs.get_run(ws, run_id)
    if run is None or not run.get("model_path"):
        raise FileNotFoundError("no classifier run yet: train one with `python -m curation train`")
    return joblib.load(run["model_path"]), run


def run_history(ws: Workspace, limit: int = 50) -> list[dict[str, Any]]:
    """Runs newest first, with their CV summary (for the app's Classifier tab)."""
    out = []
    for r in runs.list_runs(ws, limit):
        cvm = r.get("cv_metrics") or {}
        best = (cvm.get("estimators") or {}).get(r.get("estimator") or "", {})
        out.append({"run": r["id"], "created_at": r["created_at"], "version": r["version"],
                    "n_labels": r["n_labels"], "label_counts": r["label_counts"], "features": r["features"],
                    "estimator": r["estimator"], "threshold": r["threshold"], "roc_auc": best.get("roc_auc"),
                    "pr_auc": best.get("pr_auc"), "f1": best.get("f1"), "confusion": best.get("confusion"),
                    "roc_curve": best.get("roc_curve"), "calibration": best.get("calibration"),
                    "model_path": r["model_path"]})
    return out
