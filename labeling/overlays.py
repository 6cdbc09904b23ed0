"""Derived pictures the review app shows, cached under the workspace by content hash.

- thumbnails and display-size copies (thumbs/),
- image overlays: the product mask as an outline on a transparent PNG (the product's own pixels are never
  tinted: designers judge colour changes through it) and the OCR boxes as JSON (overlays/),
  computed on demand by one background worker so a labelling request never waits for a model,
- video overlays: an H.264 MP4 with the product mask, OCR boxes coloured by text segment and a frame
  counter drawn in, one file per combination of layers (overlays/),
- the per-frame overlay data of a video, read from the metric traces (ProductScore, TSScore) or, when the
  video is not scored yet, computed on sampled frames with the same backends.

Nothing here imports torch; the backends are imported inside the worker functions.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from media.mask_draw import MASK_HALO, MASK_LINE, draw_mask, mask_outline_rgba  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

THUMB_SIZE = 224
DISPLAY_MAX = 1600                 # longest side served to the browser; larger originals get a JPEG copy
ANALYSIS_MAX = 1024                # longest side that OCR and segmentation see in the app
SEGMENT_COLOURS = [(0, 200, 255), (255, 200, 0), (120, 255, 80), (255, 90, 90), (190, 120, 255), (255, 150, 40),
                   (0, 255, 180), (255, 255, 255)]
OVERLAY_VERSION = "2"              # 2: mask as an outline (no tint), CJK font, segmenter recorded
# Segmenters whose masks are shown by default; the classical fallback's are hidden until asked for.
FALLBACK_SEGMENTERS = ("classical-grabcut-v1",)
CJK_FONT_PATHS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
                  "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def _shard(root: Path, sub: str, sha: str) -> Path:
    d = root / sub / sha[:2]
    d.mkdir(parents=True, exist_ok=True)
    return d


def _atomic_save(im: Image.Image, path: Path, **kw: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    im.save(tmp, format=kw.pop("format", None) or path.suffix.lstrip(".").upper().replace("JPG", "JPEG"), **kw)
    tmp.replace(path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# -- thumbnails and display copies ------------------------------------------------------------
def thumbnail(ws_root: Path, sha: str, path: str, size: int = THUMB_SIZE) -> Path:
    """A JPEG thumbnail (cached under thumbs/ by image hash)."""
    out = _shard(ws_root, "thumbs", sha) / f"{sha}_{size}.jpg"
    if out.exists():
        return out
    from media.files import load_image

    im = Image.fromarray(load_image(path))
    im.thumbnail((size, size), Image.Resampling.BILINEAR)
    _atomic_save(im, out, format="JPEG", quality=85)
    return out


def display_path(ws_root: Path, sha: str, path: str, width: int | None, height: int | None,
                 nbytes: int | None = None) -> Path:
    """The file the browser shows: the original when it is small and browser-friendly, else a cached JPEG."""
    p = Path(path)
    small = (width or 0) <= DISPLAY_MAX and (height or 0) <= DISPLAY_MAX and (nbytes or 0) < 8_000_000
    if small and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"):
        return p
    out = _shard(ws_root, "thumbs", sha) / f"{sha}_display.jpg"
    if out.exists():
        return out
    from media.files import load_image

    im = Image.fromarray(load_image(path))
    im.thumbnail((DISPLAY_MAX, DISPLAY_MAX), Image.Resampling.LANCZOS)
    _atomic_save(im, out, format="JPEG", quality=90)
    return out


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
    quads = []
    try:
        from metrics.backends import get_ocr

        ocr = get_ocr()
        data["ocr_backend"] = getattr(ocr, "name", type(ocr).__name__)
        for b in ocr(rgb):
            q = np.asarray(b.quad, dtype=np.float32)
            quads.append(q)
            data["boxes"].append({"quad": (q / scale).round(1).tolist(), "text": b.text, "conf": float(b.conf)})
    except Exception as exc:  # noqa: BLE001 - shown to the user as the overlay's reason
        data["errors"].append(f"OCR unavailable: {exc}")
    try:
        from metrics.backends import get_segmenter

        seg = get_segmenter()
        data["seg_backend"] = getattr(seg, "name", type(seg).__name__)
        mask = np.asarray(seg.segment_image(rgb, alpha=alpha, product=product, exclude_boxes=quads or None), bool)
        if scale != 1.0:  # drawn at the original size so the outline stays thin on the displayed image
            big = Image.fromarray(mask.astype(np.uint8) * 255).resize((W, H), Image.Resampling.BILINEAR)
            mask = np.asarray(big) > 127
        layer = mask_outline_rgba(mask)
        _atomic_save(Image.fromarray(layer, "RGBA"), mask_p, format="PNG", compress_level=1)
        data["seg_fallback"] = data["seg_backend"] in FALLBACK_SEGMENTERS
        data["mask_fraction"] = float(mask.mean())
    except Exception as exc:  # noqa: BLE001
        data["errors"].append(f"segmentation unavailable: {exc}")
    _atomic_write_text(ocr_p, json.dumps(data))
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


# -- video overlay data -----------------------------------------------------------------------
def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Column- or row-major run-length mask {'size': [h, w], 'counts': [...], 'order': 'C'|'F'} -> bool HxW."""
    h, w = rle["size"]
    counts = rle["counts"]
    flat = np.zeros(h * w, bool)
    pos, val = 0, bool(rle.get("start", 0))
    for c in counts:
        c = int(c)
        if val:
            flat[pos:pos + c] = True
        pos += c
        val = not val
    order = rle.get("order", "C")
    return flat.reshape((h, w), order="F" if order == "F" else "C")


