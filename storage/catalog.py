"""Workspace-wide catalogue facts: the counts `status` shows and the media roots the app may serve files from.

The catalogue's entities have their own modules: images, videos, prompts, triples, taxonomy.
"""
from __future__ import annotations

from .db import Workspace


def counts(ws: Workspace) -> dict[str, int]:
    row = ws.query_one(
        "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM videos), (SELECT count(*) FROM triples), "
        "(SELECT count(*) FROM label_events), (SELECT count(*) FROM metric_results)")
    return dict(zip(("images", "videos", "triples", "labels", "metric_results"), row))


def add_media_root(ws: Workspace, path: str) -> None:
    ws.execute("INSERT INTO media_roots (path) VALUES (?) ON CONFLICT DO NOTHING", [path])


def media_roots(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT path FROM media_roots ORDER BY id")]
