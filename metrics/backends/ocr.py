"""OCR: PaddleOCR's PP-OCR detection + recognition models as shipped inside the `rapidocr` wheel
(Chinese and English, offline). `paddleocr` is used instead only when asked for (ADVFX_OCR=paddleocr)
and its models are present locally under <models>/paddleocr/.

Engines for the same ONNX graphs: ONNX Runtime on the CPU (`onnxruntime`), or, on a GPU machine, the
graphs converted to PyTorch modules by onnx2torch (`torch`). The onnxruntime-gpu wheel is the other way
to a GPU, but it is a 256 MB download that must match the machine's CUDA; torch is already there for
the other models. Both engines share rapidocr's pre- and post-processing, and the converted graphs give
the ONNX Runtime outputs to ~1e-5 (tested), so the text is the same. $ADVFX_OCR_ENGINE picks
`onnxruntime` or `torch`; the default is torch where CUDA is usable, else ONNX Runtime (faster on CPUs)."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import BackendUnavailable, as_rgb_uint8, models_dir, status_record, threads_from_env, torch_device
from .fx_host import shapes_on_host


def _ocr_threads() -> int:
    return threads_from_env("ADVFX_OCR_THREADS")


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


def ocr_engine() -> str:
    """`torch` or `onnxruntime`: $ADVFX_OCR_ENGINE, else torch when a CUDA device is usable."""
    forced = os.environ.get("ADVFX_OCR_ENGINE", "").lower()
    if forced in ("torch", "onnxruntime"):
        return forced
    if forced:
        raise BackendUnavailable(f"ADVFX_OCR_ENGINE={forced!r}: use 'torch' or 'onnxruntime'")
    return "torch" if torch_device().startswith("cuda") else "onnxruntime"


def onnx_for_torch(path: Path):
    """The ONNX graph at `path`, rewritten into the subset onnx2torch converts: PaddlePaddle's exporter
    writes stride-1 `auto_pad=SAME_UPPER` convolutions and pools (made explicit pads here, which is what
    SAME_UPPER means at stride 1) and, in the angle classifier, weights as Constant nodes (made
    initializers). The graph computes the same function."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    nodes = []
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and len(node.output) == 1 and "value" in attrs:
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(attrs["value"].t),
                                                             node.output[0]))
            continue
        pad = attrs.get("auto_pad")
        if pad is not None and pad.s in (b"SAME_UPPER", b"SAME_LOWER"):
            kernel = list(attrs["kernel_shape"].ints)
            strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * len(kernel)
            if any(s != 1 for s in strides):
                raise BackendUnavailable(f"OCR torch engine: {path.name}: {node.name} pads SAME at stride "
                                         f"{strides}, which needs the input size; use ADVFX_OCR_ENGINE=onnxruntime")
            small = [(k - 1) // 2 for k in kernel]
            big = [(k - 1) - (k - 1) // 2 for k in kernel]
            begin, end = (small, big) if pad.s == b"SAME_UPPER" else (big, small)
            node.attribute.remove(pad)
            node.attribute.append(helper.make_attribute("pads", begin + end))
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


class _Uint8Batch:
    """A resized uint8 NHWC batch plus the normalisation (NCHW mean and std tensors) the session applies
    on its device."""

    def __init__(self, pixels: np.ndarray, mean, std) -> None:
        self.pixels, self.mean, self.std = np.ascontiguousarray(pixels), mean, std


class _DeviceDetPreprocess:
    """rapidocr's detector pre-processing (its resize to a multiple of 32) that leaves normalisation to
    the torch session."""

    def __init__(self, base) -> None:
        import torch

        self.base = base
        self.mean = torch.tensor(np.asarray(base.mean, np.float32))[None, :, None, None]
        self.std = torch.tensor(np.asarray(base.std, np.float32))[None, :, None, None]

    def __call__(self, img: np.ndarray) -> "_Uint8Batch | None":
        resized = self.base.resize(img)
        return None if resized is None else _Uint8Batch(resized[None], self.mean, self.std)


class TorchSession:
    """One PP-OCR graph as a PyTorch module on `device`, in place of rapidocr's ONNX Runtime session
    (same call: a float32 NCHW batch in, or the detector's uint8 batch, the first output out). Metadata
    such as the recogniser's character list still comes from the ONNX session it replaces."""

    def __init__(self, ort_session, path: Path, device: str) -> None:
        import warnings

        import torch
        from onnx2torch import convert

        # onnx2torch's Slice indexes with a list; torch warns that a future release may read that as a
        # tensor index. The equality test against ONNX Runtime (tests/backends) would catch that change.
        warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing",
                                category=UserWarning, module=r"onnx2torch\.")
        self._meta = ort_session
        self.device = torch.device(device)
        # the graphs' shape arithmetic on the host, once per input shape (fx_host): on a GPU it was a device
        # sync per reshape, stalling the thread while the GPU caught up
        # and each recurring input shape replayed as a CUDA graph (fx_host.CudaGraphs)
        self.module, self.host_nodes = shapes_on_host(convert(onnx_for_torch(path)).eval().to(self.device),
                                                      self.device, what=f"PP-OCR {Path(path).name}",
                                                      cuda_graphs=True)

    def __call__(self, batch: "np.ndarray | _Uint8Batch") -> np.ndarray:
        import torch

        with torch.inference_mode():
            if isinstance(batch, _Uint8Batch):
                # the detector's normalisation, on the device: rapidocr's runs in float64 on the CPU and
                # cost more than the network itself on a GPU
                x = torch.from_numpy(batch.pixels).to(self.device, non_blocking=True)
                x = x.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
                x = (x - batch.mean.to(self.device)) / batch.std.to(self.device)
            else:
                x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device, non_blocking=True)
            y = self.module(x)
            y = y[0] if isinstance(y, (list, tuple)) else y
            return y.float().cpu().numpy()

    def have_key(self, key: str = "character") -> bool:
        return self._meta.have_key(key)

    def get_character_list(self, key: str = "character") -> list[str]:
        return self._meta.get_character_list(key)


