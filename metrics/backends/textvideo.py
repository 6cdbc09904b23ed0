"""Text-video relevance.

`gme-qwen2-vl-2b`: GME (Alibaba-NLP/gme-Qwen2-VL-2B-Instruct, Qwen2-VL based) through transformers:
the last token's final hidden state, L2-normalized, for the query text and for each frame (image
with GME's instruction), cosine per frame. Folder: `<models>/gme/gme-Qwen2-VL-2B-Instruct/`.

`clip-ViT-L-14-cosine` (no GME weights): CLIP text-image cosine per frame. A different backend: its
numbers are not comparable with GME's; every stored result names its backend.
"""
from __future__ import annotations

import threading

import numpy as np

from ._common import BackendUnavailable, as_rgb_uint8, corrupt, models_dir, status_record, torch_device, torch_dtype

GME_DIR = "gme/gme-Qwen2-VL-2B-Instruct"
GME_IMAGE_INSTRUCTION = "Represent the given image."
GME_TEXT_INSTRUCTION = "Find an image that matches the given text."


class GMEScorer:
    name = "gme-qwen2-vl-2b"

    def __init__(self, device: str | None = None) -> None:
        d = models_dir() / GME_DIR
        if not (d / "config.json").exists():
            raise BackendUnavailable(f"GME: weights not found at {d} (transformers folder of "
                                     "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct); `python -m curation models download gme`")
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration
        self.device = device or torch_device()
        try:
            self.processor = AutoProcessor.from_pretrained(
                str(d), local_files_only=True, size={"shortest_edge": 256 * 28 * 28, "longest_edge": 1024 * 28 * 28})
            self.model = Qwen2VLForConditionalGeneration.from_pretrained(
                str(d), local_files_only=True, torch_dtype=torch_dtype(self.device)).to(self.device).eval()
        except Exception as exc:
            raise corrupt(d, exc) from None
        self.processor.tokenizer.padding_side = "right"
        self.version = f"transformers; {d.name}"
        self._lock = threading.Lock()

    def _embed(self, texts: list[str], images: list | None):
        import torch
        from PIL import Image
        kwargs = {"text": texts, "return_tensors": "pt", "padding": True}
        if images is not None:
            kwargs["images"] = [Image.fromarray(as_rgb_uint8(im)) for im in images]
        inputs = self.processor(**kwargs).to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs, output_hidden_states=True, return_dict=True)
        hs = out.hidden_states[-1]
        last = inputs["attention_mask"].sum(dim=1) - 1
        emb = hs[torch.arange(hs.shape[0], device=hs.device), last].float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    def _prompt(self, instruction: str, body: str) -> str:
        return (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n"
                "<|im_start|>assistant\n<|endoftext|>")

    def similarity(self, prompt: str, frames: list[np.ndarray]) -> np.ndarray:
        if not frames:
            return np.zeros((0,), np.float32)
        with self._lock:
            t = self._embed([self._prompt(GME_TEXT_INSTRUCTION, prompt)], None)[0]
            vis = "<|vision_start|><|image_pad|><|vision_end|>"
            fe = np.concatenate([self._embed([self._prompt(GME_IMAGE_INSTRUCTION, vis)], [f]) for f in frames])
        return (fe @ t).astype(np.float32)


class CLIPCosine:
    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.name = f"clip-{embedder.arch}-cosine"
        self.device = embedder.device
        self.version = embedder.model_id

    def similarity(self, prompt: str, frames: list[np.ndarray]) -> np.ndarray:
        if not frames:
            return np.zeros((0,), np.float32)
        t = self.embedder.embed_texts([prompt])[0]
        return (self.embedder.embed_images(list(frames)) @ t).astype(np.float32)


def build_text_video():
    try:
        return GMEScorer()
    except BackendUnavailable as gme_exc:
        from . import get_embedder
        try:
            return CLIPCosine(get_embedder("clip", "ViT-L-14"))
        except BackendUnavailable as clip_exc:
            raise BackendUnavailable(f"text-video relevance needs GME or CLIP ViT-L-14: {gme_exc}; {clip_exc}") from None


def text_video_status() -> dict:
    root = models_dir()
    d = root / GME_DIR
    if (d / "config.json").exists():
        return status_record("text_video", "relevance", available=True, name="gme-qwen2-vl-2b", weights=str(d),
                             source="local folder", device=torch_device(), version="transformers")
    from .embed import clip_weight_candidates
    clip = next((root / c for c in clip_weight_candidates("ViT-L-14") if (root / c).exists()), None)
    return status_record("text_video", "relevance", available=clip is not None,
                         name="clip-ViT-L-14-cosine" if clip else "gme-qwen2-vl-2b",
                         weights=str(clip) if clip else str(d), source="local file" if clip else None,
                         device=torch_device(), version=None,
                         reason=(f"GME not found at {d}; using CLIP ViT-L-14 cosine (not comparable with GME)"
                                 if clip else f"neither GME ({d}) nor CLIP ViT-L-14 "
                                              f"({root / 'clip/ViT-L-14.safetensors'}) weights are present"))
