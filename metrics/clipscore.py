"""CLIPScore (not one of the paper's six metrics): prompt-frame relevance by CLIP's text and image towers.

16 uniformly sampled frames (longest side 512 px; CLIP's own preprocessing resizes and crops to 224 px) and the
prompt go through OpenAI CLIP ViT-L/14 (open_clip, the same weights and the same loaded model as AesScore's
embedder); per frame the cosine between the L2-normalised prompt and frame embeddings; CLIPScore = the mean over
frames, clamped to [0, 1] (a negative mean cosine means "unrelated": 0). The raw cosine is reported, not the
2.5 x max(cos, 0) rescale of Hessel et al.'s CLIP-S: matching pairs sit near 0.2-0.35, so the values are small
and only comparable with other CLIPScore values. The per-frame cosines, the frames they came from and the model
id are in the trace.

This is the CLIP text-image cosine that GmeScore 1.0 reported when GME was missing. It measures something else
on another scale, so it has its own name and column, marked as not one of InnoAds-Bench's six metrics
(`PAPER = False`): never in GmeScore's column, the radar, or GmeScore's filters. Without the CLIP weights it is
"unavailable" with the backend's reason; no prompt -> n/a.

Why 16 frames: the cosine is a shot-level quantity (one product, one scene for most of an ad), so a few frames a
second find every shot of the paper's ~5 s clips; 16 is about 3 a second, at half the cost of AesScore's 32 on
the same ViT-L/14 (CPU scoring pays per frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean, stamp_frames
from media.decode import FrameRequest

NAME = "clipscore"
VERSION = "1.0"
REFERENCE = True      # scored against each triple's prompt
PAPER = False         # not one of InnoAds-Bench's six metrics: reports mark it and keep it out of the radar
DISPLAY = "CLIPScore"  # its own name: reports, exports, leaderboards (marked there as not one of the six)
SHORT = "CLIPScore"  # scorecards and charts
BACKENDS = ("text_image",)  # CLIP text and image towers (metrics.backends.get_text_image): part of the cache key
SUMMARY = "prompt-frame CLIP cosine (not one of the paper's six metrics)"


@dataclass(frozen=True)
class CLIPScoreConfig:
    n_frames: int = 16
    max_side: int = 512          # CLIP resizes to 224 px; 512 keeps the decode cheap without aliasing
    arch: str = "ViT-L-14"       # open_clip architecture (metrics.backends.embed.CLIP_MODELS)

    def request(self) -> FrameRequest:
        return FrameRequest("uniform", n=self.n_frames, max_side=self.max_side)


def requests(cfg: CLIPScoreConfig) -> list[FrameRequest]:
    return [cfg.request()]


def _prompt_tokens(scorer, prompt: str) -> tuple[int | None, int | None]:
    """(tokens of the prompt with start/end, the model's context length), when the tokenizer says."""
    tok = getattr(getattr(scorer, "embedder", None), "tokenizer", None)
    try:
        return len(tok.encode(prompt)) + 2, int(tok.context_length)
    except Exception:  # noqa: BLE001 - a tokenizer without these: the trace leaves them out
        return None, None


def compute(frames: list[np.ndarray], prompt: str | None, cfg: CLIPScoreConfig = CLIPScoreConfig(),
            scorer=None) -> MetricOutput:
    """`scorer`: anything with .similarity(prompt, frames) -> per-frame cosines and a .name (tests)."""
    from .backends import BackendUnavailable, get_text_image

    if not prompt or not prompt.strip():
        return MetricOutput.na("no prompt for this video")
    try:
        scorer = scorer or get_text_image(cfg.arch)
    except BackendUnavailable as exc:
        return MetricOutput.unavailable(str(exc), backend=f"clip-{cfg.arch}-cosine")
    backend = getattr(scorer, "name", "clip-cosine")
    if not frames:
        return MetricOutput.error("no frames decoded", backend=backend)
    sims = np.asarray(scorer.similarity(prompt, list(frames)), np.float64).reshape(-1)
    mean = float(sims.mean())
    n_tok, ctx = _prompt_tokens(scorer, prompt)
    trace = {"frames": [{"cosine": float(c)} for c in sims], "mean_cosine": mean,
             "model": getattr(scorer, "version", None)}
    if n_tok is not None:
        trace.update(prompt_tokens=n_tok, prompt_truncated=n_tok > ctx)
    return MetricOutput(float(np.clip(mean, 0.0, 1.0)), backend=backend, trace=clean(trace, 4))


def run(video, case, cfg: CLIPScoreConfig) -> MetricOutput:
    s = video.get(cfg.request())
    return stamp_frames(compute(s.frames, case.prompt, cfg), s)
