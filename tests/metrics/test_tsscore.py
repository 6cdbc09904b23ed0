"""TSScore: the text helpers, the segment logic on scripted OCR, and real PP-OCR on demo and field videos."""
from __future__ import annotations

import json

import numpy as np
import pytest

from metrics import tsscore as ts
from metrics.backends import OCRBox
from media.decode import decode_video
from metrics.registry import Case


def test_text_helpers():
    assert ts.levenshtein("kitten", "sitting") == 3
    assert ts.cer("SALE", "SALE") == 0 and ts.cer("SALE", "SA1E") == 0.25 and ts.cer("AB", "XYZW") == 1.0
    assert ts.text_sim("GLOW UP", "glowup") == 1.0 and ts.text_sim("abc", "xyz") == 0.0
    assert ts.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


class ScriptedOCR:
    """OCR whose answer for a frame is looked up by the frame's marker pixel [0, 0, 0]."""
    name = "scripted"

    def __init__(self, script: dict[int, list[tuple[str, float, tuple]]]):
        self.script = script

    def __call__(self, img):
        out = []
        for text, conf, (x0, y0, x1, y1) in self.script.get(int(img[0, 0, 0]), []):
            q = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
            out.append(OCRBox(quad=q, text=text, conf=conf))
        return out


class NoSeg:
    name = "none"

    def segment_image(self, img, **kw):
        return np.zeros(img.shape[:2], bool)

    def propagate(self, frames, first):
        return [np.zeros(f.shape[:2], bool) for f in frames]


def frames_with_text(n: int) -> list[np.ndarray]:
    import cv2

    frames = []
    for i in range(n):
        f = np.full((120, 200, 3), 230, np.uint8)
        cv2.putText(f, "SALE 50%", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (20, 20, 20), 2)
        f[0, 0] = i + 1                      # marker for the scripted OCR (0 = the reference image)
        frames.append(f)
    return frames


BOX = (18, 35, 160, 68)
REF = [("SALE 50%", 0.98, BOX)]


def run_scripted(per_frame, n=16, ref=REF):
    script = {0: ref}
    script.update({i + 1: per_frame(i) for i in range(n)})
    frames = frames_with_text(n)
    case = Case()
    case._rgba = np.dstack([frames[0][..., :3]] * 1)
    case._rgba[0, 0] = 0
    return ts.compute(frames, case, ts.TSConfig(reuse=False), ocr=ScriptedOCR(script), seg=NoSeg())


def test_segments_stability_cover_and_spurious():
    stable = run_scripted(lambda i: [("SALE 50%", 0.97, BOX)])
    assert stable.status == "ok" and len(stable.trace["segments"]) == 1
    seg = stable.trace["segments"][0]
    assert seg["stab"] == 1 and seg["cover"] == 1 and stable.value > 0.9
    flicker = run_scripted(lambda i: [("SALE 50%", 0.97, BOX)] if i % 2 else [])
    assert flicker.trace["segments"][0]["cover"] == 0.5 and flicker.value < stable.value - 0.1
    variants = ["SALE 50%", "SA1E 50%", "5ALE 5O%", "SALE 80%"]
    deform = run_scripted(lambda i: [(variants[i % 4], 0.8, BOX)])
    assert deform.trace["segments"][0]["stab"] < 0.8 and deform.value < stable.value
    spur = run_scripted(lambda i: [("SALE 50%", 0.97, BOX)] + ([("AI-GEN", 0.9, (150, 100, 195, 115))] if i > 7 else []))
    assert spur.value == pytest.approx(stable.value)
    assert spur.trace["spurious_texts"] == ["ai-gen"] and len(spur.trace["spurious"]) == 1
    assert spur.trace["spurious"][0]["frames"] == list(range(8, 16))
    # a one-off reading (an OCR ghost on hair or foliage) is a raw candidate, not a reported text
    ghost = run_scripted(lambda i: [("SALE 50%", 0.97, BOX)] + ([("2h", 0.95, (150, 100, 170, 115))] if i == 5 else []))
    assert ghost.trace["spurious"] == [] and [c["text"] for c in ghost.trace["spurious_candidates"]] == ["2h"]
    # a moving caption is one text followed through the video: sliding slowly, sliding 35 px per sample
    # with a 40 px box (IoU between consecutive boxes 0.07), and growing 8 % per sample: one segment each,
    # full cover
    slide = run_scripted(lambda i: [("SALE 50%", 0.97, (2 + 5 * i, 35, 42 + 5 * i, 68))], n=16)
    assert len(slide.trace["segments"]) == 1 and slide.trace["segments"][0]["cover"] == 1
    fast = run_scripted(lambda i: [("SALE 50%", 0.97, (35 * i, 35, 35 * i + 40, 68))], n=5)
    assert len(fast.trace["segments"]) == 1 and fast.trace["segments"][0]["cover"] == 1
    grow = run_scripted(lambda i: [("SALE 50%", 0.97, (100 - 20 * 1.08 ** i, 50 - 8 * 1.08 ** i,
                                                      100 + 20 * 1.08 ** i, 50 + 8 * 1.08 ** i))])
    assert len(grow.trace["segments"]) == 1 and grow.trace["segments"][0]["cover"] == 1
    # boxes that jump (IoU < 0.3) start a new segment
    jump = run_scripted(lambda i: [("SALE 50%", 0.97, BOX if i < 8 else (18, 80, 160, 113))])
    assert len(jump.trace["segments"]) == 2 and all(s["cover"] == 0.5 for s in jump.trace["segments"])
    # per-frame trace: boxes with segment id, text, confidence, clarity
    row = stable.trace["frames"][3]["boxes"][0]
    assert row["segment"] == 0 and row["text"] == "SALE 50%" and 0 < row["clarity"] <= 1 and len(row["quad"]) == 4


