"""SQL for the MLLM-backed commands (`prompts`, `captions`): what still needs a prompt or a caption,
and writing them with the model and template that produced them.

Caption provenance lives in `video_captions` (video_id, model, template, created_at; migration 0009) because
the videos table has only the caption text."""
from __future__ import annotations

from typing import Any

from . import labels, prompts
from .db import Workspace


def images_without_prompt(ws: Workspace, limit: int | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT i.id, i.path, i.product, i.category_id FROM images i "
           "WHERE NOT EXISTS (SELECT 1 FROM prompts p WHERE p.image_id = i.id) ORDER BY i.id LIMIT ?")
    return ws.query_dicts(sql, [int(limit) if limit else None])


def add_generated_prompt(ws: Workspace, image_id: int, text: str, *, model: str, template: str) -> tuple[int, bool]:
    return prompts.add_prompt(ws, text, image_id=image_id, source=f"mllm:{model}", template=template)


def accepted_video_ids(ws: Workspace) -> list[int]:
    """Videos whose decision under the label rule is 'accept'."""
    return sorted(i for i, d in labels.resolved_labels(ws, "video").items() if d["label"] == "accept")


def videos_needing_caption(ws: Workspace, limit: int | None = None) -> list[dict[str, Any]]:
    """Accepted videos (by the label rule) that have no caption yet."""
    sql = ("SELECT v.id, v.path, v.prompt_id, i.product FROM videos v LEFT JOIN images i ON i.id = v.source_image_id "
           "WHERE v.id IN (SELECT item_id FROM resolved_labels WHERE item_kind = 'video' AND label = 'accept') "
           "AND v.caption IS NULL ORDER BY v.id LIMIT ?")
    return ws.query_dicts(sql, [int(limit) if limit else None])


def set_caption(ws: Workspace, video_id: int, caption: str, *, model: str, template: str) -> bool:
    """Write the caption if the video has none. Returns whether it was written."""
    with ws.transaction() as cur:
        row = cur.execute("SELECT caption FROM videos WHERE id = ?", [video_id]).fetchone()
        if row is None or row[0] is not None:
            return False
        cur.execute("UPDATE videos SET caption = ? WHERE id = ?", [caption, video_id])
        cur.execute("DELETE FROM video_captions WHERE video_id = ?", [video_id])
        cur.execute("INSERT INTO video_captions (video_id, caption, model, template) VALUES (?, ?, ?, ?)",
                    [video_id, caption, model, template])
    return True


def caption_record(ws: Workspace, video_id: int) -> dict[str, Any] | None:
    rows = ws.query_dicts("SELECT * FROM video_captions WHERE video_id = ?", [video_id])
    return rows[0] if rows else None
