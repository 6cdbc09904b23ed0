"""CRScore: creativity and rationality judged by a multimodal LLM.

8 uniformly sampled frames and the creativity-and-rationality prompt go to the configured
OpenAI-compatible endpoint N = 3 times (seeds 0, 1, 2), sampled at the endpoint's default temperature so
the N runs are N judgements (the paper's judge, a reasoning model, accepts no other temperature); each reply
is the bare 1-5 score (the client re-asks on unparseable replies, then raises). CRScore = (mean of the
parsed scores - 1) / 4. A run that still fails is recorded in the trace as a failure, never as a number;
fewer than N successful runs give a value marked partial (its reason and `trace.n_ok`), none an error.
Without an endpoint: "unavailable" with the reason.

The prompt judges what only a judge can: creativity (an attractive, original effect that sells the
product) and rationality (physical and semantic plausibility of the motion and the scene). Product identity
and text legibility are ProductScore's and TSScore's, so they are not folded in here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean
from media.decode import FrameRequest

NAME = "crscore"
VERSION = "1.1"   # 1.1: sampled runs, bare-score reply, prompt without identity/text
REFERENCE = True
DISPLAY = "CRScore"  # the paper's name: reports, exports, leaderboards
SHORT = "CRScore"  # scorecards and charts
BACKENDS = ("mllm",)  # what produces it (metrics.backends roles): part of the cache key
SUMMARY = "creativity and rationality (MLLM judge)"

PROMPT = (
    "You are an expert judge of product advertising videos. The images are {n} frames sampled uniformly, in "
    "order, from one short ad video generated from a product poster{product}.{prompt}\n"
    "Rate the video on CREATIVITY and RATIONALITY together:\n"
    "- Creativity: is the motion an attractive, original visual effect that sells the product (dynamic light, "
    "liquid, particles, atmosphere, scene change), rather than a still image, a static repetition or a "
    "trivial zoom?\n"
    "- Rationality: is the video physically and semantically plausible: objects move the way such objects "
    "move, light and liquids behave naturally, the scene stays coherent from frame to frame, and nothing "
    "appears, vanishes or morphs without reason?\n"
    "Scale: 1 = poor (static, or implausible / broken), 2 = weak, 3 = acceptable, 4 = good, "
    "5 = excellent (creative and fully plausible).")


@dataclass(frozen=True)
class CRConfig:
    n_frames: int = 8
    max_side: int = 768
    runs: int = 3                 # N seeds, 0..N-1
    template: str = PROMPT

    def request(self) -> FrameRequest:
        return FrameRequest("uniform", n=self.n_frames, max_side=self.max_side)


def requests(cfg: CRConfig) -> list[FrameRequest]:
    return [cfg.request()]


def build_prompt(cfg: CRConfig, n: int, product: str | None, prompt: str | None) -> str:
    return cfg.template.format(n=n, product=f" of {product}" if product else "",
                               prompt=f" The generation prompt was: \"{prompt.strip()}\"" if prompt else "")


def compute(frames: list[np.ndarray], cfg: CRConfig = CRConfig(), *, product: str | None = None,
            prompt: str | None = None, mllm=None, workspace=None) -> MetricOutput:
    from .backends import BackendUnavailable, MLLMError, get_mllm

    try:
        mllm = mllm or get_mllm(workspace)
    except BackendUnavailable as exc:
        return MetricOutput.unavailable(str(exc), backend="mllm")
    backend = getattr(mllm, "name", "mllm")
    if not frames:
        return MetricOutput.error("no frames decoded", backend=backend)
    text = build_prompt(cfg, len(frames), product, prompt)
    runs = []
    for seed in range(cfg.runs):
        try:
            s = int(mllm.score(text, list(frames), seed=seed))
            if not 1 <= s <= 5:
                raise MLLMError(f"score {s} outside 1-5")
            runs.append({"seed": seed, "score": s})
        except MLLMError as exc:
            runs.append({"seed": seed, "score": None, "error": str(exc)})
    good = [r["score"] for r in runs if r["score"] is not None]
    trace = {"runs": runs, "n_frames": len(frames), "n_ok": len(good), "n_runs": cfg.runs}
    if not good:
        return MetricOutput.error(f"all {cfg.runs} MLLM runs failed: {runs[-1].get('error')}", backend=backend,
                                  trace=trace)
    mean = float(np.mean(good))
    trace["mean_score"] = mean
    reason = None
    if len(good) < cfg.runs:
        trace["partial"] = True
        failed = next(r for r in runs if r["score"] is None)
        reason = (f"partial: {len(good)} of {cfg.runs} judgements (seed {failed['seed']} failed: "
                  f"{failed.get('error')})")
    return MetricOutput((mean - 1.0) / 4.0, reason=reason, backend=backend, trace=clean(trace, 4))


def run(video, case, cfg: CRConfig) -> MetricOutput:
    return compute(video.get(cfg.request()).frames, cfg, product=case.product, prompt=case.prompt,
                   workspace=case.workspace)
