"""PP-OCR (rapidocr) on rendered text and real ad posters; the classical segmentation fallback's IoU on
real product cut-outs composited onto real backgrounds; bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from media.files import MediaError, load_image
from metrics.backends import OCRBox, get_embedder, get_ocr, get_segmenter

# Measured on 24 composites (4 PosterMaker cut-outs x 6 backgrounds) with the classical fallback:
# mean IoU 0.72, median 0.73 (docs/backends.md). The floors leave room for platform differences.
MEAN_IOU_FLOOR = 0.65
MEDIAN_IOU_FLOOR = 0.65
DEMO_MEAN_IOU_FLOOR = 0.85


def _render(text: str, size=(420, 120), font_size=44) -> np.ndarray:
    im = Image.new("RGB", size, (250, 250, 245))
    d = ImageDraw.Draw(im)
    d.text((20, 30), text, font=ImageFont.load_default(size=font_size), fill=(20, 20, 30))
    return np.asarray(im)


def _norm(s: str) -> str:
    return "".join(s.split()).upper()


def test_ocr_rendered_english():
    ocr = get_ocr()
    assert ocr.name == "rapidocr-ppocr" and ocr is get_ocr()
    boxes = ocr(_render("SUMMER SALE 50%"))
    assert boxes and all(isinstance(b, OCRBox) for b in boxes)
    text = _norm("".join(b.text for b in boxes))
    assert "SUMMERSALE" in text and "50" in text
    b = boxes[0]
    assert b.quad.shape == (4, 2) and b.quad.dtype == np.float32 and 0 < b.conf <= 1
    q = b.quad  # clockwise from top-left: TL, TR, BR, BL
    assert q[0, 0] < q[1, 0] and q[1, 1] < q[2, 1] and q[3, 0] < q[2, 0] and q[0, 1] < q[3, 1]


def test_ocr_thread_count_follows_the_worker_share(monkeypatch):
    """A scoring worker's OMP_NUM_THREADS (or ADVFX_OCR_THREADS) sizes ONNX Runtime's pool, so N workers do
    not each take every core; the engine still reads text."""
    from metrics.backends.ocr import RapidOCRBackend

    monkeypatch.delenv("ADVFX_OCR_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ocr = RapidOCRBackend()
    assert ocr._engine.cfg.EngineConfig.onnxruntime.intra_op_num_threads == 1
    assert "SUMMERSALE" in _norm("".join(b.text for b in ocr(_render("SUMMER SALE"))))
    monkeypatch.setenv("ADVFX_OCR_THREADS", "2")
    assert RapidOCRBackend()._engine.cfg.EngineConfig.onnxruntime.intra_op_num_threads == 2


def test_onnx_rewrite_for_torch_keeps_the_function():
    """The graph rewrite for onnx2torch (SAME_UPPER pads made explicit, Constant weights made initializers)
    computes what the original computes: ONNX Runtime runs both on the same input."""
    import onnxruntime as ort

    from metrics.backends.ocr import _rapidocr_root, onnx_for_torch

    rng = np.random.default_rng(0)
    for path, shape in ((next(_rapidocr_root().glob("*_det_*.onnx")), (1, 3, 320, 256)),
                        (next(_rapidocr_root().glob("*_cls_*.onnx")), (2, 3, 48, 192)),
                        (next(_rapidocr_root().glob("*_rec_*.onnx")), (2, 3, 48, 200))):
        fixed = onnx_for_torch(path)
        assert not any(n.op_type == "Constant" for n in fixed.graph.node)
        assert not any(a.name == "auto_pad" and a.s.startswith(b"SAME") for n in fixed.graph.node for a in n.attribute)
        x = rng.random(shape, dtype=np.float32)
        a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        b = ort.InferenceSession(fixed.SerializeToString(), providers=["CPUExecutionProvider"])
        ya = a.run(None, {a.get_inputs()[0].name: x})[0]
        yb = b.run(None, {b.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(ya, yb, atol=1e-5, err_msg=path.name)


def test_ocr_torch_engine_reads_what_onnxruntime_reads():
    """The torch engine (PP-OCR graphs converted by onnx2torch: the GPU path) gives the same boxes, texts
    and confidences as ONNX Runtime, here on the CPU, on a two-line rendered ad."""
    from metrics.backends.ocr import RapidOCRBackend, TorchSession

    im = Image.new("RGB", (640, 260), (250, 250, 245))
    d = ImageDraw.Draw(im)
    d.text((20, 30), "SUMMER SALE 50%", font=ImageFont.load_default(size=44), fill=(20, 20, 30))
    d.text((60, 160), "Free shipping", font=ImageFont.load_default(size=36), fill=(120, 20, 30))
    img = np.asarray(im)
    ref = RapidOCRBackend(engine="onnxruntime")(img)
    tor = RapidOCRBackend(engine="torch", device="cpu")
    assert isinstance(tor._engine.text_det.session, TorchSession) and tor.engine == "torch"
    got = tor(img)
    assert [b.text for b in got] == [b.text for b in ref] and "SUMMERSALE" in _norm(got[0].text)
    for g, r in zip(got, ref):
        assert abs(g.conf - r.conf) < 1e-3
        np.testing.assert_allclose(g.quad, r.quad, atol=1.0)
    # the recogniser's shape arithmetic runs on the host, once per input shape (fx_host): a second read takes
    # the cached path and reads the same
    assert tor._engine.text_rec.session.host_nodes > 0
    again = tor(img)
    assert [(b.text, round(b.conf, 4)) for b in again] == [(b.text, round(b.conf, 4)) for b in got]


def test_ocr_prefetch_calls_each_network_once_for_all_frames_and_keeps_results():
    """prefetch() reads a list of frames with each PP-OCR network called for all of them together (the
    detector in batches, the classifier once, the recogniser once per padded width); every later call on
    those frames takes its result from there, with no network call of its own, and reads exactly what a
    plain call reads."""
    from metrics.backends.ocr import RapidOCRBackend

    def frame(k: int) -> np.ndarray:
        im = Image.new("RGB", (480, 360), (250, 250, 245))
        d = ImageDraw.Draw(im)
        d.text((20 + 3 * k, 30), "SUMMER SALE", font=ImageFont.load_default(size=40), fill=(20, 20, 30))
        d.text((40, 200 - 3 * k), "Free shipping", font=ImageFont.load_default(size=30), fill=(120, 20, 30))
        return np.asarray(im)

    frames = [frame(k) for k in range(3)] + [np.full((360, 480, 3), 250, np.uint8), np.zeros((4, 4, 3), np.uint8)]
    ocr = RapidOCRBackend(engine="torch", device="cpu")
    plain = [ocr(f) for f in frames]
    runs: dict[str, list[int]] = {"det": [], "cls": [], "rec": []}
    eng = ocr._engine
    for part in runs:
        getattr(eng, f"text_{part}").session.module.register_forward_hook(
            lambda m, i, o, part=part: runs[part].append(i[0].shape[0]))
    with ocr.prefetch(frames, batch=2):
        # detector: batches of 2 of the 4 frames big enough to read; the 6 text lines of 3 frames: one
        # classifier call, and rapidocr's per-frame recogniser batches merged by padded width
        assert runs["det"] == [2, 2] and runs["cls"] == [6] and sum(runs["rec"]) == 6
        assert len(runs["rec"]) <= 3 and len(ocr._ahead) == 4
        before = {k: len(v) for k, v in runs.items()}
        got = [ocr(f) for f in frames]
        assert {k: len(v) for k, v in runs.items()} == before and not ocr._ahead   # no network ran again
    for a, b in zip(plain, got):
        assert [x.text for x in a] == [x.text for x in b]
        for x, y in zip(a, b):
            assert abs(x.conf - y.conf) < 1e-4
            np.testing.assert_allclose(x.quad, y.quad, atol=0.5)
    assert "SUMMERSALE" in _norm(got[0][0].text) and got[3] == [] and got[4] == []
    with RapidOCRBackend(engine="onnxruntime").prefetch(frames) as same:   # nothing to batch: a no-op
        assert same(frames[0])


def test_ocr_prefetch_from_two_threads_keeps_each_threads_results():
    """Scoring threads share one OCR backend: two threads batch their frames at the same time, and one
    thread's block ending leaves the other's fetched results in place (its reads run no network again) and
    each reads what a plain call reads."""
    import threading

    from metrics.backends.ocr import RapidOCRBackend

    def frame(text: str, k: int) -> np.ndarray:
        im = Image.new("RGB", (480, 240), (250, 250, 245))
        ImageDraw.Draw(im).text((20 + 4 * k, 60), text, font=ImageFont.load_default(size=40), fill=(20, 20, 30))
        return np.asarray(im)

    ocr = RapidOCRBackend(engine="torch", device="cpu")
    sets = {"a": [frame("SUMMER SALE", k) for k in range(3)], "b": [frame("FREE GIFT", k) for k in range(3)]}
    plain = {k: [[x.text for x in ocr(f)] for f in v] for k, v in sets.items()}
    calls: list[int] = []
    eng = ocr._engine
    for part in ("det", "cls", "rec"):
        getattr(eng, f"text_{part}").session.module.register_forward_hook(lambda m, i, o: calls.append(1))
    start, b_done = threading.Barrier(2), threading.Event()
    got: dict[str, list] = {}
    ran_in_a_reads: list[int] = []

    def thread_a() -> None:
        start.wait()
        with ocr.prefetch(sets["a"]):
            b_done.wait(120)
            n = len(calls)
            got["a"] = [[x.text for x in ocr(f)] for f in sets["a"]]
            ran_in_a_reads.append(len(calls) - n)

    def thread_b() -> None:
        start.wait()
        try:
            with ocr.prefetch(sets["b"]):
                got["b"] = [[x.text for x in ocr(f)] for f in sets["b"]]
        finally:
            b_done.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert got == plain and ran_in_a_reads == [0] and not ocr._ahead
    assert "SUMMERSALE" in _norm(got["a"][0][0]) and "FREEGIFT" in _norm(got["b"][0][0])


def test_ocr_engine_choice(monkeypatch):
    from metrics.backends import BackendUnavailable
    from metrics.backends.ocr import RapidOCRBackend, ocr_engine

    monkeypatch.setenv("ADVFX_DEVICE", "cpu")
    monkeypatch.delenv("ADVFX_OCR_ENGINE", raising=False)
    assert ocr_engine() == "onnxruntime"       # on the CPU ONNX Runtime is the faster engine
    monkeypatch.setenv("ADVFX_DEVICE", "cuda")
    assert ocr_engine() == "torch"
    monkeypatch.setenv("ADVFX_OCR_ENGINE", "onnxruntime")
    assert ocr_engine() == "onnxruntime"
    monkeypatch.setenv("ADVFX_OCR_ENGINE", "tensorrt")
    with pytest.raises(BackendUnavailable, match="ADVFX_OCR_ENGINE"):
        ocr_engine()
    with pytest.raises(BackendUnavailable, match="OCR engine"):
        RapidOCRBackend(engine="tensorrt")


@pytest.mark.field
def test_ocr_real_chinese_posters(fieldmedia):
    ocr = get_ocr()
    cases = {"images_ad/ste_poster_test_1.png": ["贵一点", "顺丰包邮"],
             "images_ad/ste_poster_test_2.png": ["顺丰包邮"],
             "images_ad/ste_poster_train_5.png": ["降价了"]}
    images = [load_image(fieldmedia / p) for p in cases]
    results = ocr.many(images)
    for (path, wants), img, boxes in zip(cases.items(), images, results):
        text = "".join(b.text for b in boxes)
        for w in wants:
            assert w in text, f"{path}: {w!r} not in {text!r}"
        h, w_ = img.shape[:2]
        assert all(b.quad[:, 0].min() >= 0 and b.quad[:, 0].max() <= w_ for b in boxes)
        assert all(b.quad[:, 1].min() >= 0 and b.quad[:, 1].max() <= h for b in boxes)


def test_ocr_bad_inputs():
    from metrics.backends import as_rgb_uint8
    ocr = get_ocr()
    assert ocr(np.zeros((1, 1, 3), np.uint8)) == []
    assert ocr(np.full((200, 300, 3), 255, np.uint8)) == []
    rgb = _render("HELLO 123")
    gray = rgb[:, :, 0]
    assert "HELLO" in _norm("".join(b.text for b in ocr(gray)))
    # other layouts reach the model as the same RGB array
    ref = as_rgb_uint8(gray)
    np.testing.assert_array_equal(as_rgb_uint8(gray.astype(np.uint16) * 257), ref)
    np.testing.assert_array_equal(as_rgb_uint8(np.dstack([ref, np.full(gray.shape, 255, np.uint8)])), ref)
    np.testing.assert_array_equal(as_rgb_uint8(gray[:, :, None]), ref)
    np.testing.assert_array_equal(as_rgb_uint8(gray.astype(np.float32) / 255.0), ref)


def _save(im: Image.Image, path, **kw):
    im.save(path, **kw)
    return path


def test_every_backend_takes_any_image_mode(tmp_path):
    """1x1, grayscale, CMYK, 16-bit, palette, alpha and EXIF-rotated files decode (media.files.load_image)
    and pass through the classical embedder, the segmenter and OCR."""
    base = Image.fromarray(_render("OK 42", size=(160, 90), font_size=30))
    files = {
        "one.png": _save(Image.new("RGB", (1, 1), (10, 20, 30)), tmp_path / "one.png"),
        "gray.png": _save(base.convert("L"), tmp_path / "gray.png"),
        "cmyk.jpg": _save(base.convert("CMYK"), tmp_path / "cmyk.jpg"),
        "i16.png": _save(Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257),
                         tmp_path / "i16.png"),
        "pal.png": _save(base.convert("P", palette=Image.Palette.ADAPTIVE), tmp_path / "pal.png"),
        "rgba.png": _save(base.convert("RGBA"), tmp_path / "rgba.png"),
    }
    ex = base.getexif()
    ex[0x0112] = 6  # rotate 90 CW on display
    files["exif.jpg"] = _save(base, tmp_path / "exif.jpg", exif=ex.tobytes())
    emb, seg, ocr = get_embedder("classical"), get_segmenter("classical"), get_ocr()
    for name, p in files.items():
        img = load_image(p)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        v = emb.embed_images([img])
        assert v.shape == (1, emb.dim) and np.isfinite(v).all(), name
        m = seg.segment_image(img)
        assert m.shape == img.shape[:2] and m.dtype == bool, name
        ocr(img)
    assert load_image(files["exif.jpg"]).shape[:2] == (160, 90)  # rotated


def test_decompression_bomb_is_refused_before_backends(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(p)  # 144 Mpx, tiny file
    with pytest.raises(MediaError, match="bomb|Mpx"):
        load_image(p)


def test_huge_image_through_backends():
    big = np.zeros((4000, 6000, 3), np.uint8)
    big[1500:2500, 2500:3500] = (220, 40, 40)
    m = get_segmenter("classical").segment_image(big)
    assert m.shape == (4000, 6000) and m[2000, 3000] and not m[100, 100]
    assert get_embedder("classical").embed_images([big]).shape[0] == 1


def test_classical_embedder_is_deterministic_and_discriminative():
    emb = get_embedder("classical")
    assert emb.model_id == "classical-v1" and emb.name == "classical-v1"
    a, b = _render("SALE"), np.asarray(Image.new("RGB", (420, 120), (200, 30, 30)))
    va, vb, va2 = emb.embed_images([a, b, a])
    np.testing.assert_array_equal(va, va2)
    assert abs(np.linalg.norm(va) - 1) < 1e-5 and float(va @ vb) < 0.95


def test_segmenter_alpha_first():
    seg = get_segmenter("classical")
    img = np.zeros((50, 60, 4), np.uint8)
    img[10:30, 20:40] = (200, 100, 50, 255)
    m = seg.segment_image(img)
    assert m.sum() == 400 and m[15, 25]
    alpha = np.zeros((50, 60), np.uint8)
    alpha[0:5, 0:5] = 255
    assert seg.segment_image(img[:, :, :3], alpha=alpha).sum() == 25


@pytest.mark.field
def test_classical_fallback_iou_on_real_cutouts(fieldmedia):
    from metrics.backends.seg_eval import evaluate
    r = evaluate(get_segmenter("classical"), fieldmedia)
    assert r["n"] == 24
    assert r["mean_iou"] >= MEAN_IOU_FLOOR and r["median_iou"] >= MEDIAN_IOU_FLOOR, r


def test_classical_fallback_iou_on_demo_masks(demo_media):
    from metrics.backends.seg_eval import evaluate_demo_masks
    r = evaluate_demo_masks(get_segmenter("classical"), demo_media, limit=12)
    assert r["n"] >= 10 and r["mean_iou"] >= DEMO_MEAN_IOU_FLOOR, r


def test_classical_propagation_tracks_a_moving_product():
    from metrics.backends.segment import iou
    frames, masks = [], []
    for t in range(6):
        f = np.full((120, 160, 3), (235, 230, 220), np.uint8)
        m = np.zeros((120, 160), bool)
        x = 30 + 8 * t
        f[40:80, x:x + 40] = (30, 90, 200)
        f[50:60, x + 5:x + 35] = (250, 250, 250)
        m[40:80, x:x + 40] = True
        frames.append(f)
        masks.append(m)
    out = get_segmenter("classical").propagate(frames, masks[0])
    assert len(out) == 6 and all(iou(a, b) > 0.8 for a, b in zip(out, masks))
