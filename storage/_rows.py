"""Insert-if-absent by content hash, shared by the catalogue entities (images, videos, prompts)."""
from __future__ import annotations

from typing import Any

from .db import Workspace, first


def insert_unique(ws: Workspace, find_sql: str, insert_sql: str, sha256: str, values: list[Any]) -> tuple[int, bool]:
    """Insert unless a row with the same sha256 exists, in one transaction. Returns (id, created).
    `find_sql` takes the hash, `insert_sql` the values and returns the new id: both fixed statements."""
    with ws.transaction() as cur:
        row = first(cur.execute(find_sql, [sha256]))
        if row:
            return row[0], False
        return cur.execute(insert_sql, values).fetchall()[0][0], True
