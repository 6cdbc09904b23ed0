"""Finding the product without a detector, from a SAM-family segmenter's own candidates.

Candidates: a G x G grid of single-click prompts over the image (8 %..92 % of each side), plus a box prompt
from the classical saliency estimate (`segment.estimate_box`). Each is decoded at a small working size
(the decoder upsamples to any `orig_im_size`, so scoring costs little) and scored:

    score = iou_pred * stability^2 * size(a) * centre(c) * (1 - border)^2 * (1 - text)

a: mask area fraction; size() ramps up to 1 at SIZE_LO and down to 0 from SIZE_HI to SIZE_MAX (a backdrop,
a table top or the sky is large); c: centroid distance to the image centre / half-diagonal, centre() =
exp(-(c / CENTRE_SIGMA)^2); border: the fraction of the image's border pixels the mask covers (a backdrop
touches the sides, a product rarely); text: the fraction of the mask on OCR text boxes (pills and banners
carrying promotional text); stability: SAM's stability score (the mask at logit +1 over the mask at -1).
Candidates with iou_pred < MIN_IOU_PRED are dropped.
A click takes the best of SAM's three ambiguous masks, often one part of an object; the REFINE best distinct
clicks are decoded again from their box with the single-mask token (a whole object) and join the candidates.
A click often finds one part of a product (a jar's lid, a cushion's case), so the best candidate is grown
by adjacent candidates while the union stays compact (solidity >= MERGE_SOLIDITY), small (<= MERGE_AREA),
off the border, and each added part scores >= MERGE_REL of the best. A product of separate parts (a lamp's shade,
stem and base) is not compact, so the segmenter judges those unions itself (`join_parts`): the box around the
mask and an adjacent candidate, decoded with the single-mask token, replaces the mask when SAM is confident,
holds the mask and the candidate's new part in one connected piece, and scores >= UNION_TIE of the mask.
The union's box and the union itself (as the decoder's low-res mask input) are the final prompt, decoded at
full size.
The constants and the measurements that chose them are in docs/backends.md ("Finding the product").
The decodes of one stage (the grid and the saliency box; the refined boxes) go to the segmenter together
(`decode_many`): one batched call per point count on the torch engine, one call each on ONNX Runtime.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

VERSION = "4"  # 2: clicks refined by their box (single-mask token), stability in the score; 3: the text boxes
               # are no longer cut from the mask here: segment.product_mask cuts those beside the product;
               # 4: separate parts joined by the segmenter's own mask of their union (join_parts)
GRID = 6                 # clicks per side
GRID_SPAN = (0.08, 0.92)  # of the width and height
WORK = 256               # longest side candidates are scored at
SIZE_LO, SIZE_HI, SIZE_MAX = 0.03, 0.20, 0.50
CENTRE_SIGMA = 0.75
MIN_IOU_PRED = 0.5
STAB_POW = 2             # stability^2: a pasted photo's rectangle or a product joined to its neighbour is unstable
MERGE_SOLIDITY, MERGE_AREA, MERGE_REL, MERGE_ROUNDS = 0.88, 0.30, 0.3, 4
FRAME_FILL = 0.95        # a candidate filling this much of its box, with a candidate inside: a pasted photo
FRAME_INNER = 0.2
REFINE = 8              # clicks re-decoded from their box
UNION_MIN_IOU = 0.8      # SAM's predicted IoU for the mask of a union's box
UNION_KEEP, UNION_PART = 0.9, 0.5  # of the mask, and of the candidate's new pixels, that mask must hold
UNION_TIE = 0.95         # its score against the mask's: a part's neighbour (a shadow, a bag, a backdrop) scores less
UNION_ASKS = 6           # union boxes decoded per round


def _features(m: np.ndarray, text: np.ndarray | None) -> dict[str, float]:
    h, w = m.shape
    a = float(m.mean())
    if a == 0:
        return {"area": 0.0, "centre": 1.0, "border": 0.0, "text": 0.0}
    ys, xs = np.nonzero(m)
    cx, cy = xs.mean() / w - 0.5, ys.mean() / h - 0.5
    c = float(np.hypot(cx, cy) / np.hypot(0.5, 0.5))
    edge = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
    t = float((m & text).sum() / m.sum()) if text is not None else 0.0
    return {"area": a, "centre": c, "border": float(edge.mean()), "text": t}


def _size_term(a: float) -> float:
    if a <= 0:
        return 0.0
    up = min(1.0, a / SIZE_LO)
    down = 1.0 if a <= SIZE_HI else max(0.0, (SIZE_MAX - a) / (SIZE_MAX - SIZE_HI))
    return up * down


def stability(logits: np.ndarray, offset: float = 1.0) -> float:
    """SAM's stability score: IoU of the mask thresholded at +offset and -offset logits."""
    hi, lo = (logits > offset).sum(), (logits > -offset).sum()
    return float(hi / lo) if lo else 0.0


