"""Label events: append-only; the current label is a view over them."""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace, first

ITEM_KINDS = ("image", "video", "triple", "pair")
_ITEM_TABLES = {"image": "images", "video": "videos", "triple": "triples"}


def append_event(ws: Workspace, *, item_kind: str, item_id: int, value: str, annotator: str,
                 reasons: list[str] | None = None, note: str | None = None, session: str | None = None,
                 undoes: int | None = None, payload: dict | None = None,
                 client_key: str | None = None) -> dict[str, Any]:
    """Append one event and commit it. A repeated `client_key` returns the first event, adds nothing."""
    if item_kind not in ITEM_KINDS:
        raise ValueError(f"item_kind must be one of {ITEM_KINDS}, got {item_kind!r}")
    with ws.transaction() as cur:
        table = _ITEM_TABLES.get(item_kind)
        if table and not cur.execute(f"SELECT count(*) FROM {table} WHERE id = ?", [item_id]).fetchall()[0][0]:
            raise ValueError(f"no {item_kind} with id {item_id} in this workspace")
        if client_key is not None:
            row = first(cur.execute("SELECT id, created_at FROM label_events WHERE client_key = ?",
                              [client_key]))
            if row:
                return {"id": row[0], "created_at": row[1], "duplicate": True}
        row = first(cur.execute(
            "INSERT INTO label_events (item_kind, item_id, value, reasons, note, annotator, session, "
            "undoes, payload, client_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, created_at",
            [item_kind, item_id, value, list(reasons or []), note, annotator, session, undoes,
             json.dumps(payload) if payload is not None else None, client_key]))
    return {"id": row[0], "created_at": row[1], "duplicate": False}


def last_undoable(ws: Workspace, annotator: str, item_kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The annotator's most recent label event (of these kinds) that is not yet undone."""
    marks = ", ".join("?" for _ in item_kinds)
    rows = ws.query_dicts(
        f"SELECT id, item_kind, item_id, value FROM label_events e WHERE annotator = ? "
        f"AND item_kind IN ({marks}) AND value NOT IN ('undo', 'skip') "
        f"AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.value = 'undo' AND u.undoes = e.id) "
        f"ORDER BY id DESC LIMIT 1", [annotator, *item_kinds])
    return rows[0] if rows else None


def current_label(ws: Workspace, item_kind: str, item_id: int, annotator: str | None = None) -> dict | None:
    sql = "SELECT * FROM current_labels WHERE item_kind = ? AND item_id = ?"
    params: list[Any] = [item_kind, item_id]
    if annotator is not None:
        sql += " AND annotator = ?"
        params.append(annotator)
    rows = ws.query_dicts(sql + " ORDER BY event_id DESC LIMIT 1", params)
    return rows[0] if rows else None


def current_labels(ws: Workspace, item_kind: str | None = None) -> list[dict[str, Any]]:
    if item_kind is None:
        return ws.query_dicts("SELECT * FROM current_labels ORDER BY event_id")
    return ws.query_dicts("SELECT * FROM current_labels WHERE item_kind = ? ORDER BY event_id", [item_kind])


def events(ws: Workspace, *, item_kind: str | None = None, since_id: int = 0) -> list[dict[str, Any]]:
    sql = "SELECT * FROM label_events WHERE id > ?"
    params: list[Any] = [since_id]
    if item_kind is not None:
        sql += " AND item_kind = ?"
        params.append(item_kind)
    return ws.query_dicts(sql + " ORDER BY id", params)