def test_missing_reference_text_counts_zero_and_no_text_is_na():
    ref2 = REF + [("FREE SHIPPING", 0.9, (10, 90, 190, 110))]
    out = run_scripted(lambda i: [("SALE 50%", 0.97, BOX)], ref=ref2)
    assert out.trace["missing_refs"] == [1] and out.value == pytest.approx(
        out.trace["segments"][0]["score"] / 2, abs=1e-3)
    # a reading without a letter or digit (a phone screen read as "■") is a shape, not a reference text
    shape = run_scripted(lambda i: [("SALE 50%", 0.97, BOX)], ref=REF + [("■", 0.9, (60, 70, 120, 110))])
    assert [r["text"] for r in shape.trace["references"]] == ["SALE 50%"] and shape.trace["missing_refs"] == []
    na = run_scripted(lambda i: [], ref=[])
    assert na.status == "n/a" and na.value is None and "no text in the reference" in na.reason
    low_conf = run_scripted(lambda i: [], ref=[("SALE 50%", 0.3, BOX)])    # below ref_conf_thresh
    assert low_conf.status == "n/a"


@pytest.fixture(scope="module")
def demo_rows(demo_media):
    rows = [json.loads(line) for line in open(demo_media / "manifest.jsonl", encoding="utf-8")]
    return {r["behaviour"]: r for r in rows if r.get("video")}


def real(demo_media, row, n=8, **kw):
    cfg = ts.TSConfig(target_frames=n, **kw)
    v = decode_video(demo_media / row["video"], ts.requests(cfg))
    s = v.get(cfg.request())
    return ts.compute(s.frames, Case(image_path=str(demo_media / row["image"])), cfg, frame_scale=s.scale)


def test_real_ocr_on_demo_videos(demo_media, demo_rows):
    stays = real(demo_media, demo_rows["text_stays"])
    assert stays.status == "ok" and stays.value > 0.95
    assert {r["text"].replace(" ", "").upper() for r in stays.trace["references"]} == {"GLOWUP", "24HHYDRATION"}
    assert stays.trace["ocr_calls"] < 4          # static text: identical frames reuse the OCR result
    flicker = real(demo_media, demo_rows["text_flicker"])
    deform = real(demo_media, demo_rows["text_deform"])
    assert flicker.value < stays.value - 0.05 and deform.value < stays.value - 0.05
    assert min(s["cover"] for s in flicker.trace["segments"]) < 0.8
    swap = real(demo_media, demo_rows["product_swap"])   # the second half carries an "AI-GEN" mark
    assert "ai-gen" in swap.trace["spurious_texts"] and swap.value > 0.9


def test_frame_reuse_keeps_the_result(demo_media, demo_rows):
    a = real(demo_media, demo_rows["text_stays"], n=3, reuse=True)
    b = real(demo_media, demo_rows["text_stays"], n=3, reuse=False)
    assert a.trace["ocr_calls"] == 1 and b.trace["ocr_calls"] == 3
    assert a.value == pytest.approx(b.value, abs=0.01)


