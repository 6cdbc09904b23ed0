"""SQL of image curation: filter results, perceptual hashes and duplicate groups, and the review queue (one
query). Labels come from the label-rule views (storage.labels), runs from storage.classifier_runs."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from . import labels
from .db import Workspace

# -- images ---------------------------------------------------------------------------------


def all_images(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT id, sha256, path, width, height, has_alpha, product, category_id, dup_group "
                          "FROM images ORDER BY id")


def embeddings_unordered(ws: Workspace, model_id: str) -> tuple[list[str], np.ndarray]:
    """Every cached vector of a model as (hashes, matrix), in storage order (no sort, no join: the fast
    path when most images are wanted)."""
    tbl = ws._cursor().sql("SELECT item_sha256, vector FROM embeddings WHERE model_id = ?",
                           params=[model_id]).to_arrow_table()
    keys = tbl.column("item_sha256").to_pylist()
    if not keys:
        return [], np.zeros((0, 0), np.float32)
    vec = tbl.column("vector").combine_chunks()
    return keys, vec.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(keys), -1)


def embedding_count(ws: Workspace, model_id: str) -> int:
    return int(ws.query_one("SELECT count(*) FROM embeddings WHERE model_id = ?", [model_id])[0])


# -- filter results -------------------------------------------------------------------------


def cached_filter_keys(ws: Workspace, filter_name: str, params_hash: str) -> set[int]:
    """Image ids that already have a result for this filter and parameter hash."""
    return {r[0] for r in ws.query("SELECT image_id FROM filter_results WHERE filter = ? AND params_hash = ?",
                                   [filter_name, params_hash])}


def put_filter_results(ws: Workspace, rows: list[dict[str, Any]]) -> int:
    """Insert or replace results: dicts with image_id, filter, params_hash, value, passed, reason, details."""
    if not rows:
        return 0
    tbl = pa.table({"image_id": pa.array([int(r["image_id"]) for r in rows], pa.int64()),
                    "filter": pa.array([r["filter"] for r in rows], pa.string()),
                    "params_hash": pa.array([r["params_hash"] for r in rows], pa.string()),
                    "value": pa.array([None if r.get("value") is None else float(r["value"]) for r in rows],
                                      pa.float64()),
                    "passed": pa.array([r.get("passed") for r in rows], pa.bool_()),
                    "reason": pa.array([r.get("reason") for r in rows], pa.string()),
                    "details": pa.array([json.dumps(r.get("details") or {}, default=float) for r in rows],
                                        pa.string())})
    with ws.transaction() as cur:
        cur.register("_new_filter_rows", tbl)
        try:
            cur.execute("DELETE FROM filter_results WHERE (image_id, filter, params_hash) IN "
                        "(SELECT image_id, filter, params_hash FROM _new_filter_rows)")
            cur.execute("INSERT INTO filter_results (image_id, filter, params_hash, value, passed, reason, details) "
                        "SELECT image_id, filter, params_hash, value, passed, reason, details::JSON "
                        "FROM _new_filter_rows")
            _refresh_filter_state(cur, "SELECT DISTINCT image_id FROM _new_filter_rows")
        finally:
            cur.unregister("_new_filter_rows")
    return len(rows)


def _refresh_filter_state(cur, ids_sql: str) -> None:
    """Recompute image_filter_state (newest verdict per filter) for the images ids_sql selects."""
    cur.execute(f"DELETE FROM image_filter_state WHERE image_id IN ({ids_sql})")
    cur.execute(
        "INSERT INTO image_filter_state (image_id, failed, reasons) "
        "SELECT image_id, coalesce(list(filter ORDER BY filter) FILTER (WHERE passed = false), []), "
        "coalesce(list(reason ORDER BY filter) FILTER (WHERE passed = false), []) "
        "FROM (SELECT image_id, filter, arg_max(passed, computed_at) AS passed, arg_max(reason, computed_at) AS reason "
        f"FROM filter_results WHERE image_id IN ({ids_sql}) GROUP BY image_id, filter) GROUP BY image_id")


def refresh_filter_state(ws: Workspace) -> None:
    """Rebuild image_filter_state for every image (after bulk inserts made outside put_filter_results)."""
    with ws.transaction() as cur:
        _refresh_filter_state(cur, "SELECT DISTINCT image_id FROM filter_results")


def filter_results_for_image(ws: Workspace, image_id: int) -> list[dict[str, Any]]:
    """The newest result of each filter for one image (what the UI shows), details decoded."""
    rows = ws.query_dicts(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY filter ORDER BY computed_at DESC) AS rn "
        "FROM filter_results WHERE image_id = ?) WHERE rn = 1 ORDER BY filter", [image_id])
    for r in rows:
        r.pop("rn", None)
        if isinstance(r.get("details"), str):
            r["details"] = json.loads(r["details"])
    return rows


def latest_filter_table(ws: Workspace, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per (image, filter): the result for the given params hash per filter, else the newest."""
    if params:
        conds = " OR ".join("(filter = ? AND params_hash = ?)" for _ in params)
        args: list[Any] = [x for kv in params.items() for x in kv]
        return ws.query_dicts(f"SELECT image_id, filter, value, passed, reason, details FROM filter_results "
                              f"WHERE {conds} ORDER BY image_id, filter", args)
    return ws.query_dicts(
        "SELECT image_id, filter, value, passed, reason, details FROM (SELECT *, row_number() OVER "
        "(PARTITION BY image_id, filter ORDER BY computed_at DESC) AS rn FROM filter_results) WHERE rn = 1 "
        "ORDER BY image_id, filter")


