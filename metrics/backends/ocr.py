"""OCR: PaddleOCR's PP-OCR detection + recognition models as shipped inside the `rapidocr` wheel
(ONNX Runtime, Chinese and English, offline). `paddleocr` is used instead only when asked for
(ADVFX_OCR=paddleocr) and its models are present locally under <models>/paddleocr/."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import BackendUnavailable, as_rgb_uint8, models_dir, status_record


def _ocr_threads() -> int:
    """ONNX Runtime threads for OCR: ADVFX_OCR_THREADS, else OMP_NUM_THREADS (the scoring executor sets it
    per worker), else 0 (ONNX Runtime's default: all physical cores)."""
    for var in ("ADVFX_OCR_THREADS", "OMP_NUM_THREADS"):
        try:
            n = int(os.environ.get(var, "") or 0)
        except ValueError:
            continue
        if n > 0:
            return n
    return 0


@dataclass(frozen=True)
class OCRBox:
    quad: np.ndarray  # (4, 2) float32 pixel coordinates, clockwise from top-left
    text: str
    conf: float

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x0, y0, x1, y1)."""
        return (float(self.quad[:, 0].min()), float(self.quad[:, 1].min()),
                float(self.quad[:, 0].max()), float(self.quad[:, 1].max()))

    @property
    def area(self) -> float:
        x, y = self.quad[:, 0], self.quad[:, 1]
        return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2.0)


def order_quad(quad: np.ndarray) -> np.ndarray:
    """Four points ordered clockwise (in image coordinates, y down) starting at the top-left."""
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    c = q.mean(axis=0)
    ang = np.arctan2(q[:, 1] - c[1], q[:, 0] - c[0])  # y down: increasing angle is clockwise on screen
    q = q[np.argsort(ang)]
    start = int(np.argmin(q[:, 0] + q[:, 1]))
    return np.ascontiguousarray(np.roll(q, -start, axis=0))


def _rapidocr_version() -> str:
    try:
        from importlib.metadata import version
        return version("rapidocr")
    except Exception:
        return "?"


def _rapidocr_root() -> Path:
    import rapidocr
    return Path(rapidocr.__file__).parent / "models"


class RapidOCRBackend:
    """`rapidocr-ppocr`: PP-OCR det+cls+rec ONNX models from the rapidocr wheel."""

    name = "rapidocr-ppocr"
    MIN_SIDE = 8  # below this nothing is legible; return [] rather than feed the detector

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except Exception as exc:
            raise BackendUnavailable(f"OCR: the rapidocr package cannot be imported ({exc}); "
                                     "install it with `pip install rapidocr onnxruntime`") from None
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        params: dict = {"Global.log_level": "warning"}
        threads = _ocr_threads()
        if threads:
            # ONNX Runtime otherwise takes every core in each process: N scoring workers on one machine
            # would each run N-core-wide thread pools and oversubscribe the CPU (seen: load 38 on 16 cores)
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
            params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        try:
            self._engine = RapidOCR(params=params)
        except TypeError:
            self._engine = RapidOCR()
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        self._lock = threading.Lock()  # one ONNX session set; calls are serialized
        self.models = sorted(p.name for p in _rapidocr_root().glob("*.onnx"))
        self.version = f"rapidocr {_rapidocr_version()}; " + ", ".join(self.models)
        self.device = "cpu"

    def __call__(self, image: np.ndarray) -> list[OCRBox]:
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        if min(h, w) < self.MIN_SIDE:
            return []
        bgr = np.ascontiguousarray(img[:, :, ::-1])  # rapidocr treats arrays as OpenCV (BGR) images
        with self._lock:
            res = self._engine(bgr)
        boxes = getattr(res, "boxes", None)
        if boxes is None or len(boxes) == 0:
            return []
        out = []
        for quad, txt, sc in zip(boxes, res.txts or (), res.scores or ()):
            q = order_quad(quad)
            q[:, 0] = np.clip(q[:, 0], 0, w)
            q[:, 1] = np.clip(q[:, 1], 0, h)
            out.append(OCRBox(quad=q, text=str(txt), conf=float(sc)))
        return out

    def many(self, images: list[np.ndarray]) -> list[list[OCRBox]]:
        return [self(im) for im in images]


class PaddleOCRBackend:
    """`paddleocr-ppocr`: the paddleocr package with its models under <models>/paddleocr/{det,rec,cls}."""

    name = "paddleocr-ppocr"

    def __init__(self) -> None:
        root = models_dir() / "paddleocr"
        det, rec = root / "det", root / "rec"
        if not (det.is_dir() and rec.is_dir()):
            raise BackendUnavailable(f"paddleocr: models not found under {root} (needs det/ and rec/ "
                                     "inference-model folders); the default rapidocr backend needs none")
        try:
            import paddleocr
            from paddleocr import PaddleOCR
        except Exception as exc:
            raise BackendUnavailable(f"paddleocr: package cannot be imported ({exc})") from None
        self._engine = PaddleOCR(text_detection_model_dir=str(det), text_recognition_model_dir=str(rec))
        self._lock = threading.Lock()
        self.version = f"paddleocr {getattr(paddleocr, '__version__', '?')}"
        self.device = "cpu"

    def __call__(self, image: np.ndarray) -> list[OCRBox]:
        img = as_rgb_uint8(image)
        with self._lock:
            res = self._engine.predict(np.ascontiguousarray(img[:, :, ::-1]))
        out = []
        for page in res or []:
            for quad, txt, sc in zip(page.get("rec_polys", []), page.get("rec_texts", []), page.get("rec_scores", [])):
                out.append(OCRBox(quad=order_quad(quad), text=str(txt), conf=float(sc)))
        return out

    def many(self, images: list[np.ndarray]) -> list[list[OCRBox]]:
        return [self(im) for im in images]


def build_ocr():
    if os.environ.get("ADVFX_OCR", "").lower() == "paddleocr":
        return PaddleOCRBackend()
    return RapidOCRBackend()


def ocr_status() -> dict:
    try:
        root = _rapidocr_root()
        files = sorted(root.glob("*.onnx"))
        ok = any("det" in f.name for f in files) and any("rec" in f.name for f in files)
        return status_record("ocr", "ocr", available=ok, name=RapidOCRBackend.name, weights=str(root),
                             source="bundled in the rapidocr wheel (PaddleOCR PP-OCR ONNX)", device="cpu",
                             version=f"rapidocr {_rapidocr_version()}: "
                                     + ", ".join(f.name for f in files),
                             reason=None if ok else f"no PP-OCR det/rec ONNX models in {root}")
    except Exception as exc:
        return status_record("ocr", "ocr", available=False, name=RapidOCRBackend.name,
                             reason=f"rapidocr cannot be imported: {exc}")
