"""A demo workspace generated locally, deterministic by seed, that exercises every feature.

Images: synthetic product ads (a product shape on a styled background with promotional text), four
per domain, some deliberately bad (blurry, collage, text over the product). Videos: about 5 s each,
two generator models per case, covering the behaviours the metrics must tell apart.
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from media.encode import write_mp4

SIZE = 384          # demo media are small so the demo builds in a few seconds
FPS = 16
SECONDS = 5
N_FRAMES = FPS * SECONDS

PALETTES = [((250, 224, 200), (214, 120, 90)), ((200, 226, 250), (60, 90, 170)), ((232, 250, 210), (70, 140, 80)),
            ((250, 210, 232), (160, 60, 120)), ((240, 236, 220), (120, 100, 70)), ((220, 220, 240), (40, 40, 80))]
PRODUCT_COLOURS = [(230, 60, 50), (40, 120, 220), (250, 190, 40), (150, 70, 200), (30, 160, 120), (240, 130, 30)]


@dataclass(frozen=True)
class Product:
    name: str
    category: str       # 'Domain / Subcategory'
    shape: str
    headline: str
    tagline: str


PRODUCTS = [
    Product("Nova X phone", "Electronics & Mobility / Smartphones", "phone", "NEW NOVA X", "Pro camera. All day."),
    Product("Pulse headphones", "Electronics & Mobility / Audio & Headphones", "disc", "PURE SOUND", "-30% this week"),
    Product("Volt e-bike battery", "Electronics & Mobility / Cars & E-bikes", "box", "GO FURTHER", "120 km range"),
    Product("Aero watch", "Electronics & Mobility / Wearables", "disc", "SMART TIME", "Only 199"),
    Product("Trail ball", "Lifestyle & Leisure / Sports & Fitness", "ball", "PLAY HARD", "Match ready"),
    Product("Camp lantern", "Lifestyle & Leisure / Outdoor & Camping", "lamp", "NIGHT OUT", "Lights for 40 h"),
    Product("Block set", "Lifestyle & Leisure / Toys & Games", "box", "BUILD IT", "Ages 6+"),
    Product("Note pad", "Lifestyle & Leisure / Books & Stationery", "phone", "WRITE MORE", "2 for 1"),
    Product("Fizz cola can", "Food & Beverages / Soft Drinks & Juices", "can", "ICE COLD", "Zero sugar"),
    Product("Roast coffee", "Food & Beverages / Coffee & Tea", "jar", "DARK ROAST", "Fresh beans"),
    Product("Crunch chips", "Food & Beverages / Snacks", "box", "CRUNCH TIME", "Big bag -20%"),
    Product("Berry yogurt", "Food & Beverages / Dairy", "jar", "BERRY GOOD", "High protein"),
    Product("Glow cream", "Beauty & Health / Skincare", "jar", "GLOW UP", "24h hydration"),
    Product("Rouge lipstick", "Beauty & Health / Makeup", "can", "BOLD RED", "Long lasting"),
    Product("Bloom perfume", "Beauty & Health / Fragrance", "bottle", "BLOOM", "Eau de parfum"),
    Product("Silk shampoo", "Beauty & Health / Hair Care", "bottle", "SILKY", "New formula"),
    Product("City tote bag", "Fashion & Luxury / Bags & Handbags", "bag", "CITY STYLE", "Spring drop"),
    Product("Run sneaker", "Fashion & Luxury / Footwear", "shoe", "RUN FREE", "Light as air"),
    Product("Gold ring", "Fashion & Luxury / Jewelry", "ring", "SHINE", "Gift ready"),
    Product("Shade sunglasses", "Fashion & Luxury / Eyewear", "ring", "SUN READY", "UV400"),
    Product("Arc lamp", "Home & Appliances / Lighting", "lamp", "WARM LIGHT", "Save energy"),
    Product("Chef pan", "Home & Appliances / Cookware & Tableware", "disc", "COOK BETTER", "Non-stick"),
    Product("Breeze fan", "Home & Appliances / Kitchen Appliances", "box", "STAY COOL", "Whisper quiet"),
    Product("Cloud pillow", "Home & Appliances / Bedding & Textiles", "bag", "SLEEP DEEP", "Memory foam"),
]
# Deliberate faults for the image filters and the classifier to find.
BAD_IMAGES = {2: "blurry", 7: "collage", 10: "text_over_product", 15: "blurry", 19: "collage", 22: "text_over_product"}

# (product index, {model: behaviour}) — every behaviour the video metrics must separate.
VIDEO_CASES = [
    (0, {"DemoGen-A": "smooth", "DemoGen-B": "static"}),
    (8, {"DemoGen-A": "first_second", "DemoGen-B": "text_flicker"}),
    (12, {"DemoGen-A": "text_stays", "DemoGen-B": "text_deform"}),
    (16, {"DemoGen-A": "diagonal_pan", "DemoGen-B": "product_drift"}),
    (20, {"DemoGen-A": "zoom", "DemoGen-B": "colour_change"}),
    (4, {"DemoGen-A": "smooth", "DemoGen-B": "product_swap"}),
]
PROMPTS = {
    "smooth": "The {p} turns slowly on its stand while soft light sweeps across it; fixed camera; the advertising text stays sharp and still.",
    "static": "The {p} rests on the set as gentle light glows around it; fixed camera; the advertising text stays still.",
    "first_second": "The {p} drops into place with a quick bounce, then settles; fixed camera; the text remains stable.",
    "text_flicker": "Condensation beads on the {p} as it rises slightly; fixed camera; the headline text stays stable.",
    "text_stays": "The {p} sways gently while petals drift past; fixed camera; the slogan stays crisp.",
    "text_deform": "The {p} rotates a little as a glow pulses behind it; fixed camera; keep the slogan legible.",
    "diagonal_pan": "The camera glides diagonally past the {p}; the advertising text remains readable.",
    "product_drift": "The {p} sways lightly in a breeze; fixed camera; the product stays centred.",
    "zoom": "The camera slowly pushes in on the {p}; the text stays stable.",
    "colour_change": "Warm light fades up on the {p}; fixed camera; product colours stay true.",
    "product_swap": "The {p} spins once and lands back in place; fixed camera; the text stays stable.",
}


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _background(rng: np.random.Generator, idx: int, size: int) -> Image.Image:
    top, bottom = PALETTES[idx % len(PALETTES)]
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    grad = (np.array(top)[None, None, :] * (1 - t) + np.array(bottom)[None, None, :] * t)
    grad = np.repeat(grad, size, axis=1)
    # a soft spotlight and a floor band make the scene look staged rather than flat
    yy, xx = np.mgrid[0:size, 0:size]
    spot = np.exp(-(((xx - size * 0.5) ** 2) + ((yy - size * 0.45) ** 2)) / (2 * (size * 0.3) ** 2))
    grad = grad * (0.8 + 0.25 * spot[..., None])
    grad[int(size * 0.78):] *= 0.85
    grad += rng.normal(0, 2.0, grad.shape)
    return Image.fromarray(np.clip(grad, 0, 255).astype(np.uint8), "RGB")


def product_sprite(shape: str, colour: tuple[int, int, int], size: int) -> Image.Image:
    """The product as an RGBA cut-out (its alpha is the ground-truth mask)."""
    s = size
    im = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    dark = tuple(int(c * 0.55) for c in colour) + (255,)
    col = tuple(colour) + (255,)
    light = tuple(min(255, int(c * 1.3 + 40)) for c in colour) + (255,)
    if shape == "phone":
        d.rounded_rectangle([s * .3, s * .1, s * .7, s * .9], radius=s * .06, fill=dark)
        d.rounded_rectangle([s * .33, s * .15, s * .67, s * .85], radius=s * .04, fill=col)
        d.ellipse([s * .47, s * .86, s * .53, s * .89], fill=light)
    elif shape in ("can", "bottle"):
        if shape == "bottle":
            d.rectangle([s * .44, s * .08, s * .56, s * .3], fill=dark)
        d.rounded_rectangle([s * .32, s * .25 if shape == "bottle" else s * .12, s * .68, s * .9],
                            radius=s * .08, fill=col)
        d.rectangle([s * .36, s * .45, s * .64, s * .65], fill=light)
    elif shape == "jar":
        d.rounded_rectangle([s * .22, s * .35, s * .78, s * .85], radius=s * .1, fill=col)
        d.rounded_rectangle([s * .2, s * .25, s * .8, s * .38], radius=s * .04, fill=dark)
        d.rectangle([s * .3, s * .5, s * .7, s * .65], fill=light)
    elif shape in ("disc", "ball", "ring"):
        d.ellipse([s * .18, s * .18, s * .82, s * .82], fill=col)
        if shape == "ring":
            d.ellipse([s * .34, s * .34, s * .66, s * .66], fill=(0, 0, 0, 0))
        elif shape == "ball":
            d.arc([s * .18, s * .3, s * .82, s * .7], 0, 360, fill=dark, width=max(2, s // 30))
        else:
            d.ellipse([s * .35, s * .35, s * .65, s * .65], fill=dark)
    elif shape == "lamp":
        d.polygon([(s * .3, s * .45), (s * .7, s * .45), (s * .6, s * .15), (s * .4, s * .15)], fill=col)
        d.rectangle([s * .47, s * .45, s * .53, s * .82], fill=dark)
        d.rounded_rectangle([s * .32, s * .8, s * .68, s * .88], radius=s * .03, fill=dark)
    elif shape == "bag":
        d.arc([s * .35, s * .12, s * .65, s * .5], 180, 360, fill=dark, width=max(3, s // 25))
        d.rounded_rectangle([s * .22, s * .3, s * .78, s * .85], radius=s * .05, fill=col)
        d.rectangle([s * .22, s * .42, s * .78, s * .47], fill=light)
    elif shape == "shoe":
        d.polygon([(s * .12, s * .7), (s * .15, s * .45), (s * .42, s * .38), (s * .6, s * .55),
                   (s * .88, s * .6), (s * .9, s * .72)], fill=col)
        d.rectangle([s * .12, s * .72, s * .9, s * .78], fill=dark)
    else:  # box
        d.polygon([(s * .2, s * .35), (s * .5, s * .22), (s * .8, s * .35), (s * .5, s * .48)], fill=light)
        d.polygon([(s * .2, s * .35), (s * .5, s * .48), (s * .5, s * .85), (s * .2, s * .72)], fill=col)
        d.polygon([(s * .5, s * .48), (s * .8, s * .35), (s * .8, s * .72), (s * .5, s * .85)], fill=dark)
    return im


@functools.lru_cache(maxsize=64)
def _text_layer(idx: int, size: int, over_product: bool) -> Image.Image:
    """The promotional text as an RGBA layer, rendered once and pasted on every frame."""
    product = PRODUCTS[idx]
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    s = size
    y_head = s * 0.42 if over_product else s * 0.04
    d.text((s / 2, y_head), product.headline, font=_font(int(s * 0.09)), fill=(255, 255, 255, 255), anchor="ma",
           stroke_width=max(1, s // 120), stroke_fill=(20, 20, 20, 255))
    d.rounded_rectangle([s * 0.2, s * 0.86, s * 0.8, s * 0.96], radius=s * 0.04, fill=(255, 255, 255, 255))
    d.text((s / 2, s * 0.91), product.tagline, font=_font(int(s * 0.05)), fill=(30, 30, 30, 255), anchor="mm")
    return layer


def _draw_text(im: Image.Image, idx: int, *, over_product: bool = False) -> None:
    layer = _text_layer(idx, im.width, over_product)
    im.paste(layer, (0, 0), layer)


def render_ad(idx: int, seed: int, size: int = SIZE, *, fault: str | None = None) -> tuple[Image.Image, Image.Image]:
    """One ad image and its product mask (L, 255 = product)."""
    rng = np.random.default_rng(seed * 1000 + idx)
    product = PRODUCTS[idx]
    bg = _background(rng, idx, size)
    sprite = product_sprite(product.shape, PRODUCT_COLOURS[idx % len(PRODUCT_COLOURS)], int(size * 0.62))
    ox, oy = (size - sprite.width) // 2, int(size * 0.18)
    bg.paste(sprite, (ox, oy), sprite)
    mask = Image.new("L", (size, size), 0)
    mask.paste(sprite.getchannel("A"), (ox, oy))
    _draw_text(bg, idx, over_product=(fault == "text_over_product"))
    if fault == "blurry":
        bg = bg.filter(ImageFilter.GaussianBlur(radius=size / 80))
    elif fault == "collage":
        tiles = [render_ad((idx + k) % len(PRODUCTS), seed, size // 2)[0] for k in range(4)]
        bg = Image.new("RGB", (size, size), (255, 255, 255))
        for k, t in enumerate(tiles):
            bg.paste(t.resize((size // 2 - 4, size // 2 - 4)), ((k % 2) * (size // 2) + 2, (k // 2) * (size // 2) + 2))
        mask = Image.new("L", (size, size), 0)
    return bg, mask


# -- videos -------------------------------------------------------------------------------------
def _affine(frame: np.ndarray, dx: float, dy: float, scale: float) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render_video_frames(idx: int, behaviour: str, seed: int, size: int = SIZE,
                        n_frames: int = N_FRAMES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed * 7919 + idx * 31 + len(behaviour))
    product = PRODUCTS[idx]
    bg = _background(np.random.default_rng(seed * 1000 + idx), idx, size)
    colour = PRODUCT_COLOURS[idx % len(PRODUCT_COLOURS)]
    sprite = product_sprite(product.shape, colour, int(size * 0.62))
    other = product_sprite(PRODUCTS[(idx + 5) % len(PRODUCTS)].shape, PRODUCT_COLOURS[(idx + 3) % 6], int(size * 0.62))
    frames = []
    for t in range(n_frames):
        u = t / (n_frames - 1)
        im = bg.copy()
        ox, oy = (size - sprite.width) / 2, size * 0.18
        sp = sprite
        if behaviour in ("smooth", "text_stays", "text_deform", "text_flicker"):
            ox += math.sin(2 * math.pi * u) * size * 0.06
            oy += math.sin(4 * math.pi * u) * size * 0.015
        elif behaviour == "first_second":
            k = min(1.0, t / FPS)
            oy += (1 - k) * -size * 0.25 + (math.sin(k * math.pi * 3) * size * 0.03 if k < 1 else 0)
        elif behaviour == "product_drift":
            ox += u * size * 0.55
            oy += u * size * 0.1
        elif behaviour == "colour_change":
            arr = np.asarray(sp).astype(np.float32)
            shift = np.array([1 - u, 0.4 + 0.6 * u, 0.3 + 0.7 * u], np.float32)
            arr[..., :3] = np.clip(arr[..., :3] * shift[None, None, ::-1] if idx % 2 else arr[..., :3] * shift, 0, 255)
            sp = Image.fromarray(arr.astype(np.uint8), "RGBA")
        elif behaviour == "product_swap":
            if t >= n_frames // 2:
                sp = other
            ox += math.sin(2 * math.pi * u) * size * 0.04
        im.paste(sp, (int(round(ox)), int(round(oy))), sp)
        if behaviour == "text_flicker":
            if (t // 3) % 2 == 0 or rng.random() < 0.2:
                _draw_text(im, idx)
        elif behaviour == "text_deform":
            layer = Image.new("RGB", (size, size))
            layer.paste(im)
            _draw_text(layer, idx)
            arr = np.asarray(layer).copy()
            band = slice(int(size * 0.02), int(size * 0.16))
            amp = 2 + 6 * u
            rows = np.arange(band.start, band.stop)
            shifts = (amp * np.sin(rows / 3.0 + t * 0.9)).astype(int)
            cols = (np.arange(size)[None, :] - shifts[:, None]) % size
            arr[rows] = arr[rows[:, None], cols]
            im = Image.fromarray(arr)
        else:
            _draw_text(im, idx)
        if behaviour == "product_swap" and t >= n_frames // 2:
            ImageDraw.Draw(im).text((size * 0.97, size * 0.8), "AI-GEN", font=_font(int(size * 0.04)),
                                    fill=(255, 255, 255), anchor="rm")
        arr = np.asarray(im)
        if behaviour == "diagonal_pan":
            arr = _affine(arr, -u * size * 0.12 + size * 0.06, -u * size * 0.12 + size * 0.06, 1.15)
        elif behaviour == "zoom":
            arr = _affine(arr, 0, 0, 1.0 + 0.35 * u)
        if behaviour == "static":
            arr = np.clip(arr.astype(np.int16) + rng.integers(-1, 2, arr.shape), 0, 255).astype(np.uint8)
        frames.append(np.ascontiguousarray(arr))
    return frames


def generate_demo_media(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the demo images, masks, videos and a triples manifest under out_dir; return the manifest."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    rows = []
    for idx, product in enumerate(PRODUCTS):
        fault = BAD_IMAGES.get(idx)
        im, mask = render_ad(idx, seed, fault=fault)
        name = f"ad_{idx:02d}_{product.shape}{'_' + fault if fault else ''}"
        im.save(out / "images" / f"{name}.png", compress_level=1)
        mask.save(out / "masks" / f"{name}.png")
        rows.append({"image": f"images/{name}.png", "prompt": "", "video": "", "model": "",
                     "category": product.category, "product": product.name, "fault": fault or ""})
    image_of = {i: rows[i]["image"] for i in range(len(PRODUCTS))}
    jobs = []
    for idx, models in VIDEO_CASES:
        product = PRODUCTS[idx]
        # one prompt per case, shared by every model, as in the benchmark: the models differ, not the brief
        prompt = PROMPTS[next(iter(models.values()))].format(p=product.name.lower())
        for model, behaviour in models.items():
            vname = f"videos/case{idx:02d}_{model.split('-')[-1].lower()}_{behaviour}.mp4"
            jobs.append((idx, behaviour, out / vname))
            rows.append({"image": image_of[idx], "prompt": prompt,
                         "video": vname, "model": model, "category": product.category,
                         "product": product.name, "behaviour": behaviour})
    # encoding releases the GIL: two threads halve the wall time on a 2-core machine
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda j: write_mp4(j[2], render_video_frames(j[0], j[1], seed), FPS), jobs))
    manifest = out / "manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(out / "README.txt", "w", encoding="utf-8") as f:
        f.write(f"Demo media generated by curation.demo with seed {seed}. masks/ holds each image's product mask.\n")
    return manifest


def build_demo_workspace(workspace: str | Path, seed: int = 0) -> dict:
    """Create a workspace with the demo media ingested through the normal manifest path."""
    from storage import Workspace

    from .ingest import ingest

    with Workspace.open(workspace) as ws:
        manifest = generate_demo_media(ws.path("media", "demo"), seed=seed)
        report = ingest(ws, [manifest], source="demo")
    return report.as_dict()