def latest_filter_values(ws: Workspace) -> dict[str, np.ndarray]:
    """The newest result per (image, filter) as columns image_id, filter, value, passed (passed: 1, 0, or -1 when
    the filter could not run), read through Arrow: the classifier's filter rule reads every image."""
    tbl = ws._cursor().sql(
        "SELECT image_id, filter, value, CASE WHEN passed IS NULL THEN -1 WHEN passed THEN 1 ELSE 0 END AS passed "
        "FROM (SELECT *, row_number() OVER (PARTITION BY image_id, filter ORDER BY computed_at DESC) AS rn "
        "FROM filter_results) WHERE rn = 1").to_arrow_table()
    return {"image_id": tbl.column("image_id").to_numpy(zero_copy_only=False).astype(np.int64),
            "filter": np.array(tbl.column("filter").to_pylist(), dtype=object),
            "value": tbl.column("value").to_numpy(zero_copy_only=False).astype(np.float64),
            "passed": tbl.column("passed").to_numpy(zero_copy_only=False).astype(np.int8)}


def filter_summary(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts(
        "SELECT filter, count(*) AS n, count(*) FILTER (WHERE passed) AS passed, "
        "count(*) FILTER (WHERE NOT passed) AS failed, count(*) FILTER (WHERE passed IS NULL) AS unavailable "
        "FROM (SELECT *, row_number() OVER (PARTITION BY image_id, filter ORDER BY computed_at DESC) AS rn "
        "FROM filter_results) WHERE rn = 1 GROUP BY filter ORDER BY filter")


# -- perceptual hashes and duplicate groups ---------------------------------------------------


def get_phashes(ws: Workspace) -> dict[int, tuple[str, int, np.ndarray]]:
    """image_id -> (sha256, phash, colour signature (48,))."""
    return {r[0]: (r[1], int(r[2]), np.asarray(r[3], np.float32))
            for r in ws.query("SELECT image_id, sha256, phash, colour FROM image_hashes")}


def put_phashes(ws: Workspace, rows: list[tuple[int, str, int, np.ndarray]]) -> None:
    if not rows:
        return
    tbl = pa.table({"image_id": pa.array([r[0] for r in rows], pa.int64()),
                    "sha256": pa.array([r[1] for r in rows], pa.string()),
                    "phash": pa.array([r[2] for r in rows], pa.uint64()),
                    "colour": pa.array([np.asarray(r[3], np.float32).tolist() for r in rows],
                                       pa.list_(pa.float32()))})
    with ws.transaction() as cur:
        cur.register("_new_hashes", tbl)
        try:
            cur.execute("DELETE FROM image_hashes WHERE image_id IN (SELECT image_id FROM _new_hashes)")
            cur.execute("INSERT INTO image_hashes (image_id, sha256, phash, colour) "
                        "SELECT image_id, sha256, phash, colour FROM _new_hashes")
        finally:
            cur.unregister("_new_hashes")


def set_dup_groups(ws: Workspace, image_ids: np.ndarray, groups: np.ndarray) -> None:
    """images.dup_group for every image given (the group id is the smallest image id in the group)."""
    tbl = pa.table({"id": pa.array(np.asarray(image_ids, np.int64)),
                    "g": pa.array(np.asarray(groups, np.int64))})
    with ws.transaction() as cur:
        cur.register("_groups", tbl)
        try:
            cur.execute("UPDATE images SET dup_group = _groups.g FROM _groups WHERE images.id = _groups.id "
                        "AND images.dup_group IS DISTINCT FROM _groups.g")
        finally:
            cur.unregister("_groups")


def dup_groups(ws: Workspace, min_size: int = 2) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT dup_group AS group_id, count(*) AS n, list(id ORDER BY id) AS image_ids, "
                          "list(path ORDER BY id) AS paths FROM images WHERE dup_group IS NOT NULL "
                          "GROUP BY dup_group HAVING count(*) >= ? ORDER BY n DESC, group_id", [min_size])


# -- the review queue ---------------------------------------------------------------------------

ORDERS = ("uncertainty", "score", "score_asc", "newest", "id", "disagreement")
LABEL_STATES = ("unlabelled", "labelled", "any", "good", "bad")