def _mask_from_entry(entry: dict[str, Any], size: tuple[int, int]) -> np.ndarray | None:
    """A per-frame mask from a trace entry: RLE, polygon(s) or box, scaled to size (w, h)."""
    W, H = size
    m = entry.get("mask") or entry.get("rle")
    if isinstance(m, dict) and "counts" in m:
        arr = rle_decode(m)
        if arr.shape != (H, W):
            arr = np.asarray(Image.fromarray(arr.astype(np.uint8) * 255).resize((W, H), Image.Resampling.NEAREST)) > 0
        return arr
    src = entry.get("src_size") or entry.get("size")
    sx = sy = 1.0
    if src and len(src) == 2:
        sx, sy = W / float(src[0]), H / float(src[1])
    polys = entry.get("polygons") or ([entry["polygon"]] if entry.get("polygon") else None)
    if polys:
        im = Image.new("L", (W, H), 0)
        d = ImageDraw.Draw(im)
        for poly in polys:
            pts = [(float(x) * sx, float(y) * sy) for x, y in poly]
            if len(pts) >= 3:
                d.polygon(pts, fill=255)
        return np.asarray(im) > 0
    box = entry.get("box") or entry.get("bbox")
    if box and len(box) == 4:
        im = Image.new("L", (W, H), 0)
        x0, y0, x1, y1 = (float(v) for v in box)
        ImageDraw.Draw(im).rectangle([x0 * sx, y0 * sy, x1 * sx, y1 * sy], fill=255)
        return np.asarray(im) > 0
    return None


def _frames_list(trace: Any) -> list[dict[str, Any]]:
    if not isinstance(trace, dict):
        return []
    for key in ("frames", "per_frame", "boxes_per_frame"):
        v = trace.get(key)
        if isinstance(v, list):
            return [f for f in v if isinstance(f, dict)]
    return []


def video_overlay_data(results: list[dict[str, Any]], size: tuple[int, int]) -> dict[str, Any]:
    """Per-frame overlay data from metric traces: {'masks': {frame: bool HxW}, 'ocr': {frame: [box]},
    'spurious': [...], 'motion': motionx trace or None}. Frames are source frame indices."""
    out: dict[str, Any] = {"masks": {}, "ocr": {}, "motion": None, "sources": {}}
    for r in results:
        tr = r.get("trace")
        if not tr:
            continue
        metric = r.get("metric")
        if metric == "productscore" and not out["masks"]:
            for k, f in enumerate(_frames_list(tr)):
                idx = int(f.get("frame", f.get("index", k)))
                m = _mask_from_entry(f, size)
                if m is not None:
                    out["masks"][idx] = m
            out["sources"]["mask"] = f"ProductScore trace ({r.get('backend')})"
        elif metric == "tsscore" and not out["ocr"]:
            for k, f in enumerate(_frames_list(tr)):
                idx = int(f.get("frame", f.get("index", k)))
                out["ocr"][idx] = [b for b in (f.get("boxes") or []) if isinstance(b, dict)]
            out["sources"]["ocr"] = f"TSScore trace ({r.get('backend')})"
            out["spurious"] = tr.get("spurious") or tr.get("spurious_text") or []
        elif metric == "motionx" and out["motion"] is None:
            out["motion"] = tr
    return out


