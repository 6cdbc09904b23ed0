"""Shared machinery of the backends: the models folder, devices, weight-file checks, batching with
GPU out-of-memory retry, and turning any image array into uint8 RGB."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

DEFAULT_MODELS_DIR = "~/.cache/advfx/models"
DOWNLOAD_HINT = "python -m curation models download"

_models_dir_override: Path | None = None
_lock = threading.RLock()
_cache: dict[tuple, Any] = {}
_key_locks: dict[tuple, threading.Lock] = {}

T = TypeVar("T")


class BackendUnavailable(Exception):
    """A backend cannot run here. str(exc) is the human reason: what is missing, where, how to get it."""


def set_models_dir(path: str | Path | None) -> None:
    """Override the models folder for this process (the CLI's --models-dir). None restores the default."""
    global _models_dir_override
    _models_dir_override = Path(path).expanduser().resolve() if path else None
    clear_cache()


def models_dir() -> Path:
    """The models folder: --models-dir, else $ADVFX_MODELS, else ~/.cache/advfx/models."""
    if _models_dir_override is not None:
        return _models_dir_override
    env = os.environ.get("ADVFX_MODELS")
    return Path(env or DEFAULT_MODELS_DIR).expanduser().resolve()


def clear_cache() -> None:
    """Forget every loaded model (tests switch models folders; the app never needs this)."""
    with _lock:
        _cache.clear()


def cached(key: tuple, build: Callable[[], T], *, per_models_dir: bool = True) -> T:
    """One instance per key per process. The models folder is part of the key unless the backend
    does not read it (the OCR bundled in its wheel)."""
    key = ((str(models_dir()),) if per_models_dir else ("*",)) + key
    with _lock:
        if key in _cache:
            return _cache[key]
        klock = _key_locks.setdefault(key, threading.Lock())
    with klock:  # one build per key; other backends load in parallel
        with _lock:
            if key in _cache:
                return _cache[key]
        obj = build()
        with _lock:
            _cache[key] = obj
        return obj


def torch_device() -> str:
    """'cuda' when a GPU is usable (unless $ADVFX_DEVICE says otherwise), else 'cpu'."""
    forced = os.environ.get("ADVFX_DEVICE")
    if forced:
        return forced
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # torch missing or broken: the classical backends still work
        return "cpu"


def torch_dtype(device: str):
    import torch
    return torch.float16 if str(device).startswith("cuda") else torch.float32


def find_weights(rel_candidates: Sequence[str], what: str) -> Path:
    """The first existing file among models_dir()/candidate, else BackendUnavailable naming the paths."""
    root = models_dir()
    for rel in rel_candidates:
        p = root / rel
        if p.exists():
            check_weight_file(p)
            return p
    paths = ", ".join(str(root / r) for r in rel_candidates)
    raise BackendUnavailable(f"{what}: weights not found (looked for {paths}); get them with `{DOWNLOAD_HINT}` "
                             f"or copy the file there (models folder: $ADVFX_MODELS or --models-dir)")


def check_weight_file(p: Path) -> None:
    if p.is_dir():
        return
    if p.stat().st_size == 0:
        raise BackendUnavailable(f"weight file {p} is empty (0 bytes): delete it and run `{DOWNLOAD_HINT}`")


def corrupt(p: Path, exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(f"weight file {p} cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}); it is "
                              f"corrupt or not the expected checkpoint: delete it and run `{DOWNLOAD_HINT}`")


def file_sha256(p: Path) -> str:
    """SHA-256 of a weights file, remembered in a sidecar `<file>.sha256.json` keyed by size and mtime."""
    p = Path(p)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.endswith(".sha256.json")):
            h.update(f.relative_to(p).as_posix().encode())
            h.update(file_sha256(f).encode())
        return h.hexdigest()
    st = p.stat()
    side = p.with_name(p.name + ".sha256.json")
    try:
        rec = json.loads(side.read_text())
        if rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
            return rec["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    digest = h.hexdigest()
    try:
        side.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}))
    except OSError:
        pass  # read-only models folder: recompute next time
    return digest


def sha8(p: Path) -> str:
    return file_sha256(p)[:8]


