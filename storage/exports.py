"""Exports: one row per dataset export written (where, with which parameters, how many of each)."""
from __future__ import annotations

import json
from typing import Any

from .db import Workspace


def record_export(ws: Workspace, out_dir: str, params: dict[str, Any], counts: dict[str, Any]) -> int:
    return ws.execute("INSERT INTO exports (out_dir, params, counts) VALUES (?, ?, ?) RETURNING id",
                      [out_dir, json.dumps(params, default=str), json.dumps(counts, default=str)])[0][0]


def list_exports(ws: Workspace) -> list[dict[str, Any]]:
    rows = ws.query_dicts("SELECT id, out_dir, params, counts, created_at FROM exports ORDER BY id DESC")
    for r in rows:
        for k in ("params", "counts"):
            if isinstance(r[k], str):
                r[k] = json.loads(r[k])
    return rows
