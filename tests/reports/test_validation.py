"""Known-answer orderings of the metrics, on the cases bench/validation.py builds (its full run, with the
numbers, is bench/results/validation.md). Orderings and statuses only: never a number the code under test
computed. The demo subset is small (192 px scenes, 4 sampled frames: PP-OCR costs ~1 s a frame on 2 cores);
the field subset reads ../shared/fieldmedia and skips without it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import validation as V  # noqa: E402

SIZE, FRAMES, FPS = V.QUICK_SIZE, V.QUICK_FRAMES, V.demo.FPS


def _classical_embedder() -> bool:
    """Whether ProductScore would embed with the offline classical descriptor (no DINOv2 / CLIP weights), from
    the backends' cheap status records."""
    from metrics.registry import backend_keys

    return "classical" in backend_keys()["productscore"]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("validation")


def test_motionx_static_slow_fast(tmp):
    """Constant-velocity motion sped up by keeping every 3rd frame: the path and its smoothness stay, the
    motion per second triples."""
    for beh in V.MOTION_BEHAVIOURS:
        cases = V.demo_motion_cases(beh, SIZE)
        got = {name: V.score_motionx(V.write_video(fr, fps, tmp / f"m_{beh}_{name}.mp4"))
               for name, (fr, fps) in cases.items() if name in ("static", "slow", "fast")}
        assert all(o.status == "ok" for o in got.values()), (beh, got)
        assert got["static"].value < got["slow"].value < got["fast"].value, (beh, got)


@pytest.fixture(scope="module")
def text(tmp) -> dict:
    """TSScore of the text scene's cases, the video's first frame as the reference (no source image: no
    segmentation, so the OCR is the whole cost). The text-free case's status needs no more than 2 frames."""
    out = {}
    for name, fr in V.text_cases(SIZE).items():
        out[name] = V.score_tsscore(V.write_video(fr, FPS, tmp / f"t_{name}.mp4"), None,
                                    2 if name == "text-free" else FRAMES)
    return out


def test_tsscore_orders_stable_defects_vanish(text):
    assert all(text[k].status == "ok" for k in ("stable", "flicker", "deform", "vanish")), text
    assert text["stable"].value > text["flicker"].value > text["vanish"].value
    assert text["stable"].value > text["deform"].value > text["vanish"].value


def test_tsscore_text_free_is_na(text):
    assert text["text-free"].status == "n/a" and text["text-free"].value is None
    assert "no text in the reference" in text["text-free"].reason


def test_tsscore_flicker_above_deform(text):
    assert text["flicker"].value > text["deform"].value


@pytest.fixture(scope="module")
def product(tmp) -> dict:
    cut = V.save_png(V.product_cutout(SIZE), tmp / "cutout.png")
    return {name: V.score_productscore(V.write_video(fr, FPS, tmp / f"p_{name}.mp4"), cut, FRAMES)
            for name, fr in V.product_cases(SIZE).items()}


def test_productscore_orders_same_swapped_missing(product):
    assert all(o.status == "ok" for o in product.values()), product
    assert product["same"].value > product["swapped"].value > product["missing"].value
    assert product["same"].value > product["recoloured"].value


@pytest.mark.xfail(_classical_embedder(), strict=True,
                   reason="classical-v1 is a colour-dominated descriptor: the demo's product, recoloured in every "
                          "frame, reads as another product (below the calibrated same-category floor, like the "
                          "missing one) in every frame, below a swap that keeps it half the time "
                          "(bench/results/validation.md)")
def test_productscore_recoloured_between_swapped_and_missing(product):
    assert product["swapped"].value < product["recoloured"].value
    assert product["recoloured"].value > product["missing"].value


@pytest.mark.field
def test_field_motionx_static_slow_fast(fieldmedia, tmp):
    frames, fps = V._decode_rgb(fieldmedia / V.FIELD_MOTION[0])
    cases = V.motion_cases(frames, fps)
    got = {name: V.score_motionx(V.write_video(fr, f, tmp / f"fm_{name}.mp4"))
           for name, (fr, f) in cases.items() if name in ("static", "slow", "fast")}
    assert got["static"].value < got["slow"].value < got["fast"].value, got


@pytest.fixture(scope="module")
def honey_text(fieldmedia, tmp) -> dict:
    """TSScore of the pour-honey clip, clean and with a watermark on every frame, against its source image. The
    mark goes top left, off the product: TSScore blanks the product before its OCR, and the calibration's
    bottom-right place lies on the toast here. (The clip's ProductScore pair, the source image above an
    unrelated product, is tests/metrics/test_productscore.py::test_field_pair_beats_unrelated_product.)"""
    video = fieldmedia / V.HONEY_VIDEO
    frames, fps = V._decode_rgb(video, 768)
    return V.spurious_pair(video, frames, fps, fieldmedia / V.HONEY_IMAGE, tmp, FRAMES, ("top left",))


@pytest.mark.field
def test_field_spurious_text(honey_text):
    """No text reported on the text-free clip; the drawn watermark reported."""
    assert honey_text["clean"].trace["spurious_texts"] == []
    assert "sample" in honey_text["watermark top left"].trace["spurious_texts"]


@pytest.mark.field
def test_field_text_free_source_is_na(honey_text):
    """The source image has no text: PP-OCR reads a '²' (conf 0.66) in the edge of the patch that blanks the
    honey jar, which the image without the patch does not show; TSScore drops it, and the clip is n/a."""
    assert honey_text["clean"].status == "n/a", honey_text["clean"].trace.get("references")
    assert "seen only with the product blanked" in honey_text["clean"].reason