def test_batched_detection_path_gives_the_same_score(demo_media, demo_rows):
    """The GPU path (every frame blanked and detected in batches up front, then the usual loop) scores what
    the one-frame-at-a-time path scores. Run here with the torch engine on the CPU, batching switched on."""
    from metrics.backends.ocr import RapidOCRBackend

    class Batching(RapidOCRBackend):
        batched = True

    row = demo_rows["text_flicker"]                  # flicker: several full OCRs, re-reads and reuses
    cfg = ts.TSConfig(target_frames=6)
    s = decode_video(demo_media / row["video"], ts.requests(cfg)).get(cfg.request())
    case = lambda: Case(image_path=str(demo_media / row["image"]))  # noqa: E731 (fresh memo per run)
    one = ts.compute(s.frames, case(), cfg, ocr=RapidOCRBackend(engine="torch", device="cpu"))
    batched_ocr = Batching(engine="torch", device="cpu")
    many = ts.compute(s.frames, case(), cfg, ocr=batched_ocr)
    assert one.status == many.status == "ok" and one.trace["ocr_calls"] >= 2
    assert many.value == pytest.approx(one.value, abs=1e-6)
    assert [f["ocr"] for f in many.trace["frames"]] == [f["ocr"] for f in one.trace["frames"]]
    assert [[b["text"] for b in f["boxes"]] for f in many.trace["frames"]] == \
        [[b["text"] for b in f["boxes"]] for f in one.trace["frames"]]
    assert not batched_ocr._ahead                    # the prefetched maps are dropped afterwards


@pytest.mark.field
def test_field_text_video_segments_match_screen_text(fieldmedia):
    cfg = ts.TSConfig(target_frames=6)
    v = decode_video(fieldmedia / "videos_text/moviepy_testcard_title_overlay.mp4", ts.requests(cfg))
    s = v.get(cfg.request())
    out = ts.compute(s.frames, Case(), cfg, frame_scale=s.scale)   # no source image: the first frame
    assert out.status == "ok" and out.trace["reference_source"] == "first frame"
    header = [g for g in out.trace["segments"] if ts.text_sim(g["ref_text"], "1024 x 768 25 fps Photo JPEG 75%") > 0.9]
    assert header and header[0]["cover"] == 1 and header[0]["stab"] > 0.9
    assert all(ts.text_sim(t, "1024 x 768 25 fps Photo JPEG 75%") > 0.8 for t in header[0]["texts"])


def test_median_colour_is_numpy_median():
    """The histogram median used to blank the product equals np.median (odd and even counts, ties)."""
    from metrics.tsscore import median_colour

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 11, 1000, 4096):
        for lo, hi in ((0, 256), (100, 103)):
            px = rng.integers(lo, hi, (n, 3), dtype=np.uint8)
            np.testing.assert_array_equal(median_colour(px), np.median(px, axis=0).astype(np.uint8))


def test_blank_product_fills_with_the_median_of_the_rest():
    from metrics.tsscore import blank_product

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:70, 40:100] = True
    out = blank_product(img, mask)
    grown = np.zeros_like(mask)
    grown[28:72, 38:102] = True                          # dilated by the 5x5 kernel
    want = np.median(img[~grown], axis=0).astype(np.uint8)
    assert (out[grown] == want).all() and (out[~grown] == img[~grown]).all()
    assert blank_product(img, np.zeros_like(mask)) is img
    assert (blank_product(img, np.ones_like(mask)) == 128).all()
    gray = img[:, :, 0]
    out = blank_product(gray, mask)
    assert out.shape == gray.shape and (out[grown] == int(np.median(gray[~grown]))).all()


def test_frames_prepared_on_threads_in_order():
    # the per-frame preparation runs on a thread pool: every frame's results, in frame order
    import cv2

    from metrics.tsscore import _prepare_frames, blank_product

    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (90, 130, 3), dtype=np.uint8) for _ in range(11)]
    masks = []
    for k in range(11):
        m = np.zeros((90, 130), bool)
        m[10 + 3 * k:40 + 3 * k, 20 + 5 * k:60 + 5 * k] = True
        masks.append(m)
    grays, small, small_masks, blanked = _prepare_frames(frames, masks, blank=True)
    for k, (f, m) in enumerate(zip(frames, masks)):
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        assert np.array_equal(grays[k], g) and small[k].shape == (45, 65)
        assert np.array_equal(blanked[k], blank_product(f, m))
        # the half-size mask covers the product (grown a little), nothing far from it
        ys, xs = np.nonzero(small_masks[k])
        assert ys.min() <= (10 + 3 * k) // 2 and ys.max() >= (40 + 3 * k) // 2 - 1
        assert xs.min() >= (20 + 5 * k) // 2 - 6 and xs.max() <= (60 + 5 * k) // 2 + 6
    assert _prepare_frames(frames, masks, blank=False)[3] == [None] * 11


