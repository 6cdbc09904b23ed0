"""Derived pictures the review app shows, cached under the workspace by content hash.

- thumbnails and display-size copies (thumbs/),
- image overlays: the product mask as an outline on a transparent PNG (the product's own pixels are never
  tinted: designers judge colour changes through it) and the OCR boxes as JSON (overlays/),
  computed on demand by one background worker so a labelling request never waits for a model,
- video overlays: an H.264 MP4 with the product mask, OCR boxes coloured by text segment and a frame
  counter drawn in, one file per combination of layers, and single frames as JPEG (overlays/). The
  per-frame data they draw comes from curation.video_overlay_data; the drawing is media.overlay_draw's.

Frames are decoded by media.decode, the decoder the metrics use: overlay frame i is metric frame i.
Nothing here imports torch; the backends are imported inside the worker functions.
"""
from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from media.decode import read_frames
from media.encode import write_mp4
from media.mask_draw import mask_outline_rgba
from media.overlay_draw import FALLBACK_SEGMENTERS, draw_frame

THUMB_SIZE = 224
DISPLAY_MAX = 1600                 # longest side served to the browser; larger originals get a JPEG copy
ANALYSIS_MAX = 1024                # longest side that OCR and segmentation see in the app
RENDER_MAX = 720                   # longest side of the overlay videos and frames
OVERLAY_VERSION = "3"              # 2: mask as an outline (no tint), CJK font, segmenter recorded; 3: one
                                   # mask rule with the scores (segment.product_mask; videos from their source image)
VIDEO_LAYERS = {"mask", "mask_fallback", "ocr", "counter"}


def cache_dir(root: Path, sub: str, sha: str) -> Path:
    """The shard of `sub` (thumbs, overlays) that holds the files of content hash `sha`, created."""
    d = root / sub / sha[:2]
    d.mkdir(parents=True, exist_ok=True)
    return d


