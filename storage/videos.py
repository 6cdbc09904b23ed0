"""Videos: the catalogue rows of generated videos (one per content hash)."""
from __future__ import annotations

from typing import Any

from ._rows import insert_unique
from .db import Workspace

VIDEO_COLS = ("sha256", "path", "bytes", "container", "codec", "fps", "frame_count", "width",
              "height", "duration", "model", "source_image_id", "prompt_id")
# A later manifest may add what a folder ingest lacked, never overwrite: one fixed statement per column.
_FILL = {"model": "UPDATE videos SET model = ? WHERE id = ? AND model IS NULL",
         "source_image_id": "UPDATE videos SET source_image_id = ? WHERE id = ? AND source_image_id IS NULL",
         "prompt_id": "UPDATE videos SET prompt_id = ? WHERE id = ? AND prompt_id IS NULL",
         "caption": "UPDATE videos SET caption = ? WHERE id = ? AND caption IS NULL"}


def add_video(ws: Workspace, rec: dict[str, Any]) -> tuple[int, bool]:
    """(id, created); a video with the same sha256 is kept as it is."""
    return insert_unique(
        ws, "SELECT id FROM videos WHERE sha256 = ?",
        "INSERT INTO videos (sha256, path, bytes, container, codec, fps, frame_count, width, height, duration, "
        "model, source_image_id, prompt_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        rec["sha256"], [rec.get(c) for c in VIDEO_COLS])


def fill_missing(ws: Workspace, video_id: int, values: dict[str, Any]) -> None:
    """Set attribute columns that are still NULL."""
    for col, val in values.items():
        if col not in _FILL:
            raise ValueError(f"{col} is not a fillable column of videos")
        if val is not None:
            ws.execute(_FILL[col], [val, video_id])


def get_video(ws: Workspace, video_id: int) -> dict[str, Any] | None:
    rows = ws.query_dicts(
        "SELECT v.*, p.text AS prompt, i.path AS source_image_path, i.product AS product, "
        "c.name AS category, d.name AS domain FROM videos v "
        "LEFT JOIN prompts p ON p.id = v.prompt_id LEFT JOIN images i ON i.id = v.source_image_id "
        "LEFT JOIN categories c ON c.id = i.category_id LEFT JOIN domains d ON d.id = c.domain_id "
        "WHERE v.id = ?", [video_id])
    return rows[0] if rows else None


def list_videos(ws: Workspace, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    return ws.query_dicts("SELECT id, sha256, path, fps, frame_count, width, height, model, source_image_id "
                          "FROM videos ORDER BY id LIMIT ? OFFSET ?", [limit, offset])


def hashes_and_paths(ws: Workspace) -> list[tuple[int, str, str]]:
    """(id, sha256, path) of every video, in storage order."""
    return ws.query("SELECT id, sha256, path FROM videos")


def scoring_rows(ws: Workspace) -> list[dict[str, Any]]:
    """Every video with its source image and prompt: what scoring needs when a video has no triple."""
    return ws.query_dicts("SELECT v.id, v.path, v.source_image_id, v.prompt_id, i.path AS image_path, "
                          "i.product AS image_product, p.text AS prompt FROM videos v "
                          "LEFT JOIN images i ON i.id = v.source_image_id "
                          "LEFT JOIN prompts p ON p.id = v.prompt_id ORDER BY v.id")


def briefs(ws: Workspace, video_ids: list[int]) -> dict[int, dict[str, Any]]:
    """video id -> {"path", "model"} of these videos (the few rows a preview lists)."""
    if not video_ids:
        return {}
    rows = ws.query_dicts("SELECT id, path, model FROM videos WHERE list_contains(?::BIGINT[], id)",
                          [sorted({int(i) for i in video_ids})])
    return {int(r["id"]): {"path": r["path"], "model": r["model"]} for r in rows}
