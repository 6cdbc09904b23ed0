"""The per-frame overlay data of a video: the product masks and OCR boxes the Videos tab draws.

Read from the metric traces (ProductScore, TSScore; MotionX's for the motion curve) or, when the video is
not scored yet, computed on sampled frames with the same backends by the overlay worker and cached as JSON
(masks as run-length codes) under overlays/. Frames are source frame indices as media.decode numbers them,
the numbering of the traces. Nothing here imports torch; the backends are imported inside the functions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from media.decode import read_frames
from metrics.geometry import box_iou, quad_box

from .overlays import OVERLAY_VERSION, atomic_write_text

ANALYSIS_SIDE = 512                # longest side of the frames OCR and segmentation see for the overlays


def computed_data_path(ws_root: Path, sha: str) -> Path:
    """Where the overlay data computed for review is cached."""
    return Path(ws_root) / "overlays" / sha[:2] / f"{sha}_vdata_v{OVERLAY_VERSION}.json"


def overlay_for_video(ws_root: Path, sha: str, size: tuple[int, int],
                      results: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """(overlay data, key) the Videos tab draws for a video of `size` (w, h): the metric traces' data, with
    the masks or OCR boxes computed for review where the traces have none. The key names that data, for
    the cache of the rendered overlays."""
    ov = video_overlay_data(results, size)
    key = json.dumps(sorted((r["metric"], r.get("id")) for r in results if r.get("trace")))
    if not ov["masks"] or not ov["ocr"]:
        p = computed_data_path(ws_root, sha)
        if p.exists():
            comp = data_to_overlay(json.loads(p.read_text(encoding="utf-8")), size)
            if not ov["masks"] and comp["masks"]:
                ov["masks"], ov["sources"]["mask"] = comp["masks"], comp["sources"].get("mask")
            if not ov["ocr"] and comp["ocr"]:
                ov["ocr"], ov["sources"]["ocr"] = comp["ocr"], comp["sources"].get("ocr")
            key += "|computed"
    return ov, key


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


def compute_video_overlay_data(ws_root: Path, sha: str, path: str, *, n: int = 16, product: str | None = None,
                               source_image: str | None = None) -> dict[str, Any]:
    """Masks and OCR boxes on n uniformly sampled frames with the app's backends (video not scored yet).
    With the video's source image the masks are found as ProductScore finds them (its product located in
    the source image, that box mapped onto the first frame, then tracked: `productscore.product_masks`);
    without one, from the first frame's own product mask. Cached as JSON (masks as RLE) under overlays/."""
    out_p = computed_data_path(ws_root, sha)
    if out_p.exists():
        return json.loads(out_p.read_text(encoding="utf-8"))
    v = read_frames(path, n=n, max_side=ANALYSIS_SIDE)
    frames, idx, scale = v.frames, v.indices.tolist(), v.scale
    data: dict[str, Any] = {"size": list(v.source_size), "frames": [], "errors": [], "fps": v.nominal_fps or v.fps}
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
        from metrics.backends.ocr import OCRBox
        from metrics.backends.segment import product_mask

        seg = get_segmenter()
        if source_image:
            from metrics import productscore
            from metrics.registry import Case
            masks = list(productscore.product_masks(frames, Case(image_path=source_image, product=product), seg))
            data["mask_rule"] = "ProductScore's: the source image's product, tracked"
        else:
            first = product_mask(seg, frames[0], product=product,
                                 ocr_boxes=[OCRBox(quad=np.asarray(b["quad"], np.float32) * scale, text=b["text"],
                                                   conf=b["conf"]) for b in boxes_per[0]])
            masks = list(seg.propagate(frames, first))
            data["mask_rule"] = "the first frame's product, tracked (no source image)"
        data["seg_backend"] = getattr(seg, "name", "segmenter")
    except Exception as exc:  # noqa: BLE001
        data["errors"].append(f"segmentation unavailable: {exc}")
    for k, i in enumerate(idx):
        entry: dict[str, Any] = {"frame": int(i), "boxes": boxes_per[k]}
        if masks[k] is not None:
            entry["mask"] = rle_encode(np.asarray(masks[k], bool))
        data["frames"].append(entry)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_p, json.dumps(data))
    return data


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A bool HxW mask -> the row-major run-length form rle_decode reads."""
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
            bb = quad_box(b["quad"])
            best, best_iou = None, 0.3
            for p in prev:
                v = box_iou(bb, quad_box(p["quad"]))
                if v >= best_iou:
                    best, best_iou = p, v
            if best is not None:
                b["segment"] = best["segment"]
            else:
                b["segment"] = next_id
                next_id += 1
        prev = boxes


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
        rule = f"; {data['mask_rule']}" if data.get("mask_rule") else ""
        out["sources"]["mask"] = f"computed for review ({data.get('seg_backend')}{rule})"
    if data.get("ocr_backend"):
        out["sources"]["ocr"] = f"computed for review ({data.get('ocr_backend')})"
    return out
