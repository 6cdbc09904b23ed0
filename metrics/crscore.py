"""CRScore: creativity and rationality judged by a multimodal LLM.

8 uniformly sampled frames and the creativity-and-rationality prompt go to the configured
OpenAI-compatible endpoint N = 3 times with seeds 0, 1, 2; each reply must hold one 1-5 score (the client
re-asks on unparseable replies, then raises). CRScore = (mean of the parsed scores - 1) / 4. A run that
still fails is recorded in the trace as a failure, never as a number; with no successful run the result is
an error. Without an endpoint: "unavailable" with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean
from .decode import FrameRequest

NAME = "crscore"
VERSION = "1.0"
REFERENCE = True

PROMPT = (
    "You are an expert judge of product advertising videos. The images are {n} frames sampled uniformly, in "
    "order, from one short ad video generated from a product poster{product}.{prompt}\n"
    "Rate the video on CREATIVITY and RATIONALITY together:\n"
    "- Creativity: is the motion an attractive, original visual effect that sells the product (dynamic light, "
    "liquid, particles, camera moves), rather than a still image or a trivial zoom?\n"
    "- Rationality: is everything physically and semantically plausible: the product keeps its shape, "
    "identity and branding, objects move naturally, the advertising text stays legible, and nothing "
    "appears, vanishes or deforms without reason?\n"
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
    trace = {"runs": runs, "n_frames": len(frames)}
    if not good:
        return MetricOutput.error(f"all {cfg.runs} MLLM runs failed: {runs[-1].get('error')}", backend=backend,
                                  trace=trace)
    mean = float(np.mean(good))
    trace["mean_score"] = mean
    return MetricOutput((mean - 1.0) / 4.0, backend=backend, trace=clean(trace, 4))


def run(video, case, cfg: CRConfig) -> MetricOutput:
    return compute(video.get(cfg.request()).frames, cfg, product=case.product, prompt=case.prompt,
                   workspace=case.workspace)