def compute_video_overlay_data(ws_root: Path, sha: str, path: str, *, n: int = 16,
                               product: str | None = None) -> dict[str, Any]:
    """Masks and OCR boxes on n uniformly sampled frames with the app's backends (video not scored yet).
    Cached as JSON (masks as RLE) under overlays/."""
    out_p = _shard(ws_root, "overlays", sha) / f"{sha}_vdata_v{OVERLAY_VERSION}.json"
    if out_p.exists():
        return json.loads(out_p.read_text(encoding="utf-8"))
    frames, idx, (W, H), fps = read_frames(path, max_side=512, n=n)
    data: dict[str, Any] = {"size": [W, H], "frames": [], "errors": [], "fps": fps}
    scale = frames[0].shape[1] / W if frames else 1.0
    boxes_per: list[list[dict]] = [[] for _ in frames]
    try:
        from metrics.backends import get_ocr

        ocr = get_ocr()
        for k, res in enumerate(ocr.many(frames)):
            boxes_per[k] = [{"quad": (np.asarray(b.quad) / scale).round(1).tolist(), "text": b.text,
                             "conf": float(b.conf)} for b in res]
        data["ocr_backend"] = getattr(ocr, "name", "ocr")
    except Exception as exc:  # noqa: BLE001
        data["errors"].append(f"OCR unavailable: {exc}")
    _assign_segments(boxes_per)
    masks: list[np.ndarray | None] = [None] * len(frames)
    try:
        from metrics.backends import get_segmenter

        seg = get_segmenter()
        first = np.asarray(seg.segment_image(frames[0], product=product,
                                             exclude_boxes=[np.asarray(b["quad"]) * scale for b in boxes_per[0]]
                                             or None), bool)
        masks = list(seg.propagate(frames, first))
        data["seg_backend"] = getattr(seg, "name", "segmenter")
    except Exception as exc:  # noqa: BLE001
        data["errors"].append(f"segmentation unavailable: {exc}")
    for k, i in enumerate(idx):
        entry: dict[str, Any] = {"frame": int(i), "boxes": boxes_per[k]}
        if masks[k] is not None:
            entry["mask"] = rle_encode(np.asarray(masks[k], bool))
        data["frames"].append(entry)
    _atomic_write_text(out_p, json.dumps(data))
    return data


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    flat = mask.reshape(-1).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    start = int(flat[0]) if flat.size else 0
    return {"size": list(mask.shape), "counts": counts, "start": start, "order": "C"}


def _assign_segments(boxes_per: list[list[dict]]) -> None:
    """Link boxes across frames into segments by IoU of their bounding boxes (for colouring only)."""
    next_id = 0
    prev: list[dict] = []
    for boxes in boxes_per:
        for b in boxes:
            if "segment" in b:
                continue
            bb = _bbox(b["quad"])
            best, best_iou = None, 0.3
            for p in prev:
                v = _iou(bb, _bbox(p["quad"]))
                if v >= best_iou:
                    best, best_iou = p, v
            if best is not None:
                b["segment"] = best["segment"]
            else:
                b["segment"] = next_id
                next_id += 1
        prev = boxes


