"""Metric results: one row per (metric, version, params hash, video, triple); the cache key of scoring."""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace

_COLS = ("metric", "metric_version", "params_hash", "video_id", "triple_id", "value", "status", "reason",
         "backend", "trace", "seconds")


def get_result(ws: Workspace, *, metric: str, version: str, params_hash: str, video_id: int,
               triple_id: int = 0, with_trace: bool = False) -> dict[str, Any] | None:
    cols = "*" if with_trace else "id, metric, metric_version, params_hash, video_id, triple_id, value, status, " \
                                  "reason, backend, seconds, computed_at"
    rows = ws.query_dicts(f"SELECT {cols} FROM metric_results WHERE metric = ? AND metric_version = ? "
                          "AND params_hash = ? AND video_id = ? AND triple_id = ?",
                          [metric, version, params_hash, video_id, triple_id])
    return _decode(rows[0]) if rows else None


def put_result(ws: Workspace, *, metric: str, version: str, params_hash: str, video_id: int, triple_id: int = 0,
               value: float | None, status: str, reason: str | None = None, backend: str | None = None,
               trace: Any = None, seconds: float | None = None) -> int:
    """Insert or replace the result for this cache key; returns its id."""
    if status != "ok":
        value = None
    vals = [metric, version, params_hash, video_id, triple_id, value, status, reason, backend,
            json.dumps(trace) if trace is not None else None, seconds]
    with ws.transaction() as cur:
        cur.execute("DELETE FROM metric_results WHERE metric = ? AND metric_version = ? AND params_hash = ? "
                    "AND video_id = ? AND triple_id = ?", vals[:5])
        return cur.execute(f"INSERT INTO metric_results ({', '.join(_COLS)}) VALUES "
                           f"({', '.join('?' for _ in _COLS)}) RETURNING id", vals).fetchall()[0][0]


def results_for_video(ws: Workspace, video_id: int, *, with_trace: bool = False) -> list[dict[str, Any]]:
    """The newest result of each (metric, triple) for one video."""
    cols = "r.*" if with_trace else "r.id, r.metric, r.metric_version, r.params_hash, r.video_id, r.triple_id, " \
                                    "r.value, r.status, r.reason, r.backend, r.seconds, r.computed_at"
    rows = ws.query_dicts(
        f"SELECT {cols} FROM metric_results r WHERE r.video_id = ? AND r.id = ("
        "SELECT max(id) FROM metric_results x WHERE x.video_id = r.video_id AND x.metric = r.metric "
        "AND x.triple_id = r.triple_id) ORDER BY r.metric, r.triple_id", [video_id])
    return [_decode(r) for r in rows]


def latest_values(ws: Workspace) -> list[dict[str, Any]]:
    """Newest result per (video, triple, metric), without traces: the table filters and reports read."""
    return ws.query_dicts(
        "SELECT metric, metric_version, video_id, triple_id, value, status, reason, backend FROM ("
        "SELECT *, row_number() OVER (PARTITION BY video_id, triple_id, metric ORDER BY id DESC) AS rn "
        "FROM metric_results) WHERE rn = 1 ORDER BY video_id, triple_id, metric")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("trace"), str):
        row["trace"] = json.loads(row["trace"])
    return row
