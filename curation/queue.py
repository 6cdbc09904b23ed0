"""Review order of images for the app's Images tab.

Orders: "uncertainty" (score closest to the latest run's threshold first -- active learning),
"score" (high -> low), "score_asc" (low -> high), "newest". With `diverse=True` a k-centre greedy
pass over cached embeddings picks the batch from a larger candidate pool so that a page is not ten
near-copies. One SQL query (storage.curation_store.image_queue) does the filtering and ordering.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from storage import Workspace, embeddings
from storage import curation_store as cs

DIVERSITY_POOL = 5          # candidates = limit * DIVERSITY_POOL


def image_queue(ws: Workspace, *, order: str = "uncertainty", label_state: str = "unlabelled",
                category_id: int | None = None, score_min: float | None = None, score_max: float | None = None,
                failed_filter: str | None = None, annotator: str | None = None, limit: int = 50, offset: int = 0,
                diverse: bool = False, run_id: int | None = None) -> list[dict[str, Any]]:
    """Images to review, each a dict: id / image_id, path, sha256, score (None before any run), label
    (resolved current label or None), failed_filters (names), failed_reasons, category_id, product,
    annotators, conflict, dup_group."""
    kw = dict(order=order, label_state=label_state, category_id=category_id, score_min=score_min,
              score_max=score_max, failed_filter=failed_filter, annotator=annotator, run_id=run_id)
    if not diverse:
        return cs.image_queue(ws, limit=limit, offset=offset, **kw)
    pool = cs.image_queue(ws, limit=limit * DIVERSITY_POOL, offset=offset * DIVERSITY_POOL, **kw)
    if len(pool) <= limit:
        return pool
    picked = k_centre(_vectors(ws, [r["sha256"] for r in pool]), limit)
    return [pool[i] for i in sorted(picked)]      # keep the order's ranking among the picked


def _vectors(ws: Workspace, shas: list[str]) -> np.ndarray | None:
    """Cached embeddings of these images (first model that covers them all: CLIP, DINO, classical)."""
    rows = embeddings.models_covering(ws, shas)
    if not rows:
        return None
    from .features import embedding_matrix

    pref = sorted(rows, key=lambda r: (-r[1], 0 if r[0].startswith("open_clip") else
                                       1 if r[0].startswith("timm") else 2))
    mat, present = embedding_matrix(ws, pref[0][0], shas)
    if not present.any():
        return None
    return mat


def k_centre(vectors: np.ndarray | None, k: int) -> list[int]:
    """Greedy k-centre: start from the first (best-ranked) item, then repeatedly take the item farthest
    from everything picked. Items without a vector (zero rows) are taken last."""
    if vectors is None:
        return list(range(k))
    n = len(vectors)
    k = min(k, n)
    picked = [0]
    d = np.linalg.norm(vectors - vectors[0], axis=1)
    missing = ~np.any(vectors != 0, axis=1)
    d[missing] = -1.0
    d[0] = -np.inf
    while len(picked) < k:
        i = int(np.argmax(d))
        if d[i] == -np.inf:
            break
        picked.append(i)
        d = np.minimum(d, np.where(missing, -1.0, np.linalg.norm(vectors - vectors[i], axis=1)))
        d[picked] = -np.inf
    return picked
