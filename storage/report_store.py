"""SQL of the benchmark runner, the dataset statistics and the split export (issue #7).

Reads triples/videos/images/categories/labels/metric results/pair judgements; writes the `exports`
table and the `benchmark_sets` table (migration 0006).
"""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace

# -- triples with everything the reports and the export carry ----------------------------------
_TRIPLE_SELECT = (
    "SELECT t.id AS triple_id, t.video_id, t.image_id, t.prompt_id, t.model, t.benchmark_set, "
    "coalesce(t.category_id, i.category_id) AS category_id, c.name AS category, d.name AS domain, "
    "d.position AS domain_position, c.position AS category_position, "
    "coalesce(t.product, i.product) AS product, p.text AS prompt, v.caption, "
    "v.path AS video_path, v.sha256 AS video_sha256, v.bytes AS video_bytes, v.fps, v.frame_count, "
    "v.width AS video_width, v.height AS video_height, v.duration, v.codec, v.container, "
    "i.path AS image_path, i.sha256 AS image_sha256, i.bytes AS image_bytes, i.format AS image_format, "
    "i.width AS image_width, i.height AS image_height, i.dup_group "
    "FROM triples t JOIN videos v ON v.id = t.video_id "
    "LEFT JOIN images i ON i.id = t.image_id LEFT JOIN prompts p ON p.id = t.prompt_id "
    "LEFT JOIN categories c ON c.id = coalesce(t.category_id, i.category_id) "
    "LEFT JOIN domains d ON d.id = c.domain_id ")


def triples(ws: Workspace, *, benchmark_set: str | None = None) -> list[dict[str, Any]]:
    """Every triple (or those of one benchmark set) with its media, prompt, category and domain."""
    if benchmark_set is None:
        return ws.query_dicts(_TRIPLE_SELECT + "ORDER BY t.id")
    return ws.query_dicts(_TRIPLE_SELECT + "WHERE t.benchmark_set = ? ORDER BY t.id", [benchmark_set])


def benchmark_set_names(ws: Workspace) -> list[dict[str, Any]]:
    """Distinct benchmark_set values of the triples with their sizes ('' is the unnamed pool)."""
    return ws.query_dicts("SELECT benchmark_set AS name, count(*) AS triples, count(DISTINCT model) AS models "
                          "FROM triples GROUP BY benchmark_set ORDER BY benchmark_set")


