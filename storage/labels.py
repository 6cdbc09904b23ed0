"""Label events and the one label rule.

Events are append-only; an undo is its own event pointing at the event it cancels. What an item's label is
comes from the views of migration 0007 and nowhere else (docs/benchmark.md, "Designer labels"):
`live_label_events` (undone events and undos dropped), `current_labels` (each annotator's latest live label),
`label_votes` (the label each annotator's vote counts; on a triple their triple label wins over their label
on its video) and `resolved_labels` (the decision: majority of votes, a tie to the most recent vote; migration
0010: a rule's label, annotator `rule:<calibration id>`, counts only where no person has a vote, `by_rule`).
Readers that need a label in SQL join those views; Python readers call the functions below.

A batch (`append_many`, `append_values`) is many events written in one transaction under one session id;
`undo_session` cancels every still-live event of a session in one transaction, so one undo takes back a whole
grid action or a whole `calibrate --apply` (whose batches `latest_rule_batch` finds).
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from .db import Workspace, first

ITEM_KINDS = ("image", "video", "triple", "pair")
# the kinds that have a decision; pairs are judgements between two triples, read as current_labels
DECIDED_KINDS = ("image", "video", "triple")
_EXISTS_SQL = {"image": "SELECT count(*) FROM images WHERE id = ?",
               "video": "SELECT count(*) FROM videos WHERE id = ?",
               "triple": "SELECT count(*) FROM triples WHERE id = ?"}
_RESOLVED_COLS = "item_id, label, decision, n_pos, n_neg, n_annotators, conflict, annotators, last_event, by_rule"
RULE_PREFIX = "rule:"   # annotators that are rules, not people (migration 0010 ranks them below every person)
_LATEST_RULE_BATCH = ("SELECT session, annotator, count(*) AS n, min(created_at) AS created_at FROM live_label_events "
                      "WHERE starts_with(annotator, ?) AND session IS NOT NULL GROUP BY session, annotator "
                      "ORDER BY max(id) DESC LIMIT 1")


def append_event(ws: Workspace, *, item_kind: str, item_id: int, value: str, annotator: str,
                 reasons: list[str] | None = None, note: str | None = None, session: str | None = None,
                 undoes: int | None = None, payload: dict | None = None,
                 client_key: str | None = None) -> dict[str, Any]:
    """Append one event and commit it. A repeated `client_key` returns the first event, adds nothing."""
    if item_kind not in ITEM_KINDS:
        raise ValueError(f"item_kind must be one of {ITEM_KINDS}, got {item_kind!r}")
    with ws.transaction() as cur:
        exists = _EXISTS_SQL.get(item_kind)
        if exists and not cur.execute(exists, [item_id]).fetchall()[0][0]:
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


def latest_rule_batch(ws: Workspace) -> dict[str, Any] | None:
    """The newest batch that still has live rule labels: {"session", "annotator", "n", "created_at"}, or None."""
    rows = ws.query_dicts(_LATEST_RULE_BATCH, [RULE_PREFIX])
    return rows[0] if rows else None


def human_labelled(ws: Workspace, item_kind: str) -> set[int]:
    """Items of a kind that some person (not a rule) has a current label on, whatever its value."""
    return {int(r[0]) for r in ws.query("SELECT DISTINCT item_id FROM current_labels WHERE item_kind = ? "
                                        "AND NOT starts_with(annotator, ?)", [item_kind, RULE_PREFIX])}


def event_by_client_key(ws: Workspace, client_key: str) -> dict[str, Any] | None:
    """The event a client key already wrote (a retried request finds its first answer here)."""
    rows = ws.query_dicts("SELECT id, item_kind, item_id, value, undoes FROM label_events WHERE client_key = ?",
                          [client_key])
    return rows[0] if rows else None


def last_undoable(ws: Workspace, annotator: str, item_kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The annotator's most recent live label event (of these kinds). A skip counts: undo after a skip brings
    the skipped item back, and must not reach past it to cancel the label before."""
    rows = ws.query_dicts(
        "SELECT id, item_kind, item_id, value FROM live_label_events WHERE annotator = ? "
        "AND list_contains(?::VARCHAR[], item_kind) ORDER BY id DESC LIMIT 1",
        [annotator, list(item_kinds)])
    return rows[0] if rows else None


# -- per annotator --------------------------------------------------------------------------------
def current_label(ws: Workspace, item_kind: str, item_id: int, annotator: str) -> dict | None:
    """One annotator's current label of an item (their latest live label), or None."""
    rows = ws.query_dicts("SELECT * FROM current_labels WHERE item_kind = ? AND item_id = ? AND annotator = ?",
                          [item_kind, int(item_id), annotator])
    return rows[0] if rows else None


def current_labels(ws: Workspace, item_kind: str | None = None) -> list[dict[str, Any]]:
    """Every (item, annotator) current label, oldest event first."""
    if item_kind is None:
        return ws.query_dicts("SELECT * FROM current_labels ORDER BY event_id")
    return ws.query_dicts("SELECT * FROM current_labels WHERE item_kind = ? ORDER BY event_id", [item_kind])


