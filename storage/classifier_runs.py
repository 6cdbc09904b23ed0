"""Classifier runs and their predictions.

"The latest run" is the `latest_classifier_run` view (migration 0008: the newest run that has predictions);
every reader, in SQL or through `latest_run_id`, takes it from there. A run row and its predictions are
written in one transaction (`record_run`), so no reader ever sees a run without its scores.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from .db import Workspace

_RUN_COLS = ("version", "n_labels", "label_hash", "label_counts", "features", "estimator", "threshold",
             "cv_metrics", "model_path")
_JSON_COLS = ("label_counts", "cv_metrics")


def _decode(r: dict[str, Any]) -> dict[str, Any]:
    for k in _JSON_COLS:
        if isinstance(r.get(k), str):
            try:
                r[k] = json.loads(r[k])
            except ValueError:
                pass
    return r


def reserve_run_id(ws: Workspace) -> int:
    """A fresh run id, so the model file can be named before the run is recorded (an unused id leaves a gap)."""
    return int(ws.query_one("SELECT nextval('seq_classifier_runs')")[0])


def record_run(ws: Workspace, run_id: int, rec: dict[str, Any], image_ids: np.ndarray, scores: np.ndarray) -> int:
    """Write the run row and its predictions in one transaction; returns the number of predictions."""
    vals = [json.dumps(rec.get(c), default=float) if c in _JSON_COLS else rec.get(c) for c in _RUN_COLS]
    tbl = pa.table({"run_id": pa.array(np.full(len(image_ids), run_id, np.int64)),
                    "image_id": pa.array(np.asarray(image_ids, np.int64)),
                    "score": pa.array(np.asarray(scores, np.float64))})
    with ws.transaction() as cur:
        cur.execute("INSERT INTO classifier_runs (id, version, n_labels, label_hash, label_counts, features, "
                    "estimator, threshold, cv_metrics, model_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [int(run_id), *vals])
        cur.register("_new_preds", tbl)
        try:
            cur.execute("INSERT INTO predictions SELECT run_id, image_id, score FROM _new_preds")
        finally:
            cur.unregister("_new_preds")
    return len(image_ids)


def latest_run_id(ws: Workspace) -> int | None:
    row = ws.query_one("SELECT id FROM latest_classifier_run")
    return int(row[0]) if row else None


def get_run(ws: Workspace, run_id: int | None = None) -> dict[str, Any] | None:
    """A run by id, or the latest run when run_id is None."""
    if run_id is None:
        rows = ws.query_dicts("SELECT * FROM latest_classifier_run")
    else:
        rows = ws.query_dicts("SELECT * FROM classifier_runs WHERE id = ?", [int(run_id)])
    return _decode(rows[0]) if rows else None


def list_runs(ws: Workspace, limit: int = 100) -> list[dict[str, Any]]:
    """Runs newest first, JSON columns decoded."""
    return [_decode(r) for r in ws.query_dicts("SELECT * FROM classifier_runs ORDER BY id DESC LIMIT ?",
                                               [int(limit)])]


def predictions(ws: Workspace, run_id: int | None = None) -> dict[int, float]:
    """Image id -> score of a run (the latest by default; empty before any run)."""
    if run_id is None:
        rows = ws.query("SELECT image_id, score FROM predictions WHERE run_id = (SELECT id FROM latest_classifier_run)")
    else:
        rows = ws.query("SELECT image_id, score FROM predictions WHERE run_id = ?", [int(run_id)])
    return {int(i): float(s) for i, s in rows}


def image_score(ws: Workspace, image_id: int) -> dict[str, Any] | None:
    """The latest run's score of one image with that run's id, threshold and features, or None."""
    rows = ws.query_dicts(
        "SELECT p.score, r.id AS run, r.threshold, r.features FROM latest_classifier_run r "
        "JOIN predictions p ON p.run_id = r.id AND p.image_id = ?", [int(image_id)])
    return rows[0] if rows else None


def kept_count(ws: Workspace, threshold: float, run_id: int | None = None) -> dict[str, int]:
    """How many images of a run (the latest by default) score at or above a threshold, of how many scored."""
    if run_id is None:
        run_id = latest_run_id(ws)
    if run_id is None:
        return {"kept": 0, "scored": 0}
    row = ws.query_one("SELECT count(*) FILTER (WHERE score >= ?), count(*) FROM predictions WHERE run_id = ?",
                       [float(threshold), int(run_id)])
    return {"kept": int(row[0] or 0), "scored": int(row[1] or 0)}
