"""Best-of-N cases: the triples that share a source image (and prompt, when there is one) are one case, its
candidates the videos the models made for it. A candidate is accepted when the label rule's decision on its
triple is 'accept' (storage.labels: a designer's label on the triple, else on its video)."""
from __future__ import annotations

from typing import Any

from .db import Workspace

ORDERS = {
    # cases still without an accepted video first: what a designer's day works through
    "open": "(c.n_accepted > 0), c.image_id, c.prompt_id NULLS FIRST",
    "image": "c.image_id, c.prompt_id NULLS FIRST",
    "model": "c.first_model, c.image_id, c.prompt_id NULLS FIRST",
}
_CASES = (
    "WITH acc AS (SELECT item_id, label FROM resolved_labels WHERE item_kind = 'triple'), "
    "c AS (SELECT t.image_id, t.prompt_id, count(*) AS n, list(DISTINCT t.model ORDER BY t.model) AS models, "
    "min(t.model) AS first_model, count(*) FILTER (WHERE acc.label = 'accept') AS n_accepted, "
    "count(acc.label) AS n_decided FROM triples t LEFT JOIN acc ON acc.item_id = t.id "
    "WHERE t.image_id IS NOT NULL GROUP BY t.image_id, t.prompt_id) "
    "SELECT c.image_id, c.prompt_id, c.n, c.models, c.n_accepted, c.n_decided, i.path AS image_path, i.product, "
    "p.text AS prompt FROM c JOIN images i ON i.id = c.image_id LEFT JOIN prompts p ON p.id = c.prompt_id ")


def case_id(image_id: int, prompt_id: int | None) -> str:
    """A case's id: 'image id:prompt id', the prompt left empty when the triples have none ('7:')."""
    return f"{int(image_id)}:{'' if prompt_id is None else int(prompt_id)}"


def parse_case_id(cid: str) -> tuple[int, int | None]:
    """'7:3' -> (7, 3); '7:' -> (7, None). ValueError for anything else."""
    head, sep, tail = str(cid).strip().partition(":")
    if not sep or not head.isdigit() or (tail and not tail.isdigit()):
        raise ValueError(f"a case id is '<image id>:<prompt id>' (prompt may be empty), got {cid!r}")
    return int(head), (int(tail) if tail else None)


def cases(ws: Workspace, *, search: str | None = None, model: str | None = None, open_only: bool = False,
          order: str = "open", limit: int = 10_000, offset: int = 0) -> list[dict[str, Any]]:
    """The cases, filtered and ordered: case_id, image_id, prompt_id, n (candidates), models, n_accepted,
    n_decided, image_path, product, prompt. search: part of the source image's file name or product, or its id;
    model: cases with a candidate of this model; open_only: cases with no accepted candidate yet."""
    where, params = [], []
    if search and search.strip():
        s = search.strip()
        where.append("(i.path ILIKE ? OR coalesce(i.product, '') ILIKE ? OR CAST(i.id AS VARCHAR) = ?)")
        params += [f"%{s}%", f"%{s}%", s.lstrip("#")]
    if model:
        where.append("list_contains(c.models, ?)")
        params.append(model)
    if open_only:
        where.append("c.n_accepted = 0")
    sql = (_CASES + (("WHERE " + " AND ".join(where)) if where else "")
           + f" ORDER BY {ORDERS.get(order, ORDERS['open'])} LIMIT ? OFFSET ?")
    rows = ws.query_dicts(sql, params + [int(limit), int(offset)])
    for r in rows:
        r["case_id"] = case_id(r["image_id"], r["prompt_id"])
    return rows


def case_head(ws: Workspace, image_id: int, prompt_id: int | None) -> dict[str, Any] | None:
    """One case's row as `cases` gives it, or None when no triple has this image and prompt."""
    rows = ws.query_dicts(_CASES + "WHERE c.image_id = ? AND c.prompt_id IS NOT DISTINCT FROM ?",
                          [int(image_id), prompt_id])
    if not rows:
        return None
    rows[0]["case_id"] = case_id(image_id, prompt_id)
    return rows[0]


def candidates(ws: Workspace, image_id: int, prompt_id: int | None) -> list[dict[str, Any]]:
    """A case's candidates, by model then triple: triple_id, video_id, model and the video's file facts."""
    return ws.query_dicts(
        "SELECT t.id AS triple_id, t.video_id, t.model, v.path, v.sha256, v.fps, v.frame_count, v.width, v.height, "
        "v.duration FROM triples t JOIN videos v ON v.id = t.video_id WHERE t.image_id = ? "
        "AND t.prompt_id IS NOT DISTINCT FROM ? ORDER BY t.model, t.id", [int(image_id), prompt_id])


def case_of_triple(ws: Workspace, triple_id: int) -> tuple[int, int | None] | None:
    """(image id, prompt id) of the case a triple belongs to; None for a triple without a source image."""
    row = ws.query_one("SELECT image_id, prompt_id FROM triples WHERE id = ? AND image_id IS NOT NULL",
                       [int(triple_id)])
    return (int(row[0]), None if row[1] is None else int(row[1])) if row else None


def progress(ws: Workspace) -> dict[str, int]:
    """{"cases": how many cases, "accepted": how many have an accepted candidate}."""
    row = ws.query_one("SELECT count(*), count(*) FILTER (WHERE n_accepted > 0) FROM (" + _CASES + ")")
    return {"cases": int(row[0]), "accepted": int(row[1])}


def models(ws: Workspace) -> list[str]:
    """The models that made a candidate of some case."""
    return [r[0] for r in ws.query("SELECT DISTINCT model FROM triples WHERE image_id IS NOT NULL AND model <> '' "
                                   "ORDER BY 1")]