def score(f: dict[str, float], iou_pred: float) -> float:
    if iou_pred < MIN_IOU_PRED:
        return 0.0
    return (iou_pred * f.get("stability", 1.0) ** STAB_POW * _size_term(f["area"])
            * float(np.exp(-(f["centre"] / CENTRE_SIGMA) ** 2))
            * (1 - f["border"]) ** 2 * (1 - f["text"]))


def solidity(m: np.ndarray) -> float:
    import cv2
    u8 = m.astype(np.uint8)
    cnts, _ = cv2.findContours(u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cnts:
        return 0.0
    return float(u8.sum() / max(cv2.contourArea(cv2.convexHull(np.concatenate(cnts))), 1.0))


def _fill(m: np.ndarray) -> float:
    from .segment import mask_bbox
    bb = mask_bbox(m)
    return float(m.sum() / max(1, (bb[2] - bb[0]) * (bb[3] - bb[1]))) if bb else 0.0


def _inside(inner: np.ndarray, outer: np.ndarray, margin: int = 2) -> bool:
    """inner lies within outer's box, off its edges, and mostly on outer."""
    from .segment import mask_bbox
    bi, bo = mask_bbox(inner), mask_bbox(outer)
    if not bi or not bo:
        return False
    off_edges = (bi[0] >= bo[0] + margin and bi[1] >= bo[1] + margin and bi[2] <= bo[2] - margin
                 and bi[3] <= bo[3] - margin)
    return off_edges and (inner & outer).sum() >= 0.9 * inner.sum()


def unframe(best: dict, cands: list[dict]) -> dict:
    """A product photo pasted on a poster is a rectangle SAM finds whole (or its backdrop, with the product as
    a hole): when the best candidate, holes filled, fills its box, the product is the best candidate inside
    it covering at least FRAME_INNER of it."""
    from .segment import _fill_holes
    for _ in range(3):
        outer = _fill_holes(best["mask"])
        if _fill(outer) < FRAME_FILL:
            break
        inner = [c for c in cands if c is not best and c["score"] > 0
                 and c["mask"].sum() >= FRAME_INNER * outer.sum() and _inside(c["mask"], outer)]
        if not inner:
            break
        best = max(inner, key=lambda c: c["score"])
    return best


def _near(u: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.dilate(u.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def _with_neighbour(u: np.ndarray, near: np.ndarray, c: dict, best: dict) -> np.ndarray | None:
    """u joined with candidate c when c may be a part of the same product: it scores >= MERGE_REL of the best,
    adds pixels, touches u (`near`), does not surround it, and the union stays small and off the border."""
    from .segment import _fill_holes
    if c["score"] < MERGE_REL * best["score"] or not (c["mask"] & ~u).any() or not (c["mask"] & near).any():
        return None
    nu = u | c["mask"]
    if _inside(u, _fill_holes(nu), margin=3):
        return None  # c surrounds the product (a pasted photo's backdrop): parts lie beside each other
    f = _features(nu, None)
    return nu if f["area"] <= MERGE_AREA and f["border"] == 0 else None


def grow(best: dict, cands: list[dict]) -> np.ndarray:
    """The best candidate's mask joined by the adjacent candidates that make it a more complete object."""
    u = best["mask"].copy()
    for _ in range(MERGE_ROUNDS):
        near = _near(u)
        added = False
        for c in sorted(cands, key=lambda c: -c["score"]):
            nu = _with_neighbour(u, near, c, best)
            if nu is not None and solidity(nu) >= MERGE_SOLIDITY:
                u, added = nu, True
        if not added:
            break
    return u


def _one_piece(m: np.ndarray, share: float = 0.9) -> bool:
    import cv2
    n, _, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    return n <= 2 or stats[1:, cv2.CC_STAT_AREA].max() >= share * m.sum()


def join_parts(seg, emb, scale: float, k: float, best: dict, u: np.ndarray, cands: list[dict],
               text: np.ndarray | None, frame: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The grown mask u joined with adjacent candidates where the segmenter, prompted with the box of both,
    answers with one confident object holding both. `grow`'s solidity test keeps a lamp's shade, stem and base
    apart (their union is not convex); SAM knows them for one lamp. Each round decodes the union boxes of the
    UNION_ASKS best adjacent candidates together and keeps the most confident mask that passes; a mask that
    takes in text (a headline above a jar: two pieces), a pasted photo's rectangle, anything outside the photo
    `unframe` found the product in, or a neighbour that lowers the score is refused. Returns (mask, joins)."""
    from .segment import _fill_holes, mask_bbox
    feats = _features(u, text)
    feats["stability"] = best["stability"]
    floor = UNION_TIE * score(feats, best["iou_pred"])
    joins = 0
    for _ in range(MERGE_ROUNDS):
        near = _near(u)
        asks, parts = [], []
        for c in sorted(cands, key=lambda c: -c["score"]):
            if len(asks) >= UNION_ASKS:
                break
            nu = _with_neighbour(u, near, c, best)
            if nu is None:
                continue
            x0, y0, x1, y1 = mask_bbox(nu)
            asks.append({"box": np.array([x0 / k, y0 / k, x1 / k, y1 / k], np.float32)})
            parts.append(c)
        if not asks:
            break
        took = None
        for c, (logits, ip, _) in zip(parts, seg.decode_many(emb, scale, u.shape, asks)):
            m = logits > 0
            new = c["mask"] & ~u
            if (ip < UNION_MIN_IOU or not m.any() or (m & u).sum() < UNION_KEEP * u.sum()
                    or (m & new).sum() < UNION_PART * new.sum()):
                continue
            f = _features(m, text)
            f["stability"] = stability(logits)
            if score(f, ip) < floor or not _one_piece(m):
                continue
            if frame is not None and (m & ~frame).sum() > 0.05 * m.sum():
                continue
            if _fill(_fill_holes(m)) >= FRAME_FILL > _fill(_fill_holes(u)):
                continue  # became a box-filling rectangle: a pasted photo
            if f["area"] > MERGE_AREA or f["border"] > 0:
                continue
            if took is None or ip > took[1]:
                took = (m, ip)
        if took is None:
            break
        u, joins = took[0], joins + 1
    return u, joins


def _text_mask(shape: tuple[int, int], boxes: Sequence[tuple], k: float) -> np.ndarray | None:
    if not boxes:
        return None
    h, w = shape
    t = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        t[int(max(0, y0 * k)):int(min(h, y1 * k + 1)), int(max(0, x0 * k)):int(min(w, x1 * k + 1))] = True
    return t


def candidates(seg, rgb: np.ndarray, emb: np.ndarray, scale: float, text_boxes: Sequence[tuple]) -> list[dict]:
    """Every candidate: {'prompt', 'mask' (working size), 'iou_pred', features, 'score'}."""
    from .classical_seg import estimate_box
    h, w = rgb.shape[:2]
    k = min(1.0, WORK / max(h, w))
    hw = (max(1, round(h * k)), max(1, round(w * k)))
    text = _text_mask(hw, text_boxes, k)
    asks: list[tuple[tuple, dict]] = []     # (candidate prompt, decoder prompt)
    lo, hi = GRID_SPAN
    for gy in np.linspace(lo, hi, GRID):
        for gx in np.linspace(lo, hi, GRID):
            p = (gx * w, gy * h)
            if text is not None and text[min(hw[0] - 1, int(p[1] * k)), min(hw[1] - 1, int(p[0] * k))]:
                continue  # a click on text finds the text
            asks.append((("point", p), {"points": [p], "labels": [1]}))
    try:
        sb = estimate_box(rgb, text_boxes)
        asks.append((("saliency-box", tuple(float(v) for v in sb)), {"box": sb}))
    except Exception:  # the saliency estimate is a helper; the grid alone still works
        pass
    out = _cands(seg, emb, scale, hw, text, asks)
    return out + refined(seg, emb, scale, hw, k, out, text)


def _cands(seg, emb, scale, hw, text, asks: list[tuple[tuple, dict]]) -> list[dict]:
    """The candidates of (prompt, decoder prompt) pairs, decoded together."""
    out = []
    for (prompt, _), (logits, ip, _) in zip(asks, seg.decode_many(emb, scale, hw, [a for _, a in asks])):
        c = {"prompt": prompt, "mask": logits > 0, "iou_pred": ip, "stability": stability(logits)}
        c.update(_features(c["mask"], text))
        c["score"] = score(c, ip)
        out.append(c)
    return out


def refined(seg, emb, scale, hw, k, cands, text) -> list[dict]:
    """A click picks the best of SAM's three ambiguous masks, often one part of a product; its box, decoded
    with the single-mask token, usually gives the whole object. Done for the REFINE best distinct clicks."""
    from .segment import iou, mask_bbox
    asks: list[tuple[tuple, dict]] = []
    seen: list[np.ndarray] = []
    for c in sorted(cands, key=lambda c: -c["score"]):
        if len(asks) >= REFINE or c["score"] <= 0:
            break
        if any(iou(c["mask"], m) > 0.9 for m in seen):
            continue
        seen.append(c["mask"])
        x0, y0, x1, y1 = mask_bbox(c["mask"])
        box = np.array([x0 / k, y0 / k, x1 / k, y1 / k], np.float32)
        asks.append((("refined-box", tuple(float(v) for v in box)), {"box": box}))
    return _cands(seg, emb, scale, hw, text, asks) if asks else []



def find_product(seg, rgb: np.ndarray, emb: np.ndarray, scale: float, text_boxes: Sequence[tuple]) -> dict | None:
    """The best candidate, re-prompted with its box at full size: {'mask', 'box', 'iou_pred', 'candidate'}."""
    from .segment import _fill_holes, mask_bbox
    h, w = rgb.shape[:2]
    cands = candidates(seg, rgb, emb, scale, text_boxes)
    if not cands or max(c["score"] for c in cands) <= 0:
        return None
    top = max(cands, key=lambda c: c["score"])
    best = unframe(top, cands)
    positive = [c for c in cands if c["score"] > 0]
    union = grow(best, positive)
    k = union.shape[1] / w
    frame = _fill_holes(top["mask"]) if best is not top else None
    union, joins = join_parts(seg, emb, scale, k, best, union, positive,
                              _text_mask(union.shape, text_boxes, k), frame)
    x0, y0, x1, y1 = mask_bbox(union)
    box = np.clip(np.array([x0 / k, y0 / k, x1 / k, y1 / k], np.float32), 0, [w, h, w, h])
    logits, ip, _ = seg.decode(emb, scale, (h, w), box=box, mask_input=mask_logits(union, scale, (h, w)))
    m = logits > 0
    return {"mask": m, "box": tuple(float(v) for v in box), "iou_pred": ip,
            "candidate": {kk: best.get(kk) for kk in ("prompt", "iou_pred", "stability", "area", "centre", "border",
                                                     "text", "score")}
            | {"merged_area": float(union.mean()), "joined_parts": joins}}


def mask_logits(mask: np.ndarray, scale: float, hw: tuple[int, int], level: float = 8.0) -> np.ndarray:
    """A binary mask as the decoder's low-res mask input: [1,1,256,256] logits (+/-level) over the padded
    1024-square frame at 1/4."""
    import cv2
    h, w = hw
    k = scale / 4.0
    hh, ww = max(1, min(256, int(round(h * k)))), max(1, min(256, int(round(w * k))))
    lr = np.full((256, 256), -level, np.float32)
    m = cv2.resize(mask.astype(np.uint8), (ww, hh), interpolation=cv2.INTER_NEAREST) > 0
    lr[:hh, :ww][m] = level
    return lr[None, None]
