"""The CUDA paths give the CPU's answers: PP-OCR's converted networks on the GPU (one image and batched) read
what ONNX Runtime reads on the CPU. Needs a CUDA GPU: skipped elsewhere; `bench/gpu_tests.sh` runs it on the
device machine and commits the output (bench/results/gpu_tests_cuda.txt)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

LINES = ["SUMMER SALE", "50% OFF", "FREE SHIPPING"]


def _poster(shift: int = 0) -> np.ndarray:
    img = np.full((480, 640, 3), 235, np.uint8)
    cv2.rectangle(img, (420, 200), (600, 440), (40, 120, 200), -1)   # a plain product block, no text on it
    for k, s in enumerate(LINES):
        cv2.putText(img, s, (30 + shift, 90 + 110 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4,
                    cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def engines():
    from metrics.backends.ocr import RapidOCRBackend

    return RapidOCRBackend(engine="onnxruntime"), RapidOCRBackend(engine="torch", device="cuda")


def _read(boxes):
    return [(b.text, b.bbox) for b in sorted(boxes, key=lambda b: b.bbox[1])]


def test_ocr_on_cuda_reads_what_onnxruntime_reads(engines):
    cpu, gpu = engines
    assert gpu.device.startswith("cuda") and gpu.batched
    want = _read(cpu(_poster()))
    got = _read(gpu(_poster()))
    assert [t for t, _ in want] == LINES            # the text drawn, read on the CPU
    assert [t for t, _ in got] == LINES
    for (_, a), (_, b) in zip(want, got):
        assert np.abs(np.subtract(a, b)).max() <= 2.0, (a, b)


def test_batched_ocr_on_cuda_equals_one_image_at_a_time(engines):
    _, gpu = engines
    images = [_poster(shift) for shift in (0, 12, 24, 36, 48)]
    one = [_read(gpu(im)) for im in images]
    many = [_read(r) for r in gpu.many(images)]
    assert [[t for t, _ in r] for r in many] == [LINES] * len(images)
    for a, b in zip(one, many):
        assert [t for t, _ in a] == [t for t, _ in b]
        for (_, ba), (_, bb) in zip(a, b):
            assert np.abs(np.subtract(ba, bb)).max() <= 1.0
