"""Calibrations (`python -m curation calibrate`, migration 0011): what was learnt from the designers' accept/reject
labels of videos, one row each, never changed once written. "The latest calibration" is the one with the
highest id; a rule label's annotator `rule:<id>` names the row that decided it."""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace, first

_JSON_COLS = ("label_counts", "metric_keys", "thresholds", "model", "cv_metrics")
_COLS = ("version", "item_kind", "n_labels", "label_hash") + _JSON_COLS
_INSERT = (f"INSERT INTO calibrations ({', '.join(_COLS)}) VALUES ({', '.join('?' for _ in _COLS)}) "
           "RETURNING id, created_at")
_GET = "SELECT * FROM calibrations WHERE id = ?"
_LATEST = "SELECT * FROM calibrations ORDER BY id DESC LIMIT 1"
_LIST = ("SELECT id, version, item_kind, n_labels, label_hash, label_counts, created_at FROM calibrations "
         "ORDER BY id DESC")


def _decode(r: dict[str, Any]) -> dict[str, Any]:
    for k in _JSON_COLS:
        if isinstance(r.get(k), str):
            r[k] = json.loads(r[k])
    return r


def record(ws: Workspace, rec: dict[str, Any]) -> dict[str, Any]:
    """Store one calibration (the keys of _COLS); returns {"id", "created_at"}."""
    vals = [json.dumps(rec[c], default=float) if c in _JSON_COLS else rec[c] for c in _COLS]
    with ws.transaction() as cur:
        row = first(cur.execute(_INSERT, vals))
    return {"id": int(row[0]), "created_at": row[1]}


def get(ws: Workspace, calibration_id: int | None = None) -> dict[str, Any] | None:
    """One calibration with its JSON columns decoded; the latest when no id is given; None when there is none."""
    rows = ws.query_dicts(_LATEST) if calibration_id is None else ws.query_dicts(_GET, [int(calibration_id)])
    return _decode(rows[0]) if rows else None


def list_calibrations(ws: Workspace) -> list[dict[str, Any]]:
    """Every calibration, newest first, without its thresholds, model and curves."""
    return [_decode(r) for r in ws.query_dicts(_LIST)]


__all__ = ["record", "get", "list_calibrations"]
