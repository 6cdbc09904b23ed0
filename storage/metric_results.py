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
# "Current" rows: their (metric, version, params hash) is one of the keys the caller passes, as
# "metric|version|params_hash" strings; the params hash covers the backend that produced the row.
_KEY = "metric || '|' || metric_version || '|' || params_hash"
CURRENT = f"{_KEY} IN (SELECT unnest(?::VARCHAR[]))"   # a WHERE fragment; its one parameter: the keys
_LATEST_COLS = "metric, metric_version, params_hash, video_id, triple_id, value, status, reason, backend"


def _latest_sql(where: str) -> str:
    return (f"SELECT {_LATEST_COLS} FROM (SELECT *, row_number() OVER (PARTITION BY video_id, triple_id, metric "
            f"ORDER BY id DESC) AS rn FROM metric_results WHERE {where}) WHERE rn = 1 "
            "ORDER BY video_id, triple_id, metric")


_LATEST = _latest_sql("true")
_LATEST_OF_VIDEOS = _latest_sql("video_id IN (SELECT unnest(?::BIGINT[]))")
_LATEST_CURRENT = _latest_sql(CURRENT)
_LATEST_CURRENT_OF_VIDEOS = _latest_sql(f"{CURRENT} AND video_id IN (SELECT unnest(?::BIGINT[]))")
# inside the subquery the unqualified columns of CURRENT are c's (the innermost scope)
_STALE = ("SELECT metric, count(*) FROM (SELECT DISTINCT metric, video_id, triple_id FROM metric_results) a "
          "WHERE NOT EXISTS (SELECT 1 FROM metric_results c WHERE c.metric = a.metric AND c.video_id = a.video_id "
          f"AND c.triple_id = a.triple_id AND {CURRENT}) GROUP BY metric ORDER BY metric")
_NEWEST_OK_KEY = ("SELECT metric_version, params_hash, backend FROM metric_results WHERE metric = ? "
                  "AND metric_version = ? AND status = 'ok' ORDER BY id DESC LIMIT 1")


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


def latest_metric_results(ws: Workspace, video_ids: list[int] | None = None, *,
                          keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Newest result per (video, triple, metric), optionally for some videos only (no traces). With `keys`
    ("metric|version|params_hash"), only current rows count: an older version's or backend's row is not
    returned, even when it is the newest."""
    if video_ids is not None and not video_ids:
        return []
    vids = None if video_ids is None else sorted({int(v) for v in video_ids})
    if keys is None:
        return ws.query_dicts(_LATEST) if vids is None else ws.query_dicts(_LATEST_OF_VIDEOS, [vids])
    keys = list(keys)
    return (ws.query_dicts(_LATEST_CURRENT, [keys]) if vids is None
            else ws.query_dicts(_LATEST_CURRENT_OF_VIDEOS, [keys, vids]))


def result_key(metric: str, version: str, params_hash: str) -> str:
    """The key CURRENT compares: what identifies the code, config and backends that produced a result."""
    return f"{metric}|{version}|{params_hash}"


def stale_counts(ws: Workspace, keys: list[str]) -> dict[str, int]:
    """metric -> number of (video, triple) pairs that have results of that metric, none of them current."""
    return {m: int(n) for m, n in ws.query(_STALE, [list(keys)])}


def newest_ok_key(ws: Workspace, metric: str, version: str) -> dict[str, Any] | None:
    """The (version, params hash, backend) of the newest ok result of a metric at this version, or None."""
    rows = ws.query_dicts(_NEWEST_OK_KEY, [metric, version])
    return rows[0] if rows else None


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("trace"), str):
        row["trace"] = json.loads(row["trace"])
    return row
