"""Ground truth for the classical segmentation fallback: the real product cut-outs of PosterMaker
(`images_ad/postermaker_product_*_rgba.png`) composited onto real backgrounds from fieldmedia with
promotional text drawn around them, poster-style. The cut-out's alpha is the true mask. Used by the
tests (IoU floor), the benchmark and docs/backends.md."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CUTOUT_GLOB = "images_ad/postermaker_product_*_rgba.png"
BACKGROUNDS = [  # real images (textures, scenes, an ad with its text erased) + a studio gradient
    "images_other/ste_poster_test_1_g_text_erased.png",
    "images_other/sam2_groceries.jpg",
    "images_other/realesrgan_ADE_val_00000114_lowres_beach.jpg",
    "images_other/realesrgan_00003_hazy_lowcontrast.png",
    "images_other/dynamicrafter_pour_honey_input.png",
    "gradient",
]
TEXTS = [("NEW ARRIVAL", "Only 99 today"), ("LIMITED", "Free shipping"), ("HOT SALE", "-30% this week"),
         ("BEST SELLER", "Shop now")]


def _gradient(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(120, 255, 3), rng.integers(20, 200, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    g = a[None, None] * (1 - t) + b[None, None] * t
    return np.clip(np.repeat(g, w, axis=1) + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def _background(fieldmedia: Path, bg_name: str, W: int, H: int, seed: int) -> Image.Image:
    if bg_name == "gradient":
        return Image.fromarray(_gradient(W, H, seed))
    src = Image.open(fieldmedia / bg_name).convert("RGB")
    s = max(W / src.width, H / src.height)
    src = src.resize((max(W, round(src.width * s)), max(H, round(src.height * s))), Image.BICUBIC)
    ox, oy = (src.width - W) // 2, (src.height - H) // 2
    return src.crop((ox, oy, ox + W, oy + H))


def _draw_texts(im: Image.Image, bg: Image.Image, k: int) -> list[tuple[int, int, int, int]]:
    """A headline and a tag line drawn poster-style; their boxes (2 px margin), as OCR would give them."""
    W, H = im.size
    draw = ImageDraw.Draw(im)
    head, tag = TEXTS[k % len(TEXTS)]
    boxes = []
    for txt, size, y in ((head, 34, int(H * 0.04)), (tag, 22, int(H * 0.92))):
        font = ImageFont.load_default(size=size)
        tb = draw.textbbox((0, 0), txt, font=font)
        x = (W - (tb[2] - tb[0])) // 2
        colour = (255, 255, 255) if np.asarray(bg.crop((0, y, W, y + size))).mean() < 140 else (20, 20, 20)
        draw.text((x, y), txt, font=font, fill=colour)
        bb = draw.textbbox((x, y), txt, font=font)
        boxes.append((bb[0] - 2, bb[1] - 2, bb[2] + 2, bb[3] + 2))
    return boxes


def composites(fieldmedia: Path, canvas: tuple[int, int] = (384, 512), product_frac: float = 0.55):
    """Yield dicts {name, image (uint8 RGB HxWx3), mask (bool), text_boxes [(x0,y0,x1,y1)], product}."""
    fieldmedia = Path(fieldmedia)
    W, H = canvas
    cutouts = sorted(fieldmedia.glob(CUTOUT_GLOB))
    for ci, cpath in enumerate(cutouts):
        cut = Image.open(cpath).convert("RGBA")
        bbox = cut.getchannel("A").point(lambda v: 255 if v > 127 else 0).getbbox()
        cut = cut.crop(bbox)
        for bi, bg_name in enumerate(BACKGROUNDS):
            bg = _background(fieldmedia, bg_name, W, H, ci * 10 + bi)
            s = product_frac * min(W / cut.width, (H * 0.6) / cut.height) * (1.0 + 0.15 * ((ci + bi) % 3 - 1))
            pc = cut.resize((max(1, round(cut.width * s)), max(1, round(cut.height * s))), Image.LANCZOS)
            px = (W - pc.width) // 2 + int(((bi * 37 + ci * 13) % 41 - 20) / 100 * W)
            py = int(H * 0.22) + (H * 0.62 - pc.height) // 2
            px, py = int(np.clip(px, 0, W - pc.width)), int(np.clip(py, int(H * 0.18), H - pc.height))
            im = bg.copy()
            im.paste(pc, (px, py), pc)
            mask = np.zeros((H, W), bool)
            mask[py:py + pc.height, px:px + pc.width] = np.asarray(pc.getchannel("A")) > 127
            boxes = _draw_texts(im, bg, ci + bi)
            for x0, y0, x1, y1 in boxes:  # text over the product is not product
                mask[max(0, y0 + 2):y1 - 2, max(0, x0 + 2):x1 - 2] = False
            name = cpath.stem.replace("postermaker_product_", "").replace("_rgba", "")
            yield {"name": f"{name}@{Path(bg_name).stem}", "image": np.asarray(im.convert("RGB")), "mask": mask,
                   "text_boxes": boxes, "product": name.replace("_", " ")}


def evaluate(segmenter, fieldmedia: Path, *, use_text_boxes: bool = True) -> dict:
    from .segment import iou, product_mask
    rows = []
    for c in composites(fieldmedia):
        m = product_mask(segmenter, c["image"], ocr_boxes=c["text_boxes"] if use_text_boxes else None)
        rows.append({"name": c["name"], "iou": iou(m, c["mask"])})
    ious = np.array([r["iou"] for r in rows])
    return {"n": len(rows), "mean_iou": float(ious.mean()), "median_iou": float(np.median(ious)),
            "min_iou": float(ious.min()), "rows": rows}


def evaluate_demo_masks(segmenter, demo_dir: Path, limit: int | None = None) -> dict:
    """IoU against the demo generator's masks/ (second ground truth)."""
    from .segment import iou
    rows = []
    for mp in sorted((Path(demo_dir) / "masks").glob("*.png"))[:limit]:
        cands = [p for p in (Path(demo_dir) / "images").glob(mp.stem + ".*")]
        if not cands:
            continue
        img = np.asarray(Image.open(cands[0]).convert("RGB"))
        gt = np.asarray(Image.open(mp).convert("L")) > 127
        if not gt.any():
            continue
        rows.append({"name": mp.stem, "iou": iou(segmenter.segment_image(img), gt)})
    ious = np.array([r["iou"] for r in rows]) if rows else np.zeros(1)
    return {"n": len(rows), "mean_iou": float(ious.mean()), "median_iou": float(np.median(ious)),
            "min_iou": float(ious.min()), "rows": rows}