def _atomic_save(im: Image.Image, path: Path, **kw: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    im.save(tmp, format=kw.pop("format", None) or path.suffix.lstrip(".").upper().replace("JPG", "JPEG"), **kw)
    tmp.replace(path)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# -- thumbnails and display copies ------------------------------------------------------------
THUMB_VERSION = "2"                # 2: transparent images keep their alpha (a PNG); a JPEG made them black


def _shrunk(stem: Path, path: str, side: int, resample: Image.Resampling, quality: int) -> Path:
    """The image at `path` shrunk to at most `side` px (never enlarged), made once: `stem`.jpg, or `stem`.png
    when it has transparent pixels, so the page's checkerboard shows through them (a JPEG has no alpha: they
    came out black)."""
    jpg, png = stem.with_name(stem.name + ".jpg"), stem.with_name(stem.name + ".png")
    for out in (jpg, png):
        if out.exists():
            return out
    from media.files import load_image

    im = Image.fromarray(load_image(path, keep_alpha=True))
    im.thumbnail((side, side), resample)
    if im.mode == "RGBA" and im.getchannel("A").getextrema()[0] < 255:
        _atomic_save(im, png, format="PNG")
        return png
    _atomic_save(im.convert("RGB"), jpg, format="JPEG", quality=quality)
    return jpg


def thumbnail(ws_root: Path, sha: str, path: str, size: int = THUMB_SIZE) -> Path:
    """A thumbnail (cached under thumbs/ by image hash): a JPEG, a PNG when the image has transparent pixels."""
    stem = cache_dir(ws_root, "thumbs", sha) / f"{sha}_{size}_t{THUMB_VERSION}"
    return _shrunk(stem, path, size, Image.Resampling.BILINEAR, 85)


def display_path(ws_root: Path, sha: str, path: str, width: int | None, height: int | None,
                 nbytes: int | None = None) -> Path:
    """The file the browser shows: the original when it is small and browser-friendly, else a cached copy (a
    JPEG; a PNG when the image has transparent pixels)."""
    p = Path(path)
    small = (width or 0) <= DISPLAY_MAX and (height or 0) <= DISPLAY_MAX and (nbytes or 0) < 8_000_000
    if small and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"):
        return p
    stem = cache_dir(ws_root, "thumbs", sha) / f"{sha}_display_t{THUMB_VERSION}"
    return _shrunk(stem, path, DISPLAY_MAX, Image.Resampling.LANCZOS, 90)


# -- image overlays ---------------------------------------------------------------------------
def image_overlay_paths(ws_root: Path, sha: str) -> tuple[Path, Path]:
    d = ws_root / "overlays" / sha[:2]
    return d / f"{sha}_mask_v{OVERLAY_VERSION}.png", d / f"{sha}_ocr_v{OVERLAY_VERSION}.json"


def cached_image_overlays(ws_root: Path, sha: str) -> dict[str, Any] | None:
    """The cached overlay data of an image, or None when it has not been computed."""
    mask_p, ocr_p = image_overlay_paths(ws_root, sha)
    if not ocr_p.exists():
        return None
    try:
        data = json.loads(ocr_p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    data["mask_path"] = str(mask_p) if mask_p.exists() else None
    return data


def _downscale(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return img, 1.0
    im = Image.fromarray(img).resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    return np.asarray(im), s


def compute_image_overlays(ws_root: Path, sha: str, path: str, product: str | None = None) -> dict[str, Any]:
    """Run OCR and product segmentation on one image and cache the results (mask PNG + OCR JSON)."""
    from media.files import load_image

    mask_p, ocr_p = image_overlay_paths(ws_root, sha)
    mask_p.parent.mkdir(parents=True, exist_ok=True)
    full = load_image(path, keep_alpha=True)
    H, W = full.shape[:2]
    small, scale = _downscale(full, ANALYSIS_MAX)
    rgb = np.ascontiguousarray(small[..., :3])
    alpha = small[..., 3] if small.shape[2] == 4 else None
    data: dict[str, Any] = {"width": W, "height": H, "boxes": [], "ocr_backend": None, "seg_backend": None,
                            "errors": []}
    boxes = []  # the OCR boxes themselves: product_mask reads their text (single characters do not steer)
    try:
        from metrics.backends import get_ocr

        ocr = get_ocr()
        data["ocr_backend"] = getattr(ocr, "name", type(ocr).__name__)
        for b in ocr(rgb):
            q = np.asarray(b.quad, dtype=np.float32)
            boxes.append(b)
            data["boxes"].append({"quad": (q / scale).round(1).tolist(), "text": b.text, "conf": float(b.conf)})
    except Exception as exc:  # noqa: BLE001 - shown to the user as the overlay's reason
        data["errors"].append(f"OCR unavailable: {exc}")
    try:
        from metrics.backends import get_segmenter
        from metrics.backends.segment import product_mask

        seg = get_segmenter()
        data["seg_backend"] = getattr(seg, "name", type(seg).__name__)
        mask = product_mask(seg, rgb, alpha=alpha, product=product, ocr_boxes=boxes)
        if scale != 1.0:  # drawn at the original size so the outline stays thin on the displayed image
            big = Image.fromarray(mask.astype(np.uint8) * 255).resize((W, H), Image.Resampling.BILINEAR)
            mask = np.asarray(big) > 127
        layer = mask_outline_rgba(mask)
        _atomic_save(Image.fromarray(layer, "RGBA"), mask_p, format="PNG", compress_level=1)
        data["seg_fallback"] = data["seg_backend"] in FALLBACK_SEGMENTERS
        data["mask_fraction"] = float(mask.mean())
    except Exception as exc:  # noqa: BLE001
        data["errors"].append(f"segmentation unavailable: {exc}")
    atomic_write_text(ocr_p, json.dumps(data))
    data["mask_path"] = str(mask_p) if mask_p.exists() else None
    return data


class OverlayWorker:
    """One background thread computing overlays; requests for the same key share one future."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlays")
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, fn: Any, *args: Any) -> Future:
        with self._lock:
            fut = self._futures.get(key)
            if fut is None or (fut.done() and fut.exception() is not None):
                fut = self._pool.submit(fn, *args)
                self._futures[key] = fut
            return fut

    def pending(self, key: str) -> bool:
        with self._lock:
            fut = self._futures.get(key)
            return fut is not None and not fut.done()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# -- video overlays ---------------------------------------------------------------------------
def layers_key(layers: set[str]) -> str:
    """The layers in a cache file name: their initials, sorted."""
    return "".join(k[0] for k in sorted(layers)) or "none"


def render_video_overlay(ws_root: Path, sha: str, path: str, ov: dict[str, Any], layers: set[str],
                         data_key: str = "") -> Path:
    """An H.264 MP4 of the video with the chosen layers drawn in, cached by video hash, layers and data."""
    layers = set(layers) & VIDEO_LAYERS
    if not layers:
        return Path(path)
    dk = hashlib.sha256(data_key.encode()).hexdigest()[:8]
    out = cache_dir(ws_root, "overlays", sha) / f"{sha}_v{OVERLAY_VERSION}_{layers_key(layers)}_{dk}.mp4"
    if out.exists():
        return out
    v = read_frames(path, max_side=RENDER_MAX)
    drawn = [draw_frame(f, int(i), v.n_source_frames, ov, layers, v.scale) for f, i in zip(v.frames, v.indices)]
    tmp = out.with_name(out.stem + ".tmp.mp4")
    write_mp4(tmp, drawn, v.nominal_fps or v.fps, crf=23, threads=None)   # the rate the player seeks by
    tmp.replace(out)
    return out


def render_frame_png(ws_root: Path, sha: str, path: str, frame: int, ov: dict[str, Any], layers: set[str],
                     data_key: str = "") -> Path:
    """Source frame `frame` (numbered as the metrics number it) with the chosen layers and the frame counter
    drawn in, as a JPEG cached like the videos."""
    dk = hashlib.sha256(data_key.encode()).hexdigest()[:8]
    out = cache_dir(ws_root, "overlays", sha) / f"{sha}_f{int(frame)}_{layers_key(layers)}_{dk}.jpg"
    if out.exists():
        return out
    v = read_frames(path, indices=[int(frame)], max_side=RENDER_MAX)
    if not v.frames:
        raise ValueError(f"frame {frame} is past the end of the video")
    arr = draw_frame(v.frames[0], int(v.indices[0]), v.n_source_frames, ov, set(layers) | {"counter"}, v.scale)
    _atomic_save(Image.fromarray(arr), out, format="JPEG", quality=90)
    return out
