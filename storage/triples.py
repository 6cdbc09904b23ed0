"""Triples: (product image, prompt, generated video, model), the unit the benchmark scores and exports."""
from __future__ import annotations

from typing import Any

from .db import Workspace, first

# Every triple with everything the reports and the export carry.
_WITH_MEDIA = (
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


def add_triple(ws: Workspace, *, video_id: int, image_id: int | None, prompt_id: int | None,
               model: str = "", benchmark_set: str = "", category_id: int | None = None,
               product: str | None = None) -> tuple[int, bool]:
    """(id, created); the same (video, image, prompt, model, set) is one triple."""
    with ws.transaction() as cur:
        row = first(cur.execute(
            "SELECT id FROM triples WHERE video_id = ? AND image_id IS NOT DISTINCT FROM ? "
            "AND prompt_id IS NOT DISTINCT FROM ? AND model = ? AND benchmark_set = ?",
            [video_id, image_id, prompt_id, model, benchmark_set]))
        if row:
            return row[0], False
        new_id = cur.execute(
            "INSERT INTO triples (image_id, prompt_id, video_id, model, benchmark_set, category_id, product) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [image_id, prompt_id, video_id, model, benchmark_set, category_id, product]).fetchall()[0][0]
        return new_id, True


def list_triples(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts(
        "SELECT t.id, t.video_id, t.image_id, t.model, t.benchmark_set, t.product, t.category_id, "
        "v.path AS video_path, v.sha256 AS video_sha256, i.path AS image_path, p.text AS prompt "
        "FROM triples t JOIN videos v ON v.id = t.video_id LEFT JOIN images i ON i.id = t.image_id "
        "LEFT JOIN prompts p ON p.id = t.prompt_id ORDER BY t.id")


def triples_with_media(ws: Workspace, *, benchmark_set: str | None = None) -> list[dict[str, Any]]:
    """Every triple (or those of one benchmark set) with its media, prompt, category and domain."""
    if benchmark_set is None:
        return ws.query_dicts(_WITH_MEDIA + "ORDER BY t.id")
    return ws.query_dicts(_WITH_MEDIA + "WHERE t.benchmark_set = ? ORDER BY t.id", [benchmark_set])


def pair_side(ws: Workspace, triple_id: int) -> dict[str, Any] | None:
    """One side of a Compare-tab pair: the triple's video, image, prompt and model."""
    rows = ws.query_dicts(
        "SELECT t.id AS triple_id, t.video_id, t.model, t.image_id, p.text AS prompt, v.path AS video_path, "
        "v.sha256 AS video_sha256, i.path AS image_path, i.product FROM triples t JOIN videos v ON "
        "v.id = t.video_id LEFT JOIN prompts p ON p.id = t.prompt_id LEFT JOIN images i ON i.id = t.image_id "
        "WHERE t.id = ?", [int(triple_id)])
    return rows[0] if rows else None


def scoring_cases(ws: Workspace) -> list[dict[str, Any]]:
    """Every triple's reference image, prompt and product (the triple's own product first): scoring's cases."""
    return ws.query_dicts("SELECT t.id, t.video_id, i.path AS image_path, p.text AS prompt, "
                          "coalesce(t.product, i.product) AS product FROM triples t "
                          "LEFT JOIN images i ON i.id = t.image_id LEFT JOIN prompts p ON p.id = t.prompt_id "
                          "ORDER BY t.id")


def video_ids_of_model(ws: Workspace, model: str) -> set[int]:
    return {int(r[0]) for r in ws.query("SELECT DISTINCT video_id FROM triples WHERE model = ?", [model])}


def benchmark_set_names(ws: Workspace) -> list[dict[str, Any]]:
    """Distinct benchmark_set values of the triples with their sizes ('' is the unnamed pool)."""
    return ws.query_dicts("SELECT benchmark_set AS name, count(*) AS triples, count(DISTINCT model) AS models "
                          "FROM triples GROUP BY benchmark_set ORDER BY benchmark_set")
