"""Prompts: motion prompts (one row per distinct text), optionally tied to the image they were written for."""
from __future__ import annotations

import hashlib

from ._rows import insert_unique
from .db import Workspace


def add_prompt(ws: Workspace, text: str, *, image_id: int | None = None, source: str = "manifest",
               template: str | None = None) -> tuple[int, bool]:
    """(id, created); the same text is one prompt, whichever image it came with first."""
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return insert_unique(ws, "SELECT id FROM prompts WHERE sha256 = ?",
                         "INSERT INTO prompts (sha256, text, image_id, source, template) VALUES (?, ?, ?, ?, ?) "
                         "RETURNING id", sha, [sha, text, image_id, source, template])


def prompt_texts(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT text FROM prompts ORDER BY id")]


def newest_by_image(ws: Workspace) -> dict[int, str]:
    """Image id -> the text of the newest prompt written for it."""
    return {int(i): t for i, t in ws.query("SELECT image_id, text FROM prompts WHERE image_id IS NOT NULL ORDER BY id")}


def texts_by_image(ws: Workspace) -> dict[int, list[str]]:
    """Image id -> the distinct prompt texts written for it or used by one of its triples, oldest prompt first."""
    out: dict[int, list[str]] = {}
    for image_id, text in ws.query(
            "SELECT image_id, text FROM (SELECT image_id, text, id FROM prompts WHERE image_id IS NOT NULL "
            "UNION SELECT t.image_id, p.text, p.id FROM triples t JOIN prompts p ON p.id = t.prompt_id "
            "WHERE t.image_id IS NOT NULL) ORDER BY image_id, id"):
        texts = out.setdefault(int(image_id), [])
        if text not in texts:
            texts.append(text)
    return out