PHOTO_BACKGROUNDS = BACKGROUNDS[:2] + BACKGROUNDS[4:5]


def photo_composites(fieldmedia: Path, canvas: tuple[int, int] = (384, 512)):
    """Product *photos* pasted onto posters: each cut-out on a light studio backdrop with a soft shadow,
    that rectangle pasted onto a real background, text drawn as in `composites`. The product, not the
    photo's rectangle, is the truth (the cut-out's alpha)."""
    from PIL import ImageFilter
    fieldmedia = Path(fieldmedia)
    W, H = canvas
    for ci, cpath in enumerate(sorted(fieldmedia.glob(CUTOUT_GLOB))):
        cut = Image.open(cpath).convert("RGBA")
        cut = cut.crop(cut.getchannel("A").point(lambda v: 255 if v > 127 else 0).getbbox())
        s = 0.42 * min(W / cut.width, (H * 0.5) / cut.height)
        pc = cut.resize((max(1, round(cut.width * s)), max(1, round(cut.height * s))), Image.LANCZOS)
        pw, ph = round(pc.width * 1.45), round(pc.height * 1.35)
        photo = Image.fromarray(_gradient(pw, ph, 100 + ci)).point(lambda v: 150 + v * 105 // 255)
        shadow = Image.new("L", (pw, ph), 0)
        ox, oy = (pw - pc.width) // 2, (ph - pc.height) // 2
        shadow.paste(pc.getchannel("A").point(lambda v: 90 if v > 127 else 0), (ox + 6, oy + 8))
        photo.paste((60, 60, 60), (0, 0), shadow.filter(ImageFilter.GaussianBlur(6)))
        photo.paste(pc, (ox, oy), pc)
        for bi, bg_name in enumerate(PHOTO_BACKGROUNDS):
            bg = _background(fieldmedia, bg_name, W, H, ci * 10 + bi)
            im = bg.copy()
            px = int(np.clip((W - pw) // 2 + ((bi * 29 + ci * 17) % 31 - 15) / 100 * W, 0, W - pw))
            py = int(np.clip(H * 0.2 + (H * 0.62 - ph) // 2, 0, H - ph))
            im.paste(photo, (px, py))
            mask = np.zeros((H, W), bool)
            mask[py + oy:py + oy + pc.height, px + ox:px + ox + pc.width] = np.asarray(pc.getchannel("A")) > 127
            boxes = _draw_texts(im, bg, ci + bi)
            for x0, y0, x1, y1 in boxes:
                mask[max(0, y0 + 2):y1 - 2, max(0, x0 + 2):x1 - 2] = False
            name = cpath.stem.replace("postermaker_product_", "").replace("_rgba", "")
            yield {"name": f"{name}-photo@{Path(bg_name).stem}", "image": np.asarray(im.convert("RGB")),
                   "mask": mask, "text_boxes": boxes, "product": name.replace("_", " ")}
