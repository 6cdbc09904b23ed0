"""Benchmark sets: named InnoAds-Bench set definitions imported from a set file (migration 0006)."""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace


def put_benchmark_set(ws: Workspace, name: str, definition: dict[str, Any], source_path: str | None) -> None:
    with ws.transaction() as cur:
        cur.execute("DELETE FROM benchmark_sets WHERE name = ?", [name])
        cur.execute("INSERT INTO benchmark_sets (name, definition, source_path) VALUES (?, ?, ?)",
                    [name, json.dumps(definition, ensure_ascii=False), source_path])


def get_benchmark_set(ws: Workspace, name: str) -> dict[str, Any] | None:
    row = ws.query_one("SELECT definition FROM benchmark_sets WHERE name = ?", [name])
    if row is None:
        return None
    return json.loads(row[0]) if isinstance(row[0], str) else row[0]
