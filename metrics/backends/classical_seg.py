"""`classical-grabcut-v1`: the product segmenter without weights, the family's last fallback (segment.py).

The alpha channel when there is one; otherwise GrabCut seeded from a saliency map (colour distance to a
k-means model of the border colours, times a centre prior), with OCR text boxes forced to background, then
the largest connected parts with holes filled. Video propagation tracks the mask by template matching of the
product patch (multi-scale, on edges and colour) frame to frame, shifting/scaling the first mask; see
`ClassicalSegmenter.propagate`. `estimate_box` (the salient region's box) is also the SAM2 segmenter's and
autobox's box of last resort.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

from ._common import as_rgb_uint8
from .segment import _boxes_xyxy, _fill_holes, _shared_detector, cutout_mask, mask_bbox

WORK_SIDE = 384


def _keep_main_components(m: np.ndarray, frac: float = 0.15) -> np.ndarray:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 2:
        return m.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.nonzero(areas >= frac * areas.max())[0] + 1
    return np.isin(lab, keep)


def saliency_map(rgb: np.ndarray, exclude: Sequence[tuple] = ()) -> np.ndarray:
    """Saliency in [0, 1] at rgb's resolution: Lab distance to the nearest of k border colours, times
    a centre prior; text boxes zeroed."""
    h, w = rgb.shape[:2]
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    bw = max(2, int(round(0.04 * min(h, w))))
    border = np.concatenate([lab[:bw].reshape(-1, 3), lab[-bw:].reshape(-1, 3),
                             lab[:, :bw].reshape(-1, 3), lab[:, -bw:].reshape(-1, 3)])
    k = min(6, max(1, len(border) // 20))
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centers = cv2.kmeans(border, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    # ignore border clusters that hold very few pixels (a product touching the border)
    counts = np.bincount(labels.ravel(), minlength=k)
    centers = centers[counts >= 0.08 * len(border)] if (counts >= 0.08 * len(border)).any() else centers
    d = np.min(np.linalg.norm(lab[:, :, None, :] - centers[None, None], axis=-1), axis=-1)
    lo, hi = np.percentile(d, 2), np.percentile(d, 99)
    d = np.clip((d - lo) / max(hi - lo, 1e-6), 0, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    prior = np.exp(-(((xx - w / 2) / (0.45 * w)) ** 2 + ((yy - h / 2) / (0.45 * h)) ** 2) / 2)
    s = d * (0.35 + 0.65 * prior)
    for x0, y0, x1, y1 in exclude:
        s[int(max(0, y0)):int(min(h, y1 + 1)), int(max(0, x0)):int(min(w, x1 + 1))] = 0
    s = cv2.GaussianBlur(s, (0, 0), max(1.0, 0.01 * max(h, w)))
    return s / max(float(s.max()), 1e-6)


def estimate_box(rgb: np.ndarray, exclude_boxes: Any = None) -> tuple[int, int, int, int]:
    """Classical product box (x0, y0, x1, y1): the salient region's bounding box."""
    h, w = rgb.shape[:2]
    scale = WORK_SIDE / max(h, w) if max(h, w) > WORK_SIDE else 1.0
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
        if scale != 1.0 else rgb
    ex = [tuple(v * scale for v in b) for b in _boxes_xyxy(exclude_boxes)]
    sal = saliency_map(small, ex)
    m = _salient_region(sal, ex)
    bb = mask_bbox(m)
    if bb is None:
        return 0, 0, w, h
    return tuple(int(round(v / scale)) for v in bb)  # type: ignore[return-value]


