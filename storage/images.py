"""Images: the catalogue rows of product images (one per content hash)."""
from __future__ import annotations

from typing import Any, Iterable

from ._rows import insert_unique
from .db import Workspace

IMAGE_COLS = ("sha256", "path", "bytes", "format", "width", "height", "mode", "has_alpha",
              "category_id", "product", "source")
# A later manifest may add what a folder ingest lacked, never overwrite: one fixed statement per column.
_FILL = {"category_id": "UPDATE images SET category_id = ? WHERE id = ? AND category_id IS NULL",
         "product": "UPDATE images SET product = ? WHERE id = ? AND product IS NULL",
         "source": "UPDATE images SET source = ? WHERE id = ? AND source IS NULL"}


def add_image(ws: Workspace, rec: dict[str, Any]) -> tuple[int, bool]:
    """(id, created); an image with the same sha256 is kept as it is."""
    return insert_unique(
        ws, "SELECT id FROM images WHERE sha256 = ?",
        "INSERT INTO images (sha256, path, bytes, format, width, height, mode, has_alpha, category_id, product, "
        "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        rec["sha256"], [rec.get(c) for c in IMAGE_COLS])


def fill_missing(ws: Workspace, image_id: int, values: dict[str, Any]) -> None:
    """Set attribute columns that are still NULL."""
    for col, val in values.items():
        if col not in _FILL:
            raise ValueError(f"{col} is not a fillable column of images")
        if val is not None:
            ws.execute(_FILL[col], [val, image_id])


def get_image(ws: Workspace, image_id: int) -> dict[str, Any] | None:
    rows = ws.query_dicts(
        "SELECT i.*, c.name AS category, d.name AS domain FROM images i "
        "LEFT JOIN categories c ON c.id = i.category_id LEFT JOIN domains d ON d.id = c.domain_id "
        "WHERE i.id = ?", [image_id])
    return rows[0] if rows else None


def sha256_of(ws: Workspace, image_id: int) -> str | None:
    row = ws.query_one("SELECT sha256 FROM images WHERE id = ?", [image_id])
    return row[0] if row else None


def thumb_rows(ws: Workspace, image_ids: Iterable[int]) -> dict[int, tuple]:
    """id -> (id, sha256, path, width, height) for these images (absent ids are left out)."""
    rows = ws.query("SELECT id, sha256, path, width, height FROM images WHERE id IN (SELECT unnest(?::BIGINT[]))",
                    [[int(i) for i in image_ids]])
    return {r[0]: r for r in rows}


def hashes_and_paths(ws: Workspace) -> list[tuple[int, str, str]]:
    """(id, sha256, path) of every image, in storage order."""
    return ws.query("SELECT id, sha256, path FROM images")


def image_rows(ws: Workspace) -> list[dict[str, Any]]:
    """Every image with its category, product and near-duplicate group, by id."""
    return ws.query_dicts("SELECT id, sha256, path, category_id, product, dup_group FROM images ORDER BY id")


def export_rows(ws: Workspace) -> list[dict[str, Any]]:
    """Every image with its media facts, category, domain, product and near-duplicate group, by id (what an
    image-set export writes per image)."""
    return ws.query_dicts(
        "SELECT i.id AS image_id, i.sha256 AS image_sha256, i.path AS image_path, i.format AS image_format, "
        "i.width AS image_width, i.height AS image_height, i.category_id, c.name AS category, d.name AS domain, "
        "i.product, i.dup_group FROM images i LEFT JOIN categories c ON c.id = i.category_id "
        "LEFT JOIN domains d ON d.id = c.domain_id ORDER BY i.id")
