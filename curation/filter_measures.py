"""The image measurements behind the heuristic filters (filters.py): sharpness, exposure, colourfulness,
JPEG blockiness, noise, long straight lines and repeated panels. Pure functions of a decoded image (numpy
and OpenCV), no thresholds: the filters compare them with their parameters.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

WORK_SIDE = 768          # measurements run on the image scaled so its long side is at most this


def _to_work(img: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    s = min(1.0, side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img, s


def _grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    return cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)


# -- measurements -------------------------------------------------------------------------------

def blur_variance(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=3).var())


def exposure_stats(grey: np.ndarray) -> dict[str, float]:
    g = grey.astype(np.float32)
    lo, hi = np.percentile(g, [1, 99])
    return {"highlights": float((grey >= 252).mean()), "shadows": float((grey <= 3).mean()),
            "luma_mean": float(g.mean()), "luma_range": float(hi - lo)}


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness: 0 for greyscale, ~15 slightly, ~60+ vivid."""
    g = rgb[..., :3].astype(np.float32)
    rg = g[..., 0] - g[..., 1]
    yb = 0.5 * (g[..., 0] + g[..., 1]) - g[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def repeated_panels(img: np.ndarray) -> dict[str, int]:
    """Rectangular panels (closed, nearly rectangular edge contours of 1-40 % of the image) and the
    size of the largest group of panels of similar area (a grid of thumbnails repeats them)."""
    g = _grey(img)
    e = cv2.dilate(cv2.Canny(g, 50, 150), np.ones((3, 3), np.uint8))
    cnts, _ = cv2.findContours(e, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    H, W = g.shape
    rects = []
    for cnt in cnts:
        x, y, w, h = cv2.boundingRect(cnt)
        a = w * h / (H * W)
        if 0.01 <= a <= 0.4 and cv2.contourArea(cnt) >= 0.85 * w * h:
            rects.append((x, y, w, h))
    out: list[tuple[int, int, int, int]] = []
    for r in sorted(rects, key=lambda r: -r[2] * r[3]):
        if all(abs(r[0] - o[0]) > 4 or abs(r[1] - o[1]) > 4 or abs(r[2] - o[2]) > 8 for o in out):
            out.append(r)
    areas = np.array([w * h for _, _, w, h in out], np.float64)
    similar = max((int(((areas > a / 1.5) & (areas < a * 1.5)).sum()) for a in areas), default=0)
    return {"panels": len(out), "similar_panels": similar}


def blockiness(grey: np.ndarray) -> float:
    """JPEG 8x8 blockiness: mean |step| across 8-px block boundaries over the mean |step| elsewhere.
    1.0 means no visible grid; measured on the original resolution (the grid lives there)."""
    g = grey.astype(np.float32)
    if g.shape[0] < 24 or g.shape[1] < 24:
        return 1.0
    # steps are clipped at 16 grey levels: block artefacts are small steps, while a few strong object
    # edges that happen to sit on the 8-px grid must not dominate
    dx = np.minimum(np.abs(np.diff(g, axis=1)), 16.0)
    dy = np.minimum(np.abs(np.diff(g, axis=0)), 16.0)
    cols = np.arange(dx.shape[1])
    rows = np.arange(dy.shape[0])
    bx, ix = dx[:, cols % 8 == 7].mean(), dx[:, cols % 8 != 7].mean()
    by, iy = dy[rows % 8 == 7].mean(), dy[rows % 8 != 7].mean()
    return float((bx + by) / max(ix + iy, 1e-3))


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's fast noise variance estimate (robust on flat regions)."""
    g = grey.astype(np.float64)
    if min(g.shape) < 3:
        return 0.0
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    conv = cv2.filter2D(g, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    # ignore strong edges (text, product outlines): keep the flattest 60 % of pixels
    a = np.abs(conv)
    cutoff = np.percentile(a, 60)
    a = a[a <= cutoff]
    h, w = g.shape
    return float(np.sqrt(np.pi / 2) * a.mean() / 6.0) if a.size else 0.0


def straight_lines(img: np.ndarray, span: float, margin: float = 0.04) -> dict[str, Any]:
    """Long straight internal borders (edges or uniform gutters) running across the image.

    A horizontal line at row y: at least `span` of the columns have a strong colour step between rows
    y and y+1, or row y is a uniform band (gutter) with textured content on both sides. Rows within
    `margin` of the frame are ignored (frames and banners at the edge are normal in ads).
    """
    rgb = img[..., :3].astype(np.int16) if img.ndim == 3 else np.repeat(img[..., None], 3, 2).astype(np.int16)

    def lines(a: np.ndarray) -> list[int]:
        n, m = a.shape[:2]
        step = np.abs(np.diff(a, axis=0)).max(axis=2)            # (n-1, m)
        frac = (step > 24).mean(axis=1)
        row_std = a.std(axis=1).max(axis=1)                       # (n,)
        textured = row_std > 12
        k = max(3, n // 20)
        uni = row_std < 3.0
        gutter = np.zeros(n, bool)
        if n > 2 * k:
            # textured content within k rows above and below
            tex = textured.astype(np.int32)
            cs = np.concatenate([[0], np.cumsum(tex)])
            idx = np.arange(n)
            above = cs[idx] - cs[np.maximum(idx - k, 0)]
            below = cs[np.minimum(idx + 1 + k, n)] - cs[np.minimum(idx + 1, n)]
            gutter = uni & (above > 0) & (below > 0)
        cand = np.zeros(n, bool)
        cand[:-1] |= frac >= span
        cand |= gutter
        lo, hi = int(n * margin), int(n * (1 - margin))
        cand[:lo] = False
        cand[hi:] = False
        out, last = [], -10
        for y in np.flatnonzero(cand):
            if y - last > max(3, n // 100):
                out.append(int(y))
            last = y
        return out

    h_lines = lines(rgb)
    v_lines = lines(np.transpose(rgb, (1, 0, 2)))
    return {"h_lines": h_lines, "v_lines": v_lines}


def _quad_mask(shape: tuple[int, int], quads: list[np.ndarray]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for q in quads:
        cv2.fillPoly(m, [np.round(np.asarray(q, np.float32)).astype(np.int32).reshape(-1, 1, 2)], 1)
    return m.astype(bool)