def _bbox(quad: Any) -> tuple[float, float, float, float]:
    q = np.asarray(quad, dtype=float).reshape(-1, 2)
    return float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def data_to_overlay(data: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """Computed overlay data (JSON form) -> the same structure as video_overlay_data."""
    out: dict[str, Any] = {"masks": {}, "ocr": {}, "motion": None, "sources": {}}
    for f in data.get("frames", []):
        i = int(f["frame"])
        if f.get("mask"):
            m = _mask_from_entry(f, size)
            if m is not None:
                out["masks"][i] = m
        out["ocr"][i] = f.get("boxes") or []
    if out["masks"]:
        out["sources"]["mask"] = f"computed for review ({data.get('seg_backend')})"
    if data.get("ocr_backend"):
        out["sources"]["ocr"] = f"computed for review ({data.get('ocr_backend')})"
    return out


# -- video decode / render --------------------------------------------------------------------
def read_frames(path: str, *, max_side: int | None = None, n: int | None = None,
                only: set[int] | None = None) -> tuple[list[np.ndarray], list[int], tuple[int, int], float]:
    """Decode a video with PyAV: all frames (or n uniformly sampled, or the indices in `only`).
    Returns (frames RGB, source indices, (width, height), fps)."""
    import av

    frames, idx = [], []
    with av.open(str(path), metadata_errors="ignore") as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        total = int(st.frames or 0)
        rate = st.average_rate or st.guessed_rate
        fps = float(rate) if rate else 16.0
        W, H = st.codec_context.width, st.codec_context.height
        all_frames = []
        for k, fr in enumerate(c.decode(st)):
            if only is not None and k not in only:
                if k > max(only):
                    break
                continue
            w, h = fr.width, fr.height
            if max_side and max(w, h) > max_side:
                s = max_side / max(w, h)
                fr = fr.reformat(width=max(2, int(w * s) // 2 * 2), height=max(2, int(h * s) // 2 * 2))
            all_frames.append((k, fr.to_ndarray(format="rgb24")))
        total = total or len(all_frames)
    if n is not None and only is None and len(all_frames) > n:
        pick = np.unique(np.linspace(0, len(all_frames) - 1, n).round().astype(int))
        all_frames = [all_frames[i] for i in pick]
    for k, arr in all_frames:
        idx.append(k)
        frames.append(arr)
    return frames, idx, (W, H), fps


def _nearest(d: dict[int, Any], i: int) -> Any:
    if not d:
        return None
    if i in d:
        return d[i]
    keys = sorted(d)
    j = int(np.searchsorted(keys, i))
    cands = [keys[c] for c in (j - 1, j) if 0 <= c < len(keys)]
    return d[min(cands, key=lambda k: abs(k - i))]


_FONT_CACHE: dict[int, ImageFont.ImageFont] = {}
_cjk_path: list[str | None] = []


def cjk_font_path() -> str | None:
    """A font file with Chinese glyphs: the known Debian paths (fonts-noto-cjk, fonts-wqy-*), else what
    fontconfig lists for Chinese; None (and one warning) when there is none."""
    if not _cjk_path:
        found = next((p for p in CJK_FONT_PATHS if Path(p).is_file()), None)
        if found is None:
            import subprocess
            try:
                r = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=10)
                files = sorted(line.split(":")[0].strip() for line in r.stdout.splitlines() if line.strip())
                found = next((f for f in files if Path(f).is_file()), None)
            except (OSError, subprocess.SubprocessError):
                found = None
        if found is None:
            log.warning("no font with Chinese glyphs found (looked at %s and `fc-list :lang=zh-cn`): OCR labels "
                        "in overlays fall back to Pillow's default font, which draws Chinese as empty boxes. "
                        "Install Debian's fonts-noto-cjk (`make fonts`).", ", ".join(CJK_FONT_PATHS))
        _cjk_path.append(found)
    return _cjk_path[0]


def _font(size: int) -> ImageFont.ImageFont:
    if size not in _FONT_CACHE:
        path = cjk_font_path()
        try:
            _FONT_CACHE[size] = ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)
        except OSError:
            _FONT_CACHE[size] = ImageFont.load_default(size=size)
    return _FONT_CACHE[size]


def mask_is_fallback(ov: dict[str, Any]) -> bool:
    """Whether the overlay's mask was made by the classical fallback (hidden unless asked for)."""
    src = str((ov.get("sources") or {}).get("mask") or "")
    return any(name in src for name in FALLBACK_SEGMENTERS)


def draw_frame(frame: np.ndarray, i: int, n_frames: int, ov: dict[str, Any], layers: set[str],
               scale: float = 1.0) -> np.ndarray:
    """Draw the chosen layers ('mask', 'ocr', 'counter') on one RGB frame; scale maps source px -> frame px.
    A mask made by the classical fallback is drawn only with the extra layer 'mask_fallback'."""
    h, w = frame.shape[:2]
    out = frame
    if "mask" in layers and (not mask_is_fallback(ov) or "mask_fallback" in layers):
        m = _nearest(ov.get("masks", {}), i)
        if m is not None:
            if m.shape != (h, w):
                big = Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.Resampling.BILINEAR)
                m = np.asarray(big) > 127
            out = draw_mask(out, m)
    im = Image.fromarray(out)
    d = ImageDraw.Draw(im)
    if "ocr" in layers:
        boxes = _nearest(ov.get("ocr", {}), i) or []
        for b in boxes:
            seg = b.get("segment", b.get("segment_id"))
            # text linked to no segment (matching no reference text: a watermark, an invented caption) is red
            col = (255, 60, 60) if seg is None or seg == -1 or b.get("spurious") else \
                SEGMENT_COLOURS[int(seg) % len(SEGMENT_COLOURS)]
            q = b.get("quad") or b.get("box")
            if q is None:
                continue
            q = np.asarray(q, float)
            if q.shape == (4,):
                x0, y0, x1, y1 = q
                q = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            pts = [(float(x) * scale, float(y) * scale) for x, y in q.reshape(-1, 2)]
            d.polygon(pts, outline=col, width=2)
            txt = str(b.get("text", ""))[:28]
            if txt:
                fs = max(10, h // 36)
                tx, ty = pts[0][0], max(0, pts[0][1] - fs - 3)
                d.rectangle([tx, ty, tx + d.textlength(txt, font=_font(fs)) + 4, ty + fs + 2], fill=(0, 0, 0))
                d.text((tx + 2, ty), txt, font=_font(fs), fill=col)
    if "counter" in layers:
        fs = max(12, h // 24)
        label = f"frame {i + 1}/{n_frames}"
        tw = d.textlength(label, font=_font(fs))
        d.rectangle([6, 6, 14 + tw, 10 + fs + 4], fill=(0, 0, 0))
        d.text((10, 8), label, font=_font(fs), fill=(255, 255, 255))
    return np.asarray(im)


def layers_key(layers: set[str]) -> str:
    return "".join(k[0] for k in sorted(layers)) or "none"


def render_video_overlay(ws_root: Path, sha: str, path: str, ov: dict[str, Any], layers: set[str],
                         data_key: str = "") -> Path:
    """An H.264 MP4 of the video with the chosen layers drawn in, cached by video hash, layers and data."""
    layers = set(layers) & {"mask", "mask_fallback", "ocr", "counter"}
    if not layers:
        return Path(path)
    dk = hashlib.sha256(data_key.encode()).hexdigest()[:8]
    out = _shard(ws_root, "overlays", sha) / f"{sha}_v{OVERLAY_VERSION}_{layers_key(layers)}_{dk}.mp4"
    if out.exists():
        return out
    frames, idx, (W, H), fps = read_frames(path, max_side=720)
    scale = frames[0].shape[1] / W if frames else 1.0
    n = len(frames)
    drawn = [draw_frame(f, i, n, ov, layers, scale) for f, i in zip(frames, idx)]
    tmp = out.with_name(out.stem + ".tmp.mp4")
    write_mp4(tmp, drawn, fps)
    tmp.replace(out)
    return out


def render_frame_png(ws_root: Path, sha: str, path: str, frame: int, ov: dict[str, Any], layers: set[str],
                     data_key: str = "") -> Path:
    dk = hashlib.sha256(data_key.encode()).hexdigest()[:8]
    out = _shard(ws_root, "overlays", sha) / f"{sha}_f{int(frame)}_{layers_key(layers)}_{dk}.jpg"
    if out.exists():
        return out
    frames, idx, (W, H), _ = read_frames(path, max_side=720, only={int(frame)})
    if not frames:
        raise ValueError(f"frame {frame} is past the end of the video")
    scale = frames[0].shape[1] / W
    with_counter = set(layers) | {"counter"}
    n_total = _frame_total(path)
    arr = draw_frame(frames[0], idx[0], n_total, ov, with_counter, scale)
    _atomic_save(Image.fromarray(arr), out, format="JPEG", quality=90)
    return out


def _frame_total(path: str) -> int:
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        return int(c.streams.video[0].frames or 0)


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """H.264 yuv420p MP4 that browsers play (even dimensions enforced)."""
    import av
    from fractions import Fraction

    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w2, h2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast", "movflags": "+faststart"}
        for arr in frames:
            fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr[:h2, :w2]), format="rgb24")
            for packet in stream.encode(fr):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


