"""The category taxonomy: domains and their subcategories, each with a display position."""
from __future__ import annotations

from typing import Any

from .db import Workspace, first


def taxonomy(ws: Workspace) -> list[dict[str, Any]]:
    """Every subcategory (`id`) with its domain, in display order."""
    return ws.query_dicts(
        "SELECT c.id, c.name AS category, d.name AS domain, d.id AS domain_id "
        "FROM categories c JOIN domains d ON d.id = c.domain_id ORDER BY d.position, c.position, c.id")


def report_taxonomy(ws: Workspace) -> list[dict[str, Any]]:
    """The same rows keyed `category_id`, the name the statistics and the benchmark join on."""
    return ws.query_dicts(
        "SELECT c.id AS category_id, c.name AS category, d.name AS domain, d.id AS domain_id "
        "FROM categories c JOIN domains d ON d.id = c.domain_id ORDER BY d.position, d.id, c.position, c.id")


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
