"""Text-video relevance for GmeScore, configured as OpenS2V-Eval's `eval/get_gmescore.py` computes it.

`gme-qwen2-vl-7b` (the default, OpenS2V's model; `gme-qwen2-vl-2b` when only the 2B folder is present, named as
such): GME through transformers, as the GME wrapper (`gme_inference.GmeQwen2VL`) embeds: the prompt as a query
with the instruction "Find an image that matches the given text."; each frame as the corpus (`is_query=False`,
the wrapper's default instruction "You are a helpful assistant.") at the wrapper's default resolution (256 to
1,280 image tokens of 28 x 28 px, from the decoded frame, not a downscale of it); at most 1,800 tokens; the last
token's final hidden state, L2-normalised; cosine per frame. Folders: `<models>/gme/gme-Qwen2-VL-7B-Instruct/`,
`<models>/gme/gme-Qwen2-VL-2B-Instruct/`.

Without GME there is no GmeScore: the CLIP text-image cosine measures something else on another scale, so it is
not offered under this name. `CLIPCosine` is that cosine under its own name: CLIPScore's backend
(`get_text_image()`; metrics/clipscore.py, not one of the paper's six metrics).
"""
from __future__ import annotations

import threading

import numpy as np

from ._common import (BackendUnavailable, as_rgb_uint8, corrupt, models_dir, sha8, status_record, torch_device,
                      torch_dtype)

# (backend name, folder under the models folder), in order of preference: OpenS2V uses the 7B model
GME_VARIANTS = (("gme-qwen2-vl-7b", "gme/gme-Qwen2-VL-7B-Instruct"),
                ("gme-qwen2-vl-2b", "gme/gme-Qwen2-VL-2B-Instruct"))
GME_DIR = GME_VARIANTS[0][1]
GME_QUERY_INSTRUCTION = "Find an image that matches the given text."
GME_DEFAULT_INSTRUCTION = "You are a helpful assistant."     # the wrapper's, used for every corpus item
GME_MIN_IMAGE_TOKENS, GME_MAX_IMAGE_TOKENS, GME_MAX_LENGTH = 256, 1280, 1800


def _present_variant() -> tuple[str, "object"] | None:
    root = models_dir()
    for name, rel in GME_VARIANTS:
        if (root / rel / "config.json").exists():
            return name, root / rel
    return None


class GMEScorer:
    def __init__(self, device: str | None = None) -> None:
        found = _present_variant()
        if found is None:
            where = " or ".join(str(models_dir() / rel) for _, rel in GME_VARIANTS)
            raise BackendUnavailable(f"GME: weights not found at {where} (transformers folder of "
                                     "Alibaba-NLP/gme-Qwen2-VL-7B-Instruct, or the 2B model); "
                                     "`python -m curation models download gme`")
        self.name, d = found
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration
        self.device = device or torch_device()
        try:
            self.processor = AutoProcessor.from_pretrained(
                str(d), local_files_only=True, size={"shortest_edge": GME_MIN_IMAGE_TOKENS * 28 * 28,
                                                     "longest_edge": GME_MAX_IMAGE_TOKENS * 28 * 28})
            self.model = Qwen2VLForConditionalGeneration.from_pretrained(
                str(d), local_files_only=True, torch_dtype=torch_dtype(self.device)).to(self.device).eval()
        except Exception as exc:
            raise corrupt(d, exc) from None
        self.processor.tokenizer.padding_side = "right"
        self.version = (f"transformers; {d.name}; query/corpus instructions as OpenS2V; "
                        f"{GME_MIN_IMAGE_TOKENS}-{GME_MAX_IMAGE_TOKENS} image tokens")
        # as an image embedder (ProductScore's crops, as NexusScore's): the folder and its config name it
        self.model_id = f"transformers:{d.name}:{sha8(d / 'config.json')}"
        cfg = self.model.config
        self.dim = int(getattr(cfg, "hidden_size", None) or cfg.text_config.hidden_size)
        self._lock = threading.Lock()

    def _embed(self, texts: list[str], images: list | None):
        import torch
        from PIL import Image
        kwargs = {"text": texts, "return_tensors": "pt", "padding": True, "truncation": True,
                  "max_length": GME_MAX_LENGTH}
        if images is not None:
            kwargs["images"] = [Image.fromarray(as_rgb_uint8(im)) for im in images]
        inputs = self.processor(**kwargs).to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs, output_hidden_states=True, return_dict=True)
        hs = out.hidden_states[-1]
        last = inputs["attention_mask"].sum(dim=1) - 1
        emb = hs[torch.arange(hs.shape[0], device=hs.device), last].float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    @staticmethod
    def _prompt(instruction: str, body: str) -> str:
        return (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n"
                "<|im_start|>assistant\n<|endoftext|>")

    def embed_images(self, images: list[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """L2-normalised image embeddings as OpenS2V's NexusScore takes them for its reference and detected
        crops (the wrapper's `get_image_embeddings(is_query=False)`: each image a corpus item under the default
        instruction), one image per forward pass as `similarity` embeds frames."""
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), np.float32)
        vis = "<|vision_start|><|image_pad|><|vision_end|>"
        with self._lock:
            return np.concatenate([self._embed([self._prompt(GME_DEFAULT_INSTRUCTION, vis)], [im])
                                   for im in images]).astype(np.float32)

    def similarity(self, prompt: str, frames: list[np.ndarray]) -> np.ndarray:
        if not frames:
            return np.zeros((0,), np.float32)
        with self._lock:
            t = self._embed([self._prompt(GME_QUERY_INSTRUCTION, prompt)], None)[0]
            vis = "<|vision_start|><|image_pad|><|vision_end|>"
            fe = np.concatenate([self._embed([self._prompt(GME_DEFAULT_INSTRUCTION, vis)], [f]) for f in frames])
        return (fe @ t).astype(np.float32)


class CLIPCosine:
    """Prompt-image cosine on a CLIP embedder's text and image towers (both L2-normalised); the embedder
    knows its own preprocessing. `clip-<arch>-cosine`: CLIPScore, never GmeScore."""

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
    """GME, or BackendUnavailable: GmeScore is never computed by another model."""
    return GMEScorer()


def text_video_status() -> dict:
    found = _present_variant()
    if found:
        return status_record("text_video", "relevance", available=True, name=found[0], weights=str(found[1]),
                             source="local folder", device=torch_device(), version="transformers")
    d = models_dir() / GME_DIR
    return status_record("text_video", "relevance", available=False, name=GME_VARIANTS[0][0], weights=str(d),
                         source=None, device=torch_device(), version=None,
                         reason=f"GME not found at {d} (or the 2B folder): GmeScore is unavailable")