# -- the motion-energy curve ------------------------------------------------------------------
def motion_series(trace: dict[str, Any] | None) -> dict[str, Any] | None:
    """E_t, smoothed E~_t, tau and the active mask from a MotionX trace (tolerant of key spellings)."""
    if not isinstance(trace, dict):
        return None

    def pick(*names: str) -> Any:
        for n in names:
            if n in trace and trace[n] is not None:
                return trace[n]
        return None

    e = pick("E", "energy", "E_t", "e")
    es = pick("E_smooth_norm", "E_smooth", "E_tilde", "smoothed", "E_s", "e_smooth")
    if e is None and es is None:
        return None
    tau = pick("tau", "threshold")
    active = pick("active", "active_mask")
    times = pick("times", "t")
    e = [float(x) for x in (e or [])]
    es = [float(x) for x in (es or [])]
    if "E_smooth_norm" in trace and e and es and max(e) > 0:
        # E~ is normalized by the video's 95th percentile (and tau with it): draw E_t on the same scale
        k = max(es) / max(e) if max(es) > 0 else 1.0
        e = [x * k for x in e]
    return {"E": e, "E_smooth": es,
            "tau": float(tau) if tau is not None else None,
            "active": [bool(x) for x in (active or [])], "times": times,
            "R": pick("R", "activation_ratio"), "A": pick("A", "amplitude"), "S": pick("S", "smoothness")}