def _salient_region(sal: np.ndarray, exclude: Sequence[tuple] = ()) -> np.ndarray:
    """Otsu-thresholded saliency, then the connected parts that look like the product: ranked by
    saliency mass times closeness to the centre; parts that mostly lie on (widened) text boxes -
    the pills and banners that carry promotional text - are dropped."""
    h, w = sal.shape
    u8 = (sal * 255).astype(np.uint8)
    t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    m = (u8 > max(t, 40)).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab, stats, cents = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m.astype(bool)
    textmask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in exclude:
        py, px = 0.6 * (y1 - y0), 0.15 * (x1 - x0) + 0.6 * (y1 - y0)
        textmask[int(max(0, y0 - py)):int(min(h, y1 + py + 1)), int(max(0, x0 - px)):int(min(w, x1 + px + 1))] = True
    mass = np.bincount(lab.ravel(), weights=sal.ravel(), minlength=n)
    scores = np.zeros(n)
    diag = np.hypot(w, h)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < 0.002 * h * w:
            continue
        if textmask.any() and textmask[y:y + bh, x:x + bw].mean() > 0.6:
            continue
        d = np.hypot(cents[i][0] - w / 2, cents[i][1] - h / 2) / diag
        elong = max(bw / max(bh, 1), bh / max(bw, 1))
        fill = area / float(bw * bh)
        shape = 0.3 if (elong > 3.5 and fill > 0.6) else 1.0  # solid thin bars: banners and pills
        scores[i] = mass[i] * np.exp(-(d / 0.25) ** 2) * shape
    if scores.max() <= 0:
        return np.zeros((h, w), bool)
    best = int(np.argmax(scores))
    bx, by, bw_, bh_ = stats[best][:4]
    gap = 0.08 * diag
    keep = [best]
    for i in np.nonzero(scores >= 0.2 * scores.max())[0]:
        if i == best:
            continue
        x, y, ww_, hh_ = stats[i][:4]
        dx = max(0, max(bx, x) - min(bx + bw_, x + ww_))
        dy = max(0, max(by, y) - min(by + bh_, y + hh_))
        if np.hypot(dx, dy) <= gap:
            keep.append(int(i))
    return np.isin(lab, keep)


