"""The product mask drawn for people: an outline (a coloured line with a white halo) that never tints the
product's own pixels, so a designer judges its colours as they are. Used by the review app's overlays and
by `python -m curation segment`."""
from __future__ import annotations

import numpy as np

MASK_LINE = (255, 45, 140)         # the outline's colour; the white halo keeps it readable on any background
MASK_HALO = (255, 255, 255)


def mask_outline_rgba(mask: np.ndarray, width: int | None = None, fill: float = 0.0) -> np.ndarray:
    """An RGBA layer: the mask's contour as a coloured line with a white halo, transparent elsewhere. The
    product's own pixels are never coloured. `fill` > 0 veils the background (outside the mask) in white at
    that opacity, which sets the product apart without changing its colours."""
    import cv2
    m = np.asarray(mask, bool)
    h, w = m.shape
    lw = width or max(2, round(max(h, w) / 300))
    out = np.zeros((h, w, 4), np.uint8)
    if fill > 0:
        out[~m] = (255, 255, 255, int(round(255 * fill)))
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    if contours:
        halo = np.zeros((h, w), np.uint8)
        line = np.zeros((h, w), np.uint8)
        cv2.drawContours(halo, contours, -1, 1, lw + 2 * max(1, lw // 2))
        cv2.drawContours(line, contours, -1, 1, lw)
        out[halo > 0] = MASK_HALO + (230,)
        out[line > 0] = MASK_LINE + (255,)
    return out


def draw_mask(frame: np.ndarray, mask: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """`frame` with the mask's outline (and optional background veil) composited in."""
    layer = mask_outline_rgba(mask, fill=fill)
    a = layer[..., 3:4].astype(np.float32) / 255.0
    if not a.any():
        return frame
    return (frame.astype(np.float32) * (1 - a) + layer[..., :3].astype(np.float32) * a).astype(np.uint8)