def motion_svg(series: dict[str, Any], n_frames: int, width: int = 720, height: int = 190) -> str:
    """The motion-energy curve as an SVG: E_t, E~_t, tau and shaded active runs. Each x unit is one frame
    pair (t -> t+1); clicking a point selects frame t."""
    e, es, act = series["E"], series["E_smooth"], series["active"]
    n = max(len(e), len(es), 1)
    pad_l, pad_r, pad_t, pad_b = 40, 10, 12, 26
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    vals = [v for v in (e + es + ([series["tau"]] if series["tau"] is not None else [])) if np.isfinite(v)]
    top = max(vals) if vals else 1.0
    top = top if top > 0 else 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (i / max(n - 1, 1)) * pw
        y = pad_t + ph - (v / top) * ph
        return x, y

    parts = [f'<svg class="motion-svg" viewBox="0 0 {width} {height}" data-n="{n}" data-frames="{n_frames}" '
             f'data-padl="{pad_l}" data-pw="{pw}" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    # active runs
    i = 0
    while i < len(act):
        if act[i]:
            j = i
            while j + 1 < len(act) and act[j + 1]:
                j += 1
            x0, _ = xy(i, 0)
            x1, _ = xy(j, 0)
            parts.append(f'<rect class="active-run" x="{x0:.1f}" y="{pad_t}" width="{max(x1 - x0, 2):.1f}" '
                         f'height="{ph}" fill="#34c38f" opacity="0.18"/>')
            i = j + 1
        else:
            i += 1
    if e:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in enumerate(e)))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#9aa5b1" stroke-width="1.2"/>')
    if es:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in enumerate(es)))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#3b5bdb" stroke-width="2"/>')
        for k, v in enumerate(es):
            x, y = xy(k, v)
            parts.append(f'<circle class="pt" data-frame="{k}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#3b5bdb">'
                         f'<title>frame {k + 1}: E~={v:.3g}</title></circle>')
    if series["tau"] is not None:
        _, ty = xy(0, series["tau"])
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e8590c" '
                     f'stroke-dasharray="5,4" stroke-width="1.5"/>'
                     f'<text x="{pad_l + pw - 4}" y="{ty - 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#e8590c">τ = {series["tau"]:.3g}</text>')
    parts.append(f'<text x="{pad_l}" y="{height - 6}" font-size="11" fill="#666">frame 1</text>'
                 f'<text x="{pad_l + pw}" y="{height - 6}" text-anchor="end" font-size="11" fill="#666">'
                 f'frame {n_frames}</text>'
                 f'<text x="4" y="{pad_t + 10}" font-size="11" fill="#666">{top:.2g}</text>'
                 f'<text x="4" y="{pad_t + ph}" font-size="11" fill="#666">0</text>')
    parts.append('<line class="cursor" x1="-10" x2="-10" y1="12" y2="{}" stroke="#c92a2a" stroke-width="2"/>'
                 .format(pad_t + ph))
    parts.append("</svg>")
    return "".join(parts)
