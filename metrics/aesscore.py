"""AesScore: LAION improved-aesthetic predictor on 32 uniformly sampled frames, normalised as OpenS2V.

Each frame -> CLIP ViT-L/14 image embedding (L2-normalised) -> the LAION MLP head (raw score, ~1..10);
mean over frames; AesScore = (clamp(mean, 4, 7) - 4) / 3. Without the CLIP ViT-L/14 weights or the head the
result is "unavailable" with the backend's reason, never a made-up number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean
from media.decode import FrameRequest

NAME = "aesscore"
VERSION = "1.0"
REFERENCE = False
DISPLAY = "AesScore"  # the paper's name: reports, exports, leaderboards
SHORT = "AesScore"  # scorecards and charts
BACKENDS = ("aesthetic",)  # what produces it (metrics.backends roles): part of the cache key
SUMMARY = "LAION aesthetic score of sampled frames"


@dataclass(frozen=True)
class AesConfig:
    n_frames: int = 32
    max_side: int = 512          # CLIP resizes to 224 px; 512 keeps the decode cheap without aliasing
    low: float = 4.0             # OpenS2V normalisation: clamp(mean raw score, low, high), map to 0-1
    high: float = 7.0
    head: str = "improved-l14"

    def request(self) -> FrameRequest:
        return FrameRequest("uniform", n=self.n_frames, max_side=self.max_side)


def requests(cfg: AesConfig) -> list[FrameRequest]:
    return [cfg.request()]


def normalize(raw_mean: float, low: float = 4.0, high: float = 7.0) -> float:
    return (min(high, max(low, float(raw_mean))) - low) / (high - low)


def laion_head_numpy(emb: np.ndarray, state: dict) -> np.ndarray:
    """The improved-aesthetic MLP (Linear layers only; dropout is inactive at inference) in numpy, on
    L2-normalised embeddings. ``state`` holds the head's ``layers.{i}.weight/bias`` arrays."""
    x = np.asarray(emb, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    idx = sorted({int(k.split(".")[1]) for k in state if k.endswith(".weight")})
    for i in idx:
        w = np.asarray(state[f"layers.{i}.weight"], np.float64)
        b = np.asarray(state[f"layers.{i}.bias"], np.float64)
        x = x @ w.T + b
    return x.reshape(-1)


def compute(frames: list[np.ndarray], cfg: AesConfig = AesConfig(), scorer=None) -> MetricOutput:
    from .backends import BackendUnavailable, get_aesthetic

    try:
        scorer = scorer or get_aesthetic(cfg.head)
    except BackendUnavailable as exc:
        return MetricOutput.unavailable(str(exc), backend=f"laion-aesthetic-{cfg.head}")
    backend = getattr(scorer, "name", "aesthetic")
    if not frames:
        return MetricOutput.error("no frames decoded", backend=backend)
    raw = np.asarray(scorer.score_images(list(frames)), np.float64).reshape(-1)
    mean = float(raw.mean())
    return MetricOutput(normalize(mean, cfg.low, cfg.high), backend=backend,
                        trace=clean({"raw": raw, "raw_mean": mean, "version": getattr(scorer, "version", None)}, 4))


def run(video, case, cfg: AesConfig) -> MetricOutput:
    return compute(video.get(cfg.request()).frames, cfg)
