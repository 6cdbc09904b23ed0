"""The label event log as `labels export` writes it: every event, undo events included, with the hash and
path of the image or video it is about (what `labels import` resolves on another workspace)."""
from __future__ import annotations

from typing import Any

from .db import Workspace

_LOG = ("SELECT e.id, e.item_kind, e.item_id, coalesce(i.sha256, v.sha256) AS sha256, "
        "coalesce(i.path, v.path) AS path, e.value, e.reasons, e.note, e.annotator, e.session, e.undoes, "
        "e.payload, e.client_key, e.created_at FROM label_events e "
        "LEFT JOIN images i ON e.item_kind = 'image' AND i.id = e.item_id "
        "LEFT JOIN videos v ON e.item_kind = 'video' AND v.id = e.item_id")


def event_log(ws: Workspace, item_kind: str | None = None) -> list[dict[str, Any]]:
    """Every label event (of one item kind when given), oldest first; payload as stored (JSON text)."""
    if item_kind:
        return ws.query_dicts(_LOG + " WHERE e.item_kind = ? ORDER BY e.id", [item_kind])
    return ws.query_dicts(_LOG + " ORDER BY e.id")