def image_queue(ws: Workspace, *, order: str = "uncertainty", label_state: str = "unlabelled",
                category_id: int | None = None, score_min: float | None = None, score_max: float | None = None,
                failed_filter: str | None = None, annotator: str | None = None, limit: int = 50,
                offset: int = 0, run_id: int | None = None, threshold: float | None = None) -> list[dict[str, Any]]:
    """The review queue: one query picks the page, one reads its labels. Uses the latest classifier run (or
    run_id) and its threshold.

    label_state: unlabelled | labelled | any | good | bad, by the label rule (resolved_labels).
    failed_filter: a filter name, or "any" for images failing at least one filter.
    annotator: only images that this annotator has a current label on.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if label_state not in LABEL_STATES:
        raise ValueError(f"label_state must be one of {LABEL_STATES}, got {label_state!r}")
    params: list[Any] = []
    run_sql = "(SELECT id FROM latest_classifier_run)" if run_id is None else "?"
    if run_id is not None:
        params.append(int(run_id))
    thr_sql = "coalesce((SELECT threshold FROM classifier_runs WHERE id = (SELECT rid FROM run)), 0.5)"
    if threshold is not None:
        thr_sql = "?"
        params.append(float(threshold))
    where = ["true"]
    decided = "SELECT item_id FROM resolved_labels WHERE item_kind = 'image'"
    if label_state == "unlabelled":
        where.append(f"i.id NOT IN ({decided})")
    elif label_state == "labelled":
        where.append(f"i.id IN ({decided})")
    elif label_state in ("good", "bad"):
        where.append(f"i.id IN ({decided} AND label = ?)")
        params.append(label_state)
    if category_id is not None:
        where.append("i.category_id = ?")
        params.append(int(category_id))
    if score_min is not None:
        where.append("p.score >= ?")
        params.append(float(score_min))
    if score_max is not None:
        where.append("p.score <= ?")
        params.append(float(score_max))
    if failed_filter:
        if failed_filter == "any":
            where.append("i.id IN (SELECT image_id FROM image_filter_state WHERE len(failed) > 0)")
        else:
            where.append("i.id IN (SELECT image_id FROM image_filter_state WHERE list_contains(failed, ?))")
            params.append(failed_filter)
    if annotator:
        where.append("i.id IN (SELECT item_id FROM current_labels WHERE item_kind = 'image' AND annotator = ?)")
        params.append(annotator)
    order_sql = {      # on the page's aliases, so the page and the final select sort alike
        "uncertainty": "q_score IS NULL, abs(q_score - (SELECT t FROM thr)) ASC, q_id",
        "score": "q_score DESC NULLS LAST, q_id",
        "score_asc": "q_score ASC NULLS LAST, q_id",
        "newest": "q_added DESC, q_id DESC",
        "id": "q_id",
        # classifier vs designer: a good image the classifier scores low, a bad one it scores high, first (the
        # fastest way to a mislabel or a classifier blind spot); images without both a label and a score last
        "disagreement": "q_dis DESC NULLS LAST, q_id",
    }[order]
    dis_sql, dis_join = "NULL", ""
    if order == "disagreement":
        dis_sql = "CASE rl.label WHEN 'good' THEN 1 - p.score WHEN 'bad' THEN p.score END"
        dis_join = ("LEFT JOIN (SELECT item_id, label FROM resolved_labels WHERE item_kind = 'image') rl "
                    "ON rl.item_id = i.id")
    # the page is chosen on narrow columns first; filter lists are then joined for its rows only
    sql = f"""
    WITH run AS (SELECT {run_sql} AS rid),
    thr AS (SELECT {thr_sql} AS t),
    page AS (SELECT i.id AS q_id, p.score AS q_score, i.added_at AS q_added, {dis_sql} AS q_dis
             FROM images i
             LEFT JOIN predictions p ON p.image_id = i.id AND p.run_id = (SELECT rid FROM run)
             {dis_join}
             WHERE {' AND '.join(where)}
             ORDER BY {order_sql}
             LIMIT ? OFFSET ?),
    f AS (SELECT image_id, failed, reasons FROM image_filter_state WHERE image_id IN (SELECT q_id FROM page))
    SELECT i.id AS image_id, i.path, i.sha256, i.width, i.height, i.category_id, i.product, i.dup_group,
           i.added_at, q_score AS score,
           coalesce(f.failed, []) AS failed_filters, coalesce(f.reasons, []) AS failed_reasons
    FROM page
    JOIN images i ON i.id = page.q_id
    LEFT JOIN f ON f.image_id = page.q_id
    ORDER BY {order_sql}"""
    rows = ws.query_dicts(sql, params + [int(limit), int(offset)])
    # the page's labels by id: a constant id list reaches below the label views' windows, a join does not
    decisions = labels.resolved_labels(ws, "image", [r["image_id"] for r in rows])
    for r in rows:
        r["id"] = r["image_id"]
        d = decisions.get(int(r["image_id"]))
        r["label"] = d["label"] if d else None
        r["annotators"] = list(d["annotators"]) if d else []
        r["conflict"] = bool(d["conflict"]) if d else False
        r["failed_filters"] = [x for x in (r["failed_filters"] or []) if x is not None]
        r["failed_reasons"] = [x for x in (r["failed_reasons"] or []) if x is not None]
    return rows