@pytest.mark.field
def test_field_ocr_ghosts_are_not_reported_and_a_watermark_is(fieldmedia, tmp_path):
    """Text-free field videos where OCR reads ghosts (hair as "2h", a carpet as "金", a cup as "1") report no
    spurious text against their own first frame; a drawn watermark on one of them is reported (CI time: the
    watermark is drawn on the moving one only)."""
    from PIL import Image, ImageDraw

    from media.encode import write_mp4
    from media.overlay_draw import label_font

    cfg = ts.TSConfig(target_frames=16)
    for name in ("videos_generated/cogvideox2b_face_closeup_nearstatic.mp4", "videos_generated/cogvideox2b_toy_ship.mp4",
                 "videos_other/sam2_coffee_pour.mp4"):
        path = fieldmedia / name
        frames = decode_video(path, [ts.FrameRequest("all", max_side=512)]).get(ts.FrameRequest("all", max_side=512))
        ref = tmp_path / f"{path.stem}.png"
        Image.fromarray(frames.frames[0]).save(ref)
        out = ts.run(decode_video(path, ts.requests(cfg)), Case(image_path=str(ref)), cfg)
        assert out.trace["spurious"] == [], (name, out.trace["spurious"])
        if "coffee" not in name:
            continue
        marked = []
        for f in frames.frames:
            im = Image.fromarray(f)
            h, w = f.shape[:2]
            ImageDraw.Draw(im).text((w * 0.6, h * 0.85), "SAMPLE", font=label_font(max(14, h // 14)),
                                    fill=(245, 245, 245), stroke_width=2, stroke_fill=(20, 20, 20))
            marked.append(np.asarray(im))
        wm = tmp_path / f"{path.stem}_wm.mp4"
        write_mp4(wm, marked, fps=frames.nominal_fps or frames.fps)
        out = ts.run(decode_video(wm, ts.requests(cfg)), Case(image_path=str(ref)), cfg)
        assert out.trace["spurious_texts"] == ["sample"], (name, out.trace["spurious"])
        # frames are source frame indices, like the rest of the trace
        assert set(out.trace["spurious"][0]["frames"]) <= {f["index"] for f in out.trace["frames"]}


def test_frame_reuse_does_not_hide_a_changed_stroke():
    """One stroke of one glyph changes halfway (the E of SALE loses its bottom bar): a few pixels, far under
    the reuse threshold of the frame, but on the text. With reuse the changed frames are re-read, and Stab
    drops exactly as when every frame is OCR'd."""
    import cv2

    font, scale, th, x, y = cv2.FONT_HERSHEY_SIMPLEX, 1.1, 2, 60, 200
    (w_sal, _), _ = cv2.getTextSize("SAL", font, scale, th)
    (w_sale, _), _ = cv2.getTextSize("SALE", font, scale, th)
    frames = []
    for i in range(12):
        f = np.full((432, 768, 3), 225, np.uint8)
        cv2.putText(f, "SALE 50%", (x, y), font, scale, (20, 20, 20), th, cv2.LINE_AA)
        if i >= 6:
            cv2.rectangle(f, (x + w_sal + int(0.35 * (w_sale - w_sal)), y - 5), (x + w_sale + 3, y + 3),
                          (225, 225, 225), -1)
        frames.append(f)
    case = Case()
    case._rgba = frames[0].copy()
    reused = ts.compute(frames, case, ts.TSConfig(reuse=True), seg=NoSeg())
    every = ts.compute(frames, case, ts.TSConfig(reuse=False), seg=NoSeg())
    assert every.trace["segments"][0]["stab"] < 1.0                  # OCR sees the change
    assert reused.trace["segments"][0]["stab"] == pytest.approx(every.trace["segments"][0]["stab"])
    assert reused.trace["ocr_calls"] < every.trace["ocr_calls"]      # and reuse still saves work


def test_a_text_read_only_with_the_product_blanked_is_dropped(demo_media):
    """Reference texts come from the source image with the product blanked; a text is kept only where the
    image as it is shows text too. The suite hands over its one reading of the image: a line it read as three
    boxes still covers the text, a reading without text there drops it (with the reason)."""
    from metrics.backends import get_ocr
    img_path = next(p for p in sorted((demo_media / "images").glob("*.png")))
    case = Case(image_path=str(img_path))
    image = case.image
    mask = np.zeros(image.shape[:2], bool)
    h, w = mask.shape
    mask[h // 3:2 * h // 3, w // 3:2 * w // 3] = True
    ocr = get_ocr()
    kept = ts.reference_texts(ocr, image, mask, 0.5, 768)
    assert kept, "the demo ad has readable text"
    boxes = [r["box"] for r in kept]
    # each line as three boxes: no single one holds half of the text's box, their union all of it
    thirds = [(x0 + k * (x1 - x0) / 3, y0, x0 + (k + 1) * (x1 - x0) / 3, y1)
              for x0, y0, x1, y1 in boxes for k in range(3)]
    split = ts.reference_texts(ocr, image, mask, 0.5, 768, plain=thirds)
    assert [r["text"] for r in split] == [r["text"] for r in kept]
    dropped: list[dict] = []
    assert ts.reference_texts(ocr, image, mask, 0.5, 768, dropped, plain=boxes[1:]) == kept[1:]
    assert [d["text"] for d in dropped] == [kept[0]["text"]]
    assert dropped[0]["why"] == "read only with the product blanked"
