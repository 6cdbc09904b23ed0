"""Media catalogue: images, videos, prompts, triples, media roots and the category taxonomy."""
from __future__ import annotations

import hashlib
from typing import Any

from .db import Workspace, first

IMAGE_COLS = ("sha256", "path", "bytes", "format", "width", "height", "mode", "has_alpha",
              "category_id", "product", "source")
VIDEO_COLS = ("sha256", "path", "bytes", "container", "codec", "fps", "frame_count", "width",
              "height", "duration", "model", "source_image_id", "prompt_id")


def _insert_unique(ws: Workspace, table: str, cols: tuple[str, ...], rec: dict[str, Any]) -> tuple[int, bool]:
    """Insert unless a row with the same sha256 exists. Returns (id, created)."""
    with ws.transaction() as cur:
        row = first(cur.execute(f"SELECT id FROM {table} WHERE sha256 = ?", [rec["sha256"]]))
        if row:
            return row[0], False
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        new_id = cur.execute(f"INSERT INTO {table} ({names}) VALUES ({marks}) RETURNING id",
                             [rec.get(c) for c in cols]).fetchall()[0][0]
        return new_id, True


def add_image(ws: Workspace, rec: dict[str, Any]) -> tuple[int, bool]:
    return _insert_unique(ws, "images", IMAGE_COLS, rec)


def add_video(ws: Workspace, rec: dict[str, Any]) -> tuple[int, bool]:
    return _insert_unique(ws, "videos", VIDEO_COLS, rec)


def add_prompt(ws: Workspace, text: str, *, image_id: int | None = None, source: str = "manifest",
               template: str | None = None) -> tuple[int, bool]:
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _insert_unique(ws, "prompts", ("sha256", "text", "image_id", "source", "template"),
                          {"sha256": sha, "text": text, "image_id": image_id, "source": source,
                           "template": template})


def add_triple(ws: Workspace, *, video_id: int, image_id: int | None, prompt_id: int | None,
               model: str = "", benchmark_set: str = "", category_id: int | None = None,
               product: str | None = None) -> tuple[int, bool]:
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


def fill_missing(ws: Workspace, table: str, item_id: int, values: dict[str, Any]) -> None:
    """Set attribute columns that are still NULL (a later manifest adds what a folder ingest lacked)."""
    allowed = {"images": {"category_id", "product", "source"},
               "videos": {"model", "source_image_id", "prompt_id", "caption"}}[table]
    for col, val in values.items():
        if col not in allowed:
            raise ValueError(f"{col} is not a fillable column of {table}")
        if val is None:
            continue
        ws.execute(f"UPDATE {table} SET {col} = ? WHERE id = ? AND {col} IS NULL", [val, item_id])


def add_media_root(ws: Workspace, path: str) -> None:
    ws.execute("INSERT INTO media_roots (path) VALUES (?) ON CONFLICT DO NOTHING", [path])


def media_roots(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT path FROM media_roots ORDER BY id")]


# -- taxonomy -------------------------------------------------------------------------------
def taxonomy(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts(
        "SELECT c.id, c.name AS category, d.name AS domain, d.id AS domain_id "
        "FROM categories c JOIN domains d ON d.id = c.domain_id ORDER BY d.position, c.position, c.id")


def resolve_category(ws: Workspace, text: str | None) -> int | None:
    """'Domain / Subcategory' or a subcategory name (case-insensitive) → category id, else None."""
    if not text or not text.strip():
        return None
    text = text.strip()
    if "/" in text:
        dom, _, sub = (p.strip() for p in text.partition("/"))
        row = ws.query_one("SELECT c.id FROM categories c JOIN domains d ON d.id = c.domain_id "
                           "WHERE lower(d.name) = lower(?) AND lower(c.name) = lower(?)", [dom, sub])
    else:
        row = ws.query_one("SELECT min(id) FROM categories WHERE lower(name) = lower(?)", [text])
    return row[0] if row and row[0] is not None else None


def add_category(ws: Workspace, domain: str, name: str) -> int:
    with ws.transaction() as cur:
        dom = first(cur.execute("SELECT id FROM domains WHERE name = ?", [domain]))
        if dom is None:
            dom = cur.execute("INSERT INTO domains (name, position) SELECT ?, coalesce(max(position), -1) + 1 "
                              "FROM domains RETURNING id", [domain]).fetchall()[0]
        row = first(cur.execute("SELECT id FROM categories WHERE domain_id = ? AND name = ?", [dom[0], name]))
        if row:
            return row[0]
        return cur.execute("INSERT INTO categories (domain_id, name, position) "
                           "SELECT ?, ?, coalesce(max(position), -1) + 1 FROM categories WHERE domain_id = ? "
                           "RETURNING id", [dom[0], name, dom[0]]).fetchall()[0][0]


def rename_category(ws: Workspace, category_id: int, new_name: str) -> None:
    ws.execute("UPDATE categories SET name = ? WHERE id = ?", [new_name, category_id])


# -- reads ----------------------------------------------------------------------------------
def counts(ws: Workspace) -> dict[str, int]:
    row = ws.query_one(
        "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM videos), (SELECT count(*) FROM triples), "
        "(SELECT count(*) FROM label_events), (SELECT count(*) FROM metric_results)")
    return dict(zip(("images", "videos", "triples", "labels", "metric_results"), row))


def get_image(ws: Workspace, image_id: int) -> dict[str, Any] | None:
    rows = ws.query_dicts(
        "SELECT i.*, c.name AS category, d.name AS domain FROM images i "
        "LEFT JOIN categories c ON c.id = i.category_id LEFT JOIN domains d ON d.id = c.domain_id "
        "WHERE i.id = ?", [image_id])
    return rows[0] if rows else None


def get_video(ws: Workspace, video_id: int) -> dict[str, Any] | None:
    rows = ws.query_dicts(
        "SELECT v.*, p.text AS prompt, i.path AS source_image_path, i.product AS product, "
        "c.name AS category, d.name AS domain FROM videos v "
        "LEFT JOIN prompts p ON p.id = v.prompt_id LEFT JOIN images i ON i.id = v.source_image_id "
        "LEFT JOIN categories c ON c.id = i.category_id LEFT JOIN domains d ON d.id = c.domain_id "
        "WHERE v.id = ?", [video_id])
    return rows[0] if rows else None


def list_images(ws: Workspace, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT id, sha256, path, width, height, category_id, product FROM images "
                          "ORDER BY id LIMIT ? OFFSET ?", [limit, offset])


def list_videos(ws: Workspace, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT id, sha256, path, fps, frame_count, width, height, model, source_image_id "
                          "FROM videos ORDER BY id LIMIT ? OFFSET ?", [limit, offset])


def list_triples(ws: Workspace) -> list[dict[str, Any]]:
    return ws.query_dicts(
        "SELECT t.id, t.video_id, t.image_id, t.model, t.benchmark_set, t.product, t.category_id, "
        "v.path AS video_path, v.sha256 AS video_sha256, i.path AS image_path, p.text AS prompt "
        "FROM triples t JOIN videos v ON v.id = t.video_id LEFT JOIN images i ON i.id = t.image_id "
        "LEFT JOIN prompts p ON p.id = t.prompt_id ORDER BY t.id")