# -- metric results ------------------------------------------------------------------------------
def latest_metric_results(ws: Workspace, video_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Newest result per (video, triple, metric), optionally for some videos only (no traces)."""
    sql = ("SELECT metric, metric_version, params_hash, video_id, triple_id, value, status, reason, backend FROM ("
           "SELECT *, row_number() OVER (PARTITION BY video_id, triple_id, metric ORDER BY id DESC) AS rn "
           "FROM metric_results{where}) WHERE rn = 1 ORDER BY video_id, triple_id, metric")
    if video_ids is None:
        return ws.query_dicts(sql.format(where=""))
    if not video_ids:
        return []
    return ws.query_dicts(sql.format(where=" WHERE video_id IN (SELECT unnest(?::BIGINT[]))"),
                          [sorted({int(v) for v in video_ids})])


# -- labels -------------------------------------------------------------------------------------
def current_labels(ws: Workspace, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """Current label per (item, annotator) for these item kinds (undone and skipped events excluded)."""
    marks = ", ".join("?" for _ in kinds)
    return ws.query_dicts(f"SELECT item_kind, item_id, annotator, value, reasons, note, event_id, created_at "
                          f"FROM current_labels WHERE item_kind IN ({marks}) ORDER BY event_id", list(kinds))


def pair_judgements(ws: Workspace) -> list[dict[str, Any]]:
    """Current Compare-tab judgements (item_kind 'pair') with their payloads decoded."""
    rows = ws.query_dicts(
        "SELECT c.item_id, c.annotator, c.value, c.event_id, e.payload FROM current_labels c "
        "JOIN label_events e ON e.id = c.event_id WHERE c.item_kind = 'pair' ORDER BY c.event_id")
    out = []
    for r in rows:
        payload = r.pop("payload")
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except json.JSONDecodeError:
                payload = None
        if isinstance(payload, dict):
            r.update(payload)
            out.append(r)
    return out


def classifier_scores(ws: Workspace) -> dict[int, float]:
    """Image id -> score of the newest classifier run (empty before any run)."""
    rows = ws.query("SELECT image_id, score FROM predictions WHERE run_id = "
                    "(SELECT max(id) FROM classifier_runs)")
    return {int(i): float(s) for i, s in rows}


# -- catalogue reads for the statistics -----------------------------------------------------------
def taxonomy(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts(
        "SELECT c.id AS category_id, c.name AS category, d.name AS domain, d.id AS domain_id "
        "FROM categories c JOIN domains d ON d.id = c.domain_id ORDER BY d.position, d.id, c.position, c.id")


def category_counts(ws: Workspace) -> list[dict[str, Any]]:
    """Per category: images, triples and distinct videos (0 where none)."""
    return ws.query_dicts(
        "SELECT c.id AS category_id, c.name AS category, d.name AS domain, "
        "(SELECT count(*) FROM images i WHERE i.category_id = c.id) AS images, "
        "(SELECT count(*) FROM triples t LEFT JOIN images i ON i.id = t.image_id "
        " WHERE coalesce(t.category_id, i.category_id) = c.id) AS triples, "
        "(SELECT count(DISTINCT t.video_id) FROM triples t LEFT JOIN images i ON i.id = t.image_id "
        " WHERE coalesce(t.category_id, i.category_id) = c.id) AS videos "
        "FROM categories c JOIN domains d ON d.id = c.domain_id ORDER BY d.position, d.id, c.position, c.id")


def uncategorised_counts(ws: Workspace) -> dict[str, int]:
    row = ws.query_one(
        "SELECT (SELECT count(*) FROM images WHERE category_id IS NULL), "
        "(SELECT count(*) FROM triples t LEFT JOIN images i ON i.id = t.image_id "
        " WHERE coalesce(t.category_id, i.category_id) IS NULL)")
    return {"images": int(row[0]), "triples": int(row[1])}


def prompt_texts(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT text FROM prompts ORDER BY id")]


def image_rows(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT id, sha256, path, category_id, product, dup_group FROM images ORDER BY id")


# -- benchmark sets -------------------------------------------------------------------------------
def put_benchmark_set(ws: Workspace, name: str, definition: dict[str, Any], source_path: str | None) -> None:
    with ws.transaction() as cur:
        cur.execute("DELETE FROM benchmark_sets WHERE name = ?", [name])
        cur.execute("INSERT INTO benchmark_sets (name, definition, source_path) VALUES (?, ?, ?)",
                    [name, json.dumps(definition, ensure_ascii=False), source_path])


def get_benchmark_set(ws: Workspace, name: str) -> dict[str, Any] | None:
    row = ws.query_one("SELECT definition FROM benchmark_sets WHERE name = ?", [name])
    if row is None:
        return None
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]


def list_benchmark_sets(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT name, source_path, imported_at FROM benchmark_sets ORDER BY name")


# -- exports --------------------------------------------------------------------------------------
def record_export(ws: Workspace, out_dir: str, params: dict[str, Any], counts: dict[str, Any]) -> int:
    return ws.execute("INSERT INTO exports (out_dir, params, counts) VALUES (?, ?, ?) RETURNING id",
                      [out_dir, json.dumps(params, default=str), json.dumps(counts, default=str)])[0][0]


def list_exports(ws: Workspace) -> list[dict[str, Any]]:
    rows = ws.query_dicts("SELECT id, out_dir, params, counts, created_at FROM exports ORDER BY id DESC")
    for r in rows:
        for k in ("params", "counts"):
            if isinstance(r[k], str):
                r[k] = json.loads(r[k])
    return rows
