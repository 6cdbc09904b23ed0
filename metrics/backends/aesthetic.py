"""The LAION aesthetic predictors on L2-normalized CLIP image embeddings.

Default: the "improved aesthetic predictor" MLP (`sac+logos+ava1-l14-linearMSE.pth`, CLIP ViT-L/14,
768 -> 1024 -> 128 -> 64 -> 16 -> 1, dropout between, no activations; keys prefixed `layers.`).
Also the v1 linear heads `sa_0_4_vit_{b_32,b_16,l_14}_linear.pth` (512/768 -> 1, keys weight/bias).
Files live in `<models>/aesthetic/`.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ._common import BackendUnavailable, corrupt, find_weights, models_dir, sha8, status_record, torch_device

HEADS = {  # head name -> (file, CLIP arch, dim, kind)
    "improved-l14": ("sac+logos+ava1-l14-linearMSE.pth", "ViT-L-14", 768, "mlp"),
    "v1-l14": ("sa_0_4_vit_l_14_linear.pth", "ViT-L-14", 768, "linear"),
    "v1-b32": ("sa_0_4_vit_b_32_linear.pth", "ViT-B-32", 512, "linear"),
    "v1-b16": ("sa_0_4_vit_b_16_linear.pth", "ViT-B-16", 512, "linear"),
}


def build_head(kind: str, dim: int):
    import torch.nn as nn
    if kind == "linear":
        return nn.Linear(dim, 1)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

        def forward(self, x):
            return self.layers(x)
    return MLP()


def load_head(path: Path, kind: str, dim: int):
    import torch
    head = build_head(kind, dim)
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd:
            sd = sd["state_dict"]
        head.load_state_dict(sd)
    except Exception as exc:
        raise corrupt(path, exc) from None
    return head.eval()


class AestheticScorer:
    def __init__(self, head: str = "improved-l14", embedder=None) -> None:
        import torch
        fname, arch, dim, kind = HEADS[head]
        self.head_path = find_weights([f"aesthetic/{fname}"], f"aesthetic head {head}")
        self.head = load_head(self.head_path, kind, dim)
        if embedder is None:
            from . import get_embedder
            try:
                embedder = get_embedder("clip", arch)
            except BackendUnavailable as exc:
                raise BackendUnavailable(f"aesthetic score needs CLIP {arch} image embeddings: {exc}") from None
        self.embedder = embedder
        self.device = getattr(embedder, "device", "cpu")
        self.head = self.head.to(self.device).float()
        self.name = f"laion-aesthetic-{head}"
        self.version = f"{fname}:{sha8(self.head_path)} on {embedder.model_id}"
        self._lock = threading.Lock()
        self._torch = torch

    def score_embeddings(self, emb: np.ndarray) -> np.ndarray:
        torch = self._torch
        e = np.asarray(emb, np.float32)
        e = e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
        with self._lock, torch.inference_mode():
            return self.head(torch.from_numpy(e).to(self.device)).float().cpu().numpy().reshape(-1)

    def score_images(self, images: list[np.ndarray]) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros((0,), np.float32)
        return self.score_embeddings(self.embedder.embed_images(images))


def aesthetic_status() -> dict:
    root = models_dir()
    p = root / "aesthetic" / HEADS["improved-l14"][0]
    from .embed import clip_weight_candidates
    clip = next((root / c for c in clip_weight_candidates("ViT-L-14") if (root / c).exists()), None)
    reason = None
    if not p.exists():
        reason = f"aesthetic head not found at {p}"
    elif clip is None:
        reason = f"needs CLIP ViT-L-14 weights at {root / 'clip/ViT-L-14.safetensors'}"
    return status_record("aesthetic", "aesthetic", available=reason is None, name="laion-aesthetic-improved-l14",
                         weights=str(p), source="local file" if p.exists() else None, device=torch_device(),
                         version="improved-aesthetic-predictor (sac+logos+ava1, MSE)", reason=reason)
