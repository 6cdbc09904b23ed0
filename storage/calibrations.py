"""Calibrations (`python -m curation calibrate`, migration 0011): what was learnt from the designers' accept/reject
labels of videos, one row each, never changed once written. "The latest calibration" is the one with the
highest id; a rule label's annotator `rule:<id>` names the row that decided it. With each row, in the same
transaction, its model's P(accept) for every scored video (`calibration_scores`, migration 0012), which the video
queue's "Metric vs designer" order reads (storage.review_store.video_queue)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from .db import Workspace, first

_JSON_COLS = ("label_counts", "metric_keys", "thresholds", "model", "cv_metrics")
_COLS = ("version", "item_kind", "n_labels", "label_hash") + _JSON_COLS
_INSERT = (f"INSERT INTO calibrations ({', '.join(_COLS)}) VALUES ({', '.join('?' for _ in _COLS)}) "
           "RETURNING id, created_at")
_GET = "SELECT * FROM calibrations WHERE id = ?"
_LATEST = "SELECT * FROM calibrations ORDER BY id DESC LIMIT 1"
_INSERT_SCORES = ("INSERT INTO calibration_scores (calibration_id, video_id, p_accept, out_of_fold) "
                  "SELECT ?, video_id, p_accept, out_of_fold FROM _new_cal_scores")
_SCORES = "SELECT video_id, p_accept, out_of_fold FROM calibration_scores WHERE calibration_id = ? ORDER BY video_id"
# the newest calibration that has scores: the one the video queue orders by
SCORED = "(SELECT max(calibration_id) FROM calibration_scores)"
_LIST = ("SELECT id, version, item_kind, n_labels, label_hash, label_counts, created_at FROM calibrations "
         "ORDER BY id DESC")


def _decode(r: dict[str, Any]) -> dict[str, Any]:
    for k in _JSON_COLS:
        if isinstance(r.get(k), str):
            r[k] = json.loads(r[k])
    return r


def record(ws: Workspace, rec: dict[str, Any], scores: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Store one calibration (the keys of _COLS) and, in the same transaction, its scores: columns video_id,
    p_accept, out_of_fold (one row per video). Returns {"id", "created_at", "n_scores"}."""
    vals = [json.dumps(rec[c], default=float) if c in _JSON_COLS else rec[c] for c in _COLS]
    n = 0 if scores is None else len(scores["video_id"])
    with ws.transaction() as cur:
        row = first(cur.execute(_INSERT, vals))
        if n:
            tbl = pa.table({"video_id": pa.array(np.asarray(scores["video_id"], np.int64)),
                            "p_accept": pa.array(np.asarray(scores["p_accept"], np.float64)),
                            "out_of_fold": pa.array(np.asarray(scores["out_of_fold"], bool))})
            cur.register("_new_cal_scores", tbl)
            try:
                cur.execute(_INSERT_SCORES, [int(row[0])])
            finally:
                cur.unregister("_new_cal_scores")
    return {"id": int(row[0]), "created_at": row[1], "n_scores": n}


def scores(ws: Workspace, calibration_id: int) -> dict[int, dict[str, Any]]:
    """video id -> {"p_accept", "out_of_fold"} of one calibration (empty for one stored before migration 0012)."""
    return {int(v): {"p_accept": float(p), "out_of_fold": bool(o)}
            for v, p, o in ws.query(_SCORES, [int(calibration_id)])}


def get(ws: Workspace, calibration_id: int | None = None) -> dict[str, Any] | None:
    """One calibration with its JSON columns decoded; the latest when no id is given; None when there is none."""
    rows = ws.query_dicts(_LATEST) if calibration_id is None else ws.query_dicts(_GET, [int(calibration_id)])
    return _decode(rows[0]) if rows else None


def list_calibrations(ws: Workspace) -> list[dict[str, Any]]:
    """Every calibration, newest first, without its thresholds, model and curves."""
    return [_decode(r) for r in ws.query_dicts(_LIST)]


__all__ = ["record", "get", "scores", "list_calibrations", "SCORED"]
