"""GmeScore: text-video relevance as OpenS2V-Eval computes it: the cosine between the prompt (GME query) and
each of 32 uniformly sampled frames (GME corpus items, at the GME wrapper's resolution from the decoded frame),
GME-Qwen2-VL-7B (2B when only that is present, named in the backend), averaged over frames; the value is the
mean clamped to [0, 1] (a negative mean cosine means "unrelated": 0), the raw mean in the trace. Without GME
it is unavailable: no other model's cosine is reported under this name."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean
from media.decode import FrameRequest

NAME = "gmescore"
VERSION = "2.0"   # 2.0: OpenS2V's configuration (7B, query/corpus instructions, native frames)
REFERENCE = True
DISPLAY = "GmeScore"  # the paper's name: reports, exports, leaderboards
SHORT = "GmeScore"  # scorecards and charts
BACKENDS = ("text_video",)  # what produces it (metrics.backends roles): part of the cache key
SUMMARY = "prompt-video relevance"


@dataclass(frozen=True)
class GmeConfig:
    n_frames: int = 32
    max_side: int | None = None      # GME's processor sizes each frame (256-1,280 tokens), as OpenS2V's does

    def request(self) -> FrameRequest:
        return FrameRequest("uniform", n=self.n_frames, max_side=self.max_side)


def requests(cfg: GmeConfig) -> list[FrameRequest]:
    return [cfg.request()]


def compute(frames: list[np.ndarray], prompt: str | None, cfg: GmeConfig = GmeConfig(), tv=None) -> MetricOutput:
    from .backends import BackendUnavailable, get_text_video

    if not prompt or not prompt.strip():
        return MetricOutput.na("no prompt for this video")
    try:
        tv = tv or get_text_video()
    except BackendUnavailable as exc:
        return MetricOutput.unavailable(str(exc), backend="gme-qwen2-vl-7b")
    backend = getattr(tv, "name", "text-video")
    if not frames:
        return MetricOutput.error("no frames decoded", backend=backend)
    sims = np.asarray(tv.similarity(prompt, list(frames)), np.float64).reshape(-1)
    mean = float(sims.mean())
    return MetricOutput(float(np.clip(mean, 0.0, 1.0)), backend=backend,
                        trace=clean({"cosine": sims, "mean_cosine": mean}, 4))


def run(video, case, cfg: GmeConfig) -> MetricOutput:
    return compute(video.get(cfg.request()).frames, case.prompt, cfg)
