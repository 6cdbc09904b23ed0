"""ProductScore: identity against the source image; a swapped product halves it; missing frames count 0."""
from __future__ import annotations

import json

import numpy as np
import pytest

from metrics import productscore as ps
from media.decode import decode_video
from metrics.registry import Case

CFG = ps.ProductConfig(n_frames=16)


def score(video, image, cfg=CFG):
    v = decode_video(video, ps.requests(cfg))
    s = v.get(cfg.request())
    return ps.compute(s.frames, Case(image_path=str(image)), cfg, frame_scale=s.scale)


@pytest.fixture(scope="module")
def rows(demo_media):
    rs = [json.loads(line) for line in open(demo_media / "manifest.jsonl", encoding="utf-8")]
    return {r["behaviour"]: r for r in rs if r.get("video") and r["product"] == "Trail ball"}


def test_swap_halfway_halves_the_score(demo_media, rows):
    smooth = score(demo_media / rows["smooth"]["video"], demo_media / rows["smooth"]["image"])
    swap = score(demo_media / rows["product_swap"]["video"], demo_media / rows["product_swap"]["image"])
    assert smooth.status == "ok" and smooth.value > 0.9
    assert 0.35 < swap.value / smooth.value < 0.65
    sims = [f["sim"] for f in swap.trace["frames"]]
    assert np.mean(sims[:7]) > 0.8 and np.mean(sims[-7:]) < 0.3
    f0 = smooth.trace["frames"][0]
    assert f0["present"] and len(f0["box"]) == 4 and 3 <= len(f0["polygon"]) <= 32
    assert smooth.backend.endswith("classical-v1")     # offline: the classical descriptor, named as such
    other = score(demo_media / rows["smooth"]["video"], demo_media / "images" / "ad_09_jar.png")
    assert other.value < 0.3


def test_crop_keeps_the_product_and_greys_the_rest():
    """The crop is the mask's box plus margin; inside the mask the frame's pixels, outside flat FILL grey,
    for colour and grey frames and for boolean or 0/255 masks."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[20:80, 40:120] = rng.random((60, 80)) > 0.4
    x0, y0, x1, y1 = ps.mask_box(mask)
    mx, my = round((x1 - x0) * 0.05), round((y1 - y0) * 0.05)
    box = (slice(y0 - my, y1 + my), slice(x0 - mx, x1 + mx))
    for frame in (img, img[..., 1]):
        for m in (mask, mask.astype(np.uint8) * 255):
            crop = ps.crop_product(frame, m)
            inside = mask[box]
            assert crop.shape[:2] == inside.shape and crop.dtype == np.uint8
            assert np.array_equal(crop[inside], frame[box][inside])
            assert (crop[~inside] == ps.FILL).all()
    assert ps.crop_product(img, np.zeros((120, 160), bool)) is None


def test_missing_frames_count_zero():
    class HalfSeg:
        name = "half"

        def segment_image(self, img, **kw):
            m = np.zeros(img.shape[:2], bool)
            m[20:60, 20:60] = True
            return m

        def propagate(self, frames, first):
            return [first if i % 2 == 0 else np.zeros_like(first) for i in range(len(frames))]

    from metrics.backends import get_embedder

    img = np.full((80, 80, 3), 200, np.uint8)
    img[20:60, 20:60] = (200, 30, 30)
    case = Case()
    case._rgba = img
    frames = [img.copy() for _ in range(8)]
    out = ps.compute(frames, case, ps.ProductConfig(), seg=HalfSeg(), embedder=("classical", get_embedder("classical")))
    assert out.trace["present_ratio"] == 0.5 and out.value == pytest.approx(0.5, abs=0.01)
    assert ps.compute(frames, Case(), ps.ProductConfig()).status == "n/a"     # no source image


@pytest.mark.field
def test_field_pair_beats_unrelated_product(fieldmedia):
    video = fieldmedia / "videos_generated/dynamicrafter_pour_honey.mp4"
    pair = score(video, fieldmedia / "images_other/dynamicrafter_pour_honey_input.png")
    other = score(video, fieldmedia / "images_ad/postermaker_product_cream_jar_rgba.png")
    assert pair.value > other.value + 0.3
