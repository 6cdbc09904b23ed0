"""Metric results: one row per (metric, version, params hash, video, triple); the cache key of scoring."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

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
# Where one video's value sits among the workspace's scored videos, per metric: over the current rows (the
# newest per (video, triple, metric) among CURRENT, as everywhere else), a video's value is the mean of its ok
# triples, as the scorecard shows it, rounded so that a mean of triples (0.2 and 0.4) ties with the same
# value scored once (0.3): averaging leaves the last bits apart. Its three parameters: the keys, then the
# video id twice.
_RANKS = (f"WITH cur AS ({_LATEST_CURRENT}), per_video AS (SELECT metric, video_id, round(avg(value), 9) AS "
          "value FROM cur WHERE status = 'ok' AND value IS NOT NULL GROUP BY metric, video_id), "
          "me AS (SELECT metric, value FROM per_video WHERE video_id = ?) "
          "SELECT me.metric, count(*) AS n, count(*) FILTER (WHERE p.value < me.value) AS below, "
          "count(*) FILTER (WHERE p.value = me.value AND p.video_id <> ?) AS ties "
          "FROM me JOIN per_video p ON p.metric = me.metric GROUP BY me.metric, me.value ORDER BY me.metric")
# Scalar components of a metric, read from its stored trace (the keys metrics/*.py write there): feature name ->
# JSON path; a path through a list ([*]) is averaged over the list (TSScore: over its text segments).
TRACE_COMPONENTS = {
    "motionx": {"amplitude": "$.A_norm", "smoothness": "$.S_norm", "activation": "$.R"},
    "tsscore": {"stab": "$.segments[*].stab", "clarity": "$.segments[*].clarity", "cover": "$.segments[*].cover"},
    "productscore": {"present_ratio": "$.present_ratio"},
}


def _component_sql(metric: str, path: str) -> str:
    # json paths with a wildcard must be constants in DuckDB, so each component is its own fixed expression
    get = (f"list_avg(TRY_CAST(json_extract(trace, '{path}') AS DOUBLE[]))" if "[*]" in path
           else f"TRY_CAST(json_extract(trace, '{path}') AS DOUBLE)")
    return f"avg(CASE WHEN metric = '{metric}' THEN {get} END)"


_COMPONENT_NAMES = [f"{m}.{c}" for m, comps in TRACE_COMPONENTS.items() for c in comps]
# per (video, metric): the mean over the video's triples of its current ok results (a video-level metric has the
# one row of triple 0); only ok rows, so a component of an n/a trace never stands in for a missing value
_VIDEO_FEATURES = (
    "SELECT video_id, metric, avg(value) AS value, "
    + ", ".join(f'{_component_sql(m, p)} AS "{m}.{c}"' for m, comps in TRACE_COMPONENTS.items()
                for c, p in comps.items())
    + f" FROM metric_results WHERE status = 'ok' AND {CURRENT} GROUP BY video_id, metric ORDER BY video_id, metric")
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


_PUT_COLS = ("metric", "version", "params_hash", "video_id", "triple_id", "value", "status", "reason", "backend",
             "trace", "seconds")
_PUT_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR",
              "VARCHAR", "DOUBLE")
# one list parameter per column, unnested side by side into rows
_NEW_ROWS = "SELECT " + ", ".join(f"unnest(?::{t}[]) AS {c}" for c, t in zip(_PUT_COLS, _PUT_TYPES))
_PUT_MANY_DELETE = ("DELETE FROM metric_results WHERE (metric, metric_version, params_hash, video_id, triple_id) IN "
                    f"(SELECT metric, version, params_hash, video_id, triple_id FROM ({_NEW_ROWS}))")
_PUT_MANY_INSERT = ("INSERT INTO metric_results (metric, metric_version, params_hash, video_id, triple_id, value, "
                    "status, reason, backend, trace, seconds) SELECT metric, version, params_hash, video_id, "
                    f"triple_id, value, status, reason, backend, trace::JSON, seconds FROM ({_NEW_ROWS})")


def put_results(ws: Workspace, rows: list[dict[str, Any]]) -> int:
    """put_result for many results in one transaction (each row: put_result's keyword arguments; triple_id,
    reason, backend, trace and seconds optional). A bulk load pays one commit, not one per result."""
    if not rows:
        return 0
    cols: dict[str, list] = {c: [] for c in _PUT_COLS}
    for r in rows:
        for c in _PUT_COLS:
            v = r.get(c, 0 if c == "triple_id" else None)
            if c == "value" and r["status"] != "ok":
                v = None
            elif c == "trace" and v is not None:
                v = json.dumps(v)
            cols[c].append(v)
    params = [cols[c] for c in _PUT_COLS]
    with ws.transaction() as cur:
        cur.execute(_PUT_MANY_DELETE, params)
        cur.execute(_PUT_MANY_INSERT, params)
    return len(rows)


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


def video_features(ws: Workspace, keys: list[str]) -> dict[str, np.ndarray]:
    """The current ok results (keys as for CURRENT) as columns, one row per (video, metric): video_id, metric,
    value and every TRACE_COMPONENTS column "metric.component" (NaN where the row's metric has no such component
    or the trace lacks it). A per-triple metric is averaged over the video's triples. Columns, not records: a
    calibration reads tens of thousands of rows."""
    cols = ws._cursor().execute(_VIDEO_FEATURES, [list(keys)]).fetchnumpy()
    out = {"video_id": np.asarray(cols["video_id"], dtype=np.int64), "metric": np.asarray(cols["metric"], dtype=object)}
    for name in ["value", *_COMPONENT_NAMES]:
        out[name] = np.ma.filled(np.ma.asarray(cols[name], dtype=np.float64), np.nan)
    return out


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


def value_ranks(ws: Workspace, video_id: int, keys: list[str]) -> dict[str, dict[str, Any]]:
    """metric -> where this video's current value sits among the workspace's videos scored with that metric:
    n (videos with a value, this one included), below (how many score lower), ties (how many others score
    the same) and pct, its percentile: the share of the *other* scored videos that score lower, a tie
    counting half (None when it is the only one). Five videos at 0.1 ... 0.5: the 0.4 one is at 75."""
    out = {}
    for metric, n, below, ties in ws.query(_RANKS, [list(keys), int(video_id), int(video_id)]):
        pct = 100.0 * (below + ties / 2) / (n - 1) if n > 1 else None
        out[metric] = {"n": int(n), "below": int(below), "ties": int(ties), "pct": pct}
    return out


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("trace"), str):
        row["trace"] = json.loads(row["trace"])
    return row