def item_labels(ws: Workspace, item_kind: str, item_id: int) -> list[dict[str, Any]]:
    """The current label of one item per annotator, newest first (what a card lists under "Labels")."""
    return ws.query_dicts("SELECT annotator, value, reasons, note, event_id, created_at FROM current_labels "
                          "WHERE item_kind = ? AND item_id = ? ORDER BY event_id DESC", [item_kind, int(item_id)])


def label_votes(ws: Workspace, item_kind: str) -> list[dict[str, Any]]:
    """The label each annotator's vote counts per item (label_kind: the kind it was given on), oldest first."""
    return ws.query_dicts("SELECT item_id, annotator, value, reasons, note, event_id, created_at, label_kind "
                          "FROM label_votes WHERE item_kind = ? ORDER BY item_id, event_id", [item_kind])


# -- the decision ---------------------------------------------------------------------------------
def resolved_labels(ws: Workspace, item_kind: str, item_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """item id -> its decision: label (good/bad for images, accept/reject else), decision (1/0), n_pos, n_neg,
    n_annotators, conflict, annotators, last_event, by_rule (decided by a rule's label: no person voted).
    Unlabelled items are absent."""
    if item_kind not in DECIDED_KINDS:
        raise ValueError(f"item_kind must be one of {DECIDED_KINDS}, got {item_kind!r}")
    sql = f"SELECT {_RESOLVED_COLS} FROM resolved_labels WHERE item_kind = ?"
    params: list[Any] = [item_kind]
    if item_ids is not None:
        if not item_ids:
            return {}
        # list_contains on a constant list is pushed below the views' windows; IN (subquery) is not
        sql += " AND list_contains(?::BIGINT[], item_id)"
        params.append(sorted({int(i) for i in item_ids}))
    return {int(r["item_id"]): r for r in ws.query_dicts(sql + " ORDER BY item_id", params)}


def resolved_label(ws: Workspace, item_kind: str, item_id: int) -> dict[str, Any] | None:
    return resolved_labels(ws, item_kind, [int(item_id)]).get(int(item_id))


def label_summary(ws: Workspace, item_kind: str, item_id: int) -> dict[str, Any] | None:
    """An item's decision as one record: value (the decided label), decision, n_pos, n_neg, annotators, and the
    annotator, reasons, note, event_id and created_at of the newest vote counted."""
    rows = ws.query_dicts(
        "SELECT r.label AS value, r.decision, r.n_pos, r.n_neg, r.annotators, v.annotator, v.reasons, v.note, "
        "v.event_id, v.created_at, v.label_kind FROM resolved_labels r JOIN label_votes v ON v.item_kind = r.item_kind "
        "AND v.item_id = r.item_id AND v.event_id = r.last_event WHERE r.item_kind = ? AND r.item_id = ?",
        [item_kind, int(item_id)])
    return rows[0] if rows else None


def label_counts(ws: Workspace, item_kind: str) -> dict[str, int]:
    """How many items of a kind have each decided label, e.g. {"good": 3, "bad": 1}."""
    rows = ws.query("SELECT label, count(*) FROM resolved_labels WHERE item_kind = ? GROUP BY label ORDER BY label",
                    [item_kind])
    return {r[0]: int(r[1]) for r in rows}


def events(ws: Workspace, *, item_kind: str | None = None, since_id: int = 0) -> list[dict[str, Any]]:
    sql = "SELECT * FROM label_events WHERE id > ?"
    params: list[Any] = [since_id]
    if item_kind is not None:
        sql += " AND item_kind = ?"
        params.append(item_kind)
    return ws.query_dicts(sql + " ORDER BY id", params)


def touched_items(ws: Workspace, item_kind: str, after_event: int, upto_event: int) -> list[int]:
    """Items of a kind that events in (after_event, upto_event] are about (undos included)."""
    return [int(r[0]) for r in ws.query("SELECT DISTINCT item_id FROM label_events WHERE id > ? AND id <= ? "
                                        "AND item_kind = ?", [after_event, upto_event, item_kind])]


def last_event_id(ws: Workspace) -> int:
    return int(ws.query_one("SELECT coalesce(max(id), 0) FROM label_events")[0])


# -- one action, many items (the Images grid, scripts) ---------------------------------------------
# A batch: one transaction, one session id "batch:<key>" shared by every event, so one undo finds them all. The
# grid's carry reasons and idempotency keys (a retried request adds nothing) and are undone per annotator (a
# designer's Z takes back only their own action); calibrate's rule batches are written and undone the same way.
BATCH_PREFIX = "batch:"
_ITEM_TABLES = {"image": "images", "video": "videos", "triple": "triples"}


def append_many(ws: Workspace, *, item_kind: str, item_ids: list[int], value: str, annotator: str,
                reasons: list[str] | None = None, note: str | None = None,
                client_key: str | None = None) -> dict[str, Any]:
    """One event per item (ids in the given order, each once), all with `value`: append_values."""
    return append_values(ws, item_kind=item_kind, values={int(i): value for i in item_ids}, annotator=annotator,
                         reasons=reasons, note=note, client_key=client_key)


def batch_session(ws: Workspace, event_id: int) -> str | None:
    """The batch session id of an event written by a batch ('batch:…'), else None."""
    row = ws.query_one("SELECT session FROM label_events WHERE id = ?", [int(event_id)])
    return row[0] if row and row[0] and str(row[0]).startswith(BATCH_PREFIX) else None


def undo_session(ws: Workspace, session: str, *, annotator: str,
                 client_key: str | None = None) -> list[dict[str, Any]]:
    """Cancel every still-live event of this annotator in a batch session, in one transaction; the undo events
    carry the batch's session. The first undo event carries `client_key` (event_by_client_key finds a retried
    request). Returns the cancelled events (id, item_kind, item_id, value), oldest first."""
    with ws.transaction() as cur:
        targets = cur.execute("SELECT id, item_kind, item_id, value FROM live_label_events WHERE session = ? "
                              "AND annotator = ? ORDER BY id", [session, annotator]).fetchall()
        if targets:
            cur.execute(
                "INSERT INTO label_events (item_kind, item_id, value, annotator, session, undoes, client_key) "
                "SELECT t.item_kind, t.item_id, 'undo', ?, ?, t.id, CASE WHEN t.id = ? THEN ? END "
                "FROM (SELECT unnest(?::BIGINT[]) AS id) b JOIN label_events t ON t.id = b.id ORDER BY t.id",
                [annotator, session, targets[0][0], client_key, [r[0] for r in targets]])
    return [{"id": int(r[0]), "item_kind": r[1], "item_id": int(r[2]), "value": r[3]} for r in targets]


def annotator_values(ws: Workspace, item_kind: str, item_ids: list[int], annotator: str) -> dict[int, str]:
    """item id -> this annotator's latest live event value on it (a skip included: the grid shows that the
    designer passed over an item); items they have not touched are absent."""
    if not item_ids or not annotator:
        return {}
    rows = ws.query("SELECT item_id, arg_max(value, id) FROM live_label_events WHERE item_kind = ? "
                    "AND annotator = ? AND list_contains(?::BIGINT[], item_id) GROUP BY item_id",
                    [item_kind, annotator, sorted({int(i) for i in item_ids})])
    return {int(r[0]): r[1] for r in rows}


def append_values(ws: Workspace, *, item_kind: str, values: dict[int, str], annotator: str,
                  reasons: list[str] | None = None, note: str | None = None,
                  client_key: str | None = None) -> dict[str, Any]:
    """One event per item with its own value (Best of N: one accept, the rest reject, in one action; the grid's
    append_many: one value for all), in the given order, committed together under the session
    'batch:<client_key or a fresh id>', so batch_session / undo_session take it back whole. Each event's client
    key is '<client_key>/<item id>', so a retried request finds its first event and adds nothing:
    {"session", "n", "duplicate"}. An id that is not an item of this kind: ValueError naming it, nothing
    written."""
    if item_kind not in _ITEM_TABLES:
        raise ValueError(f"batches label {tuple(_ITEM_TABLES)}, not {item_kind!r}")
    ids = list(dict.fromkeys(int(i) for i in values))
    key = client_key or uuid.uuid4().hex
    session = BATCH_PREFIX + key
    if not ids:
        return {"session": session, "n": 0, "duplicate": False}
    with ws.transaction() as cur:
        if client_key is not None:
            n = cur.execute("SELECT count(*) FROM label_events WHERE session = ?", [session]).fetchall()[0][0]
            if n:
                return {"session": session, "n": int(n), "duplicate": True}
        found = {r[0] for r in cur.execute(f"SELECT id FROM {_ITEM_TABLES[item_kind]} "
                                           "WHERE list_contains(?::BIGINT[], id)", [ids]).fetchall()}
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValueError(f"no {item_kind} with id {', '.join(map(str, missing[:5]))}"
                             f"{' …' if len(missing) > 5 else ''} in this workspace")
        rows = cur.execute(
            "INSERT INTO label_events (item_kind, item_id, value, reasons, note, annotator, session, client_key) "
            "SELECT ?, b.item_id, b.value, ?::VARCHAR[], ?, ?, ?, CASE WHEN ? THEN ? || '/' || b.item_id::VARCHAR END "
            "FROM (SELECT unnest(?::BIGINT[]) AS item_id, unnest(?::VARCHAR[]) AS value, "
            "generate_subscripts(?::BIGINT[], 1) AS k) b ORDER BY b.k RETURNING id",
            [item_kind, list(reasons or []), note, annotator, session, client_key is not None, key, ids,
             [str(values[i]) for i in ids], ids]).fetchall()
    return {"session": session, "n": len(rows), "duplicate": False}
