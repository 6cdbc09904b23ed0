"""Metric results: one row per (metric, version, params hash, video, triple); the cache key of scoring."""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace

# Traces are large (per-frame curves): plain reads leave them out, one fixed statement each way.
_GET = ("SELECT id, metric, metric_version, params_hash, video_id, triple_id, value, status, reason, backend, "
        "seconds, computed_at FROM metric_results WHERE metric = ? AND metric_version = ? AND params_hash = ? "
        "AND video_id = ? AND triple_id = ?")
_GET_WITH_TRACE = ("SELECT * FROM metric_results WHERE metric = ? AND metric_version = ? AND params_hash = ? "
                   "AND video_id = ? AND triple_id = ?")
_FOR_VIDEO = ("SELECT r.id, r.metric, r.metric_version, r.params_hash, r.video_id, r.triple_id, r.value, r.status, "
              "r.reason, r.backend, r.seconds, r.computed_at FROM metric_results r WHERE r.video_id = ? AND r.id = ("
              "SELECT max(id) FROM metric_results x WHERE x.video_id = r.video_id AND x.metric = r.metric "
              "AND x.triple_id = r.triple_id) ORDER BY r.metric, r.triple_id")
_FOR_VIDEO_WITH_TRACE = ("SELECT r.* FROM metric_results r WHERE r.video_id = ? AND r.id = ("
                         "SELECT max(id) FROM metric_results x WHERE x.video_id = r.video_id AND x.metric = r.metric "
                         "AND x.triple_id = r.triple_id) ORDER BY r.metric, r.triple_id")
_LATEST = ("SELECT metric, metric_version, params_hash, video_id, triple_id, value, status, reason, backend FROM ("
           "SELECT *, row_number() OVER (PARTITION BY video_id, triple_id, metric ORDER BY id DESC) AS rn "
           "FROM metric_results) WHERE rn = 1 ORDER BY video_id, triple_id, metric")
_LATEST_OF_VIDEOS = (
    "SELECT metric, metric_version, params_hash, video_id, triple_id, value, status, reason, backend FROM ("
    "SELECT *, row_number() OVER (PARTITION BY video_id, triple_id, metric ORDER BY id DESC) AS rn "
    "FROM metric_results WHERE video_id IN (SELECT unnest(?::BIGINT[]))) WHERE rn = 1 "
    "ORDER BY video_id, triple_id, metric")


def get_result(ws: Workspace, *, metric: str, version: str, params_hash: str, video_id: int,
               triple_id: int = 0, with_trace: bool = False) -> dict[str, Any] | None:
    rows = ws.query_dicts(_GET_WITH_TRACE if with_trace else _GET,
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
        return cur.execute("INSERT INTO metric_results (metric, metric_version, params_hash, video_id, triple_id, "
                           "value, status, reason, backend, trace, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "RETURNING id", vals).fetchall()[0][0]


def results_for_video(ws: Workspace, video_id: int, *, with_trace: bool = False) -> list[dict[str, Any]]:
    """The newest result of each (metric, triple) for one video."""
    return [_decode(r) for r in ws.query_dicts(_FOR_VIDEO_WITH_TRACE if with_trace else _FOR_VIDEO, [video_id])]


def latest_metric_results(ws: Workspace, video_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Newest result per (video, triple, metric), optionally for some videos only (no traces)."""
    if video_ids is None:
        return ws.query_dicts(_LATEST)
    if not video_ids:
        return []
    return ws.query_dicts(_LATEST_OF_VIDEOS, [sorted({int(v) for v in video_ids})])


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("trace"), str):
        row["trace"] = json.loads(row["trace"])
    return row