class RapidOCRBackend:
    """`rapidocr-ppocr`: PP-OCR det+cls+rec ONNX models from the rapidocr wheel, run by ONNX Runtime or,
    converted, by PyTorch (`engine`, default `ocr_engine()`; `device` for the torch engine, default the
    best one)."""

    name = "rapidocr-ppocr"
    MIN_SIDE = 8  # below this nothing is legible; return [] rather than feed the detector

    def __init__(self, engine: str | None = None, device: str | None = None) -> None:
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
        self._lock = threading.Lock()  # one session set; calls are serialized
        self._ahead: dict[int, tuple] = {}  # prefetched results: id(image) -> (image, [OCRBox])
        self.models = sorted(p.name for p in _rapidocr_root().glob("*.onnx"))
        self.engine = engine or ocr_engine()
        self.device = "cpu"
        if self.engine == "torch":
            self.device = device or torch_device()
            self._to_torch()
        elif self.engine != "onnxruntime":
            raise BackendUnavailable(f"OCR engine {self.engine!r}: use 'torch' or 'onnxruntime'")
        # the engine is not in the version: both give the same text, so cached TSScores stay valid
        self.version = f"rapidocr {_rapidocr_version()}; " + ", ".join(self.models)

    def _to_torch(self) -> None:
        """Load det, cls and rec the normal way (configs, character list), then swap each ONNX Runtime
        session for its converted module."""
        try:
            import onnx2torch  # noqa: F401
        except Exception as exc:
            raise BackendUnavailable(f"OCR torch engine: onnx2torch cannot be imported ({exc}); install it "
                                     "with `pip install onnx2torch`, or use ADVFX_OCR_ENGINE=onnxruntime") from None
        eng = self._engine
        for load, key in ((eng._load_det_model, "det"), (eng._load_cls_model, "cls"), (eng._load_rec_model, "rec")):
            part = load()
            path = self._model_file(part.session, key)
            try:
                part.session = TorchSession(part.session, path, self.device)
                if key == "det":
                    part.get_preprocess = lambda make=part.get_preprocess: _DeviceDetPreprocess(make())
            except BackendUnavailable:
                raise
            except Exception as exc:
                raise BackendUnavailable(f"OCR torch engine: {path.name} could not be converted or moved to "
                                         f"{self.device} ({exc}); use ADVFX_OCR_ENGINE=onnxruntime") from None

    @property
    def batched(self) -> bool:
        """Whether `prefetch` pays: the torch engine on a GPU, where a network call costs its kernel
        launches more than its arithmetic (`ocr_batch`)."""
        return self.engine == "torch" and str(self.device).startswith("cuda")

    @contextlib.contextmanager
    def prefetch(self, images: list[np.ndarray], batch: int = 8):
        """OCR `images` now, all together (`ocr_batch`: each network called once for all of them, not once
        per image). Inside the block, a call on one of these image objects returns its result from there:
        the result that call would compute itself. Only the torch engine batches; elsewhere this does
        nothing."""
        mine: list[int] = []
        if self.engine == "torch" and images:
            from .ocr_batch import ocr_batched

            todo = [(img, bgr) for img in images if (bgr := self._bgr(img)) is not None]
            # Not under the backend's lock: the converted networks are safe to call from several threads, and
            # so are rapidocr's pre- and post-processing steps as ocr_batch calls them. Held for the whole
            # batch, the lock made each scoring thread's OCR, and its reads of results already fetched, wait
            # for every other thread's batch.
            results = ocr_batched(self._engine, [bgr for _, bgr in todo], det_batch=batch)
            with self._lock:
                for (img, bgr), res in zip(todo, results):
                    # keyed by the caller's object (kept alive here, so its id stays its own)
                    self._ahead[id(img)] = (img, self._boxes(res, *bgr.shape[:2]))
                    mine.append(id(img))
        try:
            yield self
        finally:
            with self._lock:
                # only this block's results: another thread's block may still be reading its own
                for key in mine:
                    self._ahead.pop(key, None)

    def _bgr(self, image: np.ndarray) -> np.ndarray | None:
        """The array rapidocr is given for `image` (it treats arrays as OpenCV BGR images); None when the
        image is too small to hold legible text."""
        import cv2

        img = as_rgb_uint8(image)
        if min(img.shape[:2]) < self.MIN_SIDE:
            return None
        return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)     # a contiguous copy, 5x faster than numpy's

    @staticmethod
    def _model_file(session, key: str) -> Path:
        """The ONNX file a pipeline part ('det', 'cls', 'rec') loaded: its ONNX Runtime session's path,
        else the one bundled file of that part."""
        named = getattr(getattr(session, "session", None), "_model_path", None)
        if named:
            return Path(named)
        found = [p for p in sorted(_rapidocr_root().glob("*.onnx")) if f"_{key}_" in p.name]
        if len(found) != 1:
            raise BackendUnavailable(f"OCR torch engine: expected one {key} model in {_rapidocr_root()}, "
                                     f"found {[p.name for p in found]}")
        return found[0]

    def __call__(self, image: np.ndarray) -> list[OCRBox]:
        with self._lock:
            ahead = self._ahead.pop(id(image), None) if self._ahead else None
        if ahead is not None and ahead[0] is image:
            return list(ahead[1])
        bgr = self._bgr(image)
        if bgr is None:
            return []
        with self._lock:
            res = self._engine(bgr)
        return self._boxes(res, *bgr.shape[:2])

    @staticmethod
    def _boxes(res, h: int, w: int) -> list[OCRBox]:
        """rapidocr's output as OCRBoxes: quads ordered clockwise from the top-left, inside the image."""
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
        if not self.batched:
            return [self(im) for im in images]
        with self.prefetch(images):
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


def _status_device() -> str:
    try:
        engine = ocr_engine()
    except BackendUnavailable:
        return "cpu"
    return f"{torch_device()} (torch engine)" if engine == "torch" else "cpu (onnxruntime)"


def ocr_status() -> dict:
    try:
        root = _rapidocr_root()
        files = sorted(root.glob("*.onnx"))
        ok = any("det" in f.name for f in files) and any("rec" in f.name for f in files)
        return status_record("ocr", "ocr", available=ok, name=RapidOCRBackend.name, weights=str(root),
                             source="bundled in the rapidocr wheel (PaddleOCR PP-OCR ONNX)",
                             device=_status_device(),
                             version=f"rapidocr {_rapidocr_version()}: "
                                     + ", ".join(f.name for f in files),
                             reason=None if ok else f"no PP-OCR det/rec ONNX models in {root}")
    except Exception as exc:
        return status_record("ocr", "ocr", available=False, name=RapidOCRBackend.name,
                             reason=f"rapidocr cannot be imported: {exc}")