def is_oom(exc: BaseException) -> bool:
    try:
        import torch
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except Exception:
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def in_batches(fn: Callable[[list], None], items: Sequence, batch_size: int, *, min_batch: int = 1,
               on_oom: Callable[[int], None] | None = None) -> None:
    """fn on consecutive chunks of items, `batch_size` at a time. On GPU out-of-memory, empty the cache, halve
    the batch and retry the same items; below min_batch the error is raised. `fn` must keep its side effects
    until its GPU work has succeeded (a chunk that ran out of memory is run again)."""
    items = list(items)
    i, bs = 0, max(1, int(batch_size))
    while i < len(items):
        chunk = items[i:i + bs]
        try:
            fn(chunk)
        except Exception as exc:
            if not is_oom(exc) or bs <= min_batch:
                raise
            _empty_cuda_cache()
            bs = max(min_batch, bs // 2)
            if on_oom:
                on_oom(bs)
            continue
        i += len(chunk)


def run_batched(fn: Callable[[list], np.ndarray], items: Sequence, batch_size: int, *,
                min_batch: int = 1, on_oom: Callable[[int], None] | None = None) -> np.ndarray:
    """fn over items in batches (`in_batches`: halved on GPU out-of-memory), concatenated."""
    out: list[np.ndarray] = []
    in_batches(lambda chunk: out.append(np.asarray(fn(chunk))), items, batch_size, min_batch=min_batch,
               on_oom=on_oom)
    if not out:
        return np.zeros((0,), np.float32)
    return np.concatenate(out, axis=0)


def _empty_cuda_cache() -> None:
    try:
        import torch
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def as_rgb_uint8(image: Any) -> np.ndarray:
    """Any image array (HxW gray, HxWx1/2/3/4, uint8/uint16/float, PIL image) as uint8 RGB HxWx3.
    Alpha is dropped here (segmenters take it separately). Raises ValueError for non-images."""
    try:
        from PIL import Image
        if isinstance(image, Image.Image):
            from PIL import ImageOps
            im = ImageOps.exif_transpose(image)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                image = np.asarray(im, dtype=np.float64)
            else:
                return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except ImportError:
        pass
    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"not an image array: shape {a.shape}")
    if a.dtype != np.uint8:
        if a.dtype == np.bool_:
            a = a.astype(np.uint8) * 255
        elif np.issubdtype(a.dtype, np.floating):
            hi = float(np.nanmax(a)) if a.size else 1.0
            scale = 255.0 if hi <= 1.0 + 1e-6 else (255.0 / 65535.0 if hi > 255 else 1.0)
            a = np.clip(np.nan_to_num(a) * scale, 0, 255).astype(np.uint8)
        else:
            hi = int(a.max()) if a.size else 0
            a = (np.clip(a, 0, None) >> 8).astype(np.uint8) if hi > 255 else a.astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 2:
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif a.shape[2] >= 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def alpha_of(image: Any) -> np.ndarray | None:
    """The alpha channel (uint8 HxW) of an RGBA/LA array, else None."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (2, 4):
        al = a[:, :, -1]
        if al.dtype != np.uint8:
            al = (al.astype(np.float64) / (65535.0 if al.max() > 255 else 255.0) * 255).astype(np.uint8)
        return al
    return None


def status_record(backend: str, kind: str, *, available: bool, name: str, weights: str | None = None,
                  source: str | None = None, device: str | None = None, version: str | None = None,
                  reason: str | None = None, **extra: Any) -> dict[str, Any]:
    rec = {"backend": backend, "kind": kind, "available": available, "name": name, "weights": weights,
           "source": source, "device": device, "version": version, "reason": reason}
    rec.update(extra)
    return rec


def threads_from_env(first: str) -> int:
    """ONNX Runtime threads for one family of models: `first` (e.g. ADVFX_OCR_THREADS), else OMP_NUM_THREADS
    (the scoring executor sets it per worker), else 0 (ONNX Runtime's default: all physical cores)."""
    for var in (first, "OMP_NUM_THREADS"):
        try:
            n = int(os.environ.get(var, "") or 0)
        except ValueError:
            continue
        if n > 0:
            return n
    return 0
