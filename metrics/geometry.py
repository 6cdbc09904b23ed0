"""Boxes of masks and text quads, and their overlap: one definition each for the metrics, the segmenters
and the review app's overlays. A box is (x0, y0, x1, y1), x1/y1 exclusive for masks."""
from __future__ import annotations

from typing import Any

import numpy as np


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box of a mask's pixels (nonzero values); None when the mask is empty."""
    mask = np.asarray(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def quad_box(q: Any) -> tuple[float, float, float, float]:
    """The axis-aligned box of a quad (or any set of (x, y) points)."""
    q = np.asarray(q, np.float64).reshape(-1, 2)
    return float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())


def box_iou(a, b) -> float:
    """Intersection over union of two boxes; 0 when both are empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