class ClassicalSegmenter:
    name = "classical-grabcut-v1"
    version = "2"   # 2: tracking matches the patch by mean-subtracted correlation
    device = "cpu"

    def segment_image(self, image_rgb: np.ndarray, *, alpha: np.ndarray | None = None, box=None,
                      product: str | None = None, exclude_boxes=None) -> np.ndarray:
        rgb, cut = cutout_mask(image_rgb, alpha)
        if cut is not None:
            return cut
        h, w = rgb.shape[:2]
        if min(h, w) < 8:
            return np.ones((h, w), bool)
        if box is None and product:
            det = _shared_detector()
            if det is not None:
                box = det.detect(rgb, product)
        return self._grabcut(rgb, box, _boxes_xyxy(exclude_boxes))

    def _grabcut(self, rgb: np.ndarray, box, exclude: list[tuple]) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = WORK_SIDE / max(h, w) if max(h, w) > WORK_SIDE else 1.0
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if scale != 1.0 else rgb
        ex = [tuple(v * scale for v in b) for b in exclude]
        sal = saliency_map(small, ex)
        region = _salient_region(sal, ex)
        if box is not None:
            x0, y0, x1, y1 = (float(v) * scale for v in np.asarray(box, np.float32).reshape(4))
        else:
            bb = mask_bbox(region)
            x0, y0, x1, y1 = bb if bb else (0, 0, sw, sh)
        mx, my = 0.06 * (x1 - x0) + 2, 0.06 * (y1 - y0) + 2
        X0, Y0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
        X1, Y1 = int(min(sw, x1 + mx)), int(min(sh, y1 + my))
        gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
        inside = np.zeros((sh, sw), bool)
        inside[Y0:Y1, X0:X1] = True
        gc[inside] = cv2.GC_PR_BGD
        u8 = (sal * 255).astype(np.uint8)
        t, _ = cv2.threshold(u8[inside], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        gc[inside & (u8 > 0.6 * t)] = cv2.GC_PR_FGD
        core = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=2).astype(bool)
        gc[inside & core & (u8 > 1.3 * t)] = cv2.GC_FGD
        for bx0, by0, bx1, by1 in ex:
            gc[int(max(0, by0)):int(min(sh, by1 + 1)), int(max(0, bx0)):int(min(sw, bx1 + 1))] = cv2.GC_BGD
        if not ((gc == cv2.GC_PR_FGD) | (gc == cv2.GC_FGD)).any() or not ((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)).any():
            m = region
        else:
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(0)
            try:
                cv2.grabCut(small[:, :, ::-1].copy(), gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
                m = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
            except cv2.error:
                m = region
        m = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        m = _fill_holes(_keep_main_components(m, 0.15))
        if scale != 1.0:
            m = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
        return m.astype(bool)

    def propagate(self, frames: list[np.ndarray], first_mask: np.ndarray) -> list[np.ndarray]:
        """Classical tracking: the product patch (first mask's box) is searched in each next frame by
        masked, mean-subtracted normalised correlation at scales 0.95..1.05 of the last match, around the
        previous position; the first mask
        is shifted and scaled to the best match. Rigid motion only (no shape change)."""
        if not frames:
            return []
        first = np.asarray(first_mask, bool)
        out = [first.copy()]
        bb = mask_bbox(first)
        if bb is None:
            return [np.zeros(first.shape, bool) for _ in frames]
        x0, y0, x1, y1 = bb
        f0 = as_rgb_uint8(frames[0])
        tmpl = cv2.cvtColor(f0[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        mpatch = first[y0:y1, x0:x1].astype(np.uint8)
        cx, cy, sc = (x0 + x1) / 2, (y0 + y1) / 2, 1.0
        tw, th = x1 - x0, y1 - y0
        for fr in frames[1:]:
            g = cv2.cvtColor(as_rgb_uint8(fr), cv2.COLOR_RGB2GRAY)
            H, W = g.shape
            best = (-2.0, cx, cy, sc)
            for s in (sc * 0.95, sc, sc * 1.05):
                nw, nh = max(4, int(round(tw * s))), max(4, int(round(th * s)))
                if nw >= W or nh >= H:
                    continue
                t = cv2.resize(tmpl, (nw, nh))
                mk = cv2.resize(mpatch, (nw, nh), interpolation=cv2.INTER_NEAREST)
                # search window: 0.5 box around the previous centre
                rx, ry = int(0.5 * nw) + 8, int(0.5 * nh) + 8
                sx0, sy0 = int(max(0, cx - nw / 2 - rx)), int(max(0, cy - nh / 2 - ry))
                sx1, sy1 = int(min(W, cx + nw / 2 + rx)), int(min(H, cy + nh / 2 + ry))
                win = g[sy0:sy1, sx0:sx1]
                if win.shape[0] < nh or win.shape[1] < nw:
                    continue
                # mean-subtracted: plain normalised correlation of bright patches is near 1 almost anywhere on
                # a smooth backdrop, so a product half out of the frame or under a headline drifted sideways
                try:
                    r = cv2.matchTemplate(win, t, cv2.TM_CCOEFF_NORMED, mask=mk * 255)
                except cv2.error:
                    r = cv2.matchTemplate(win, t, cv2.TM_CCOEFF_NORMED)
                r = np.nan_to_num(r, nan=-1.0, posinf=-1.0, neginf=-1.0)
                _, mv, _, ml = cv2.minMaxLoc(r)
                if mv > best[0]:
                    best = (mv, sx0 + ml[0] + nw / 2, sy0 + ml[1] + nh / 2, s)
            _, cx, cy, sc = best
            nw, nh = max(1, int(round(tw * sc))), max(1, int(round(th * sc)))
            m = np.zeros((H, W), np.uint8)
            px0, py0 = int(round(cx - nw / 2)), int(round(cy - nh / 2))
            patch = cv2.resize(mpatch, (nw, nh), interpolation=cv2.INTER_NEAREST)
            ax0, ay0, ax1, ay1 = max(0, px0), max(0, py0), min(W, px0 + nw), min(H, py0 + nh)
            if ax1 > ax0 and ay1 > ay0:
                m[ay0:ay1, ax0:ax1] = patch[ay0 - py0:ay1 - py0, ax0 - px0:ax1 - px0]
            out.append(m.astype(bool))
        return out
