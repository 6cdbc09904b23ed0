"""AesScore, GmeScore, CRScore: the math on given scores/embeddings, the real LAION head, the MLLM runs
against a local chat-completions server, and "unavailable" (never a number) without weights/endpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest

from metrics import aesscore, crscore, gmescore

FRAMES = [np.full((32, 32, 3), v, np.uint8) for v in (10, 120, 240)]


def test_aesthetic_normalization_and_real_head(shared_models):
    import torch

    assert aesscore.normalize(3.0) == 0 and aesscore.normalize(8.2) == 1 and aesscore.normalize(5.5) == 0.5
    state = {k: v.float().numpy() for k, v in torch.load(shared_models / "sac+logos+ava1-l14-linearMSE.pth",
                                                         map_location="cpu", weights_only=True).items()}
    emb = np.random.default_rng(0).normal(size=(4, 768)).astype(np.float32)
    ours = aesscore.laion_head_numpy(emb, state)
    from metrics.backends.aesthetic import load_head
    head = load_head(shared_models / "sac+logos+ava1-l14-linearMSE.pth", "mlp", 768)
    e = torch.from_numpy(emb / np.linalg.norm(emb, axis=1, keepdims=True))
    with torch.inference_mode():
        ref = head(e).numpy().reshape(-1)
    assert np.allclose(ours, ref, atol=1e-4)

    class Scorer:                     # the torch head on given "CLIP" embeddings of three frames
        name = "laion-aesthetic-improved-l14"

        def score_images(self, frames):
            return ref[:len(frames)]
    out = aesscore.compute(FRAMES, scorer=Scorer())
    # the documented normalisation, (clamp(mean, 4, 7) - 4) / 3, on raw scores that lie inside [4, 7]
    assert 4 < ref[:3].mean() < 7
    expected = (float(np.mean(ref[:3])) - 4.0) / 3.0
    assert out.status == "ok" and out.value == pytest.approx(expected, abs=1e-6)
    assert np.allclose(out.trace["raw"], ref[:3], atol=1e-4)


def test_gme_mean_cosine():
    class TV:
        name = "clip-ViT-L-14-cosine"

        def similarity(self, prompt, frames):
            return np.array([0.2, 0.3, 0.4])[:len(frames)]
    out = gmescore.compute(FRAMES, "a can of cola", tv=TV())
    assert out.value == pytest.approx(0.3) and out.backend == "clip-ViT-L-14-cosine"
    assert gmescore.compute(FRAMES, "", tv=TV()).status == "n/a"


def test_unavailable_without_weights_or_endpoint(no_model_env):
    for out in (aesscore.compute(FRAMES), gmescore.compute(FRAMES, "a prompt"), crscore.compute(FRAMES)):
        assert out.status == "unavailable" and out.value is None and out.reason
    assert "ADVFX_MLLM_BASE_URL" in crscore.compute(FRAMES).reason


def mllm_for(server, tmp_path):
    (tmp_path / "mllm.json").write_text(json.dumps({"base_url": server.url, "model": "judge", "retries": 0,
                                                    "backoff": 0.01, "parse_retries": 1, "timeout": 5}))
    return str(tmp_path)


def test_crscore_runs_seeds_and_normalizes(no_model_env, chat_server, tmp_path):
    ws = mllm_for(chat_server, tmp_path)
    chat_server.replies = ['{"score": 4}', 'Score: 5 - creative and plausible', '{"score": 3}']
    out = crscore.compute(FRAMES, crscore.CRConfig(), product="Fizz cola", prompt="cola pours", workspace=ws)
    assert out.status == "ok" and out.value == pytest.approx((4 - 1) / 4)
    assert [r["score"] for r in out.trace["runs"]] == [4, 5, 3]
    body = chat_server.requests[0]
    assert [r["seed"] for r in chat_server.requests] == [0, 1, 2]
    parts = body["messages"][0]["content"]
    assert "CREATIVITY" in parts[0]["text"] and "Fizz cola" in parts[0]["text"] and len(parts) == 1 + 3


def test_crscore_unparseable_replies_are_failures_not_numbers(no_model_env, chat_server, tmp_path):
    ws = mllm_for(chat_server, tmp_path)
    chat_server.replies = ["I cannot rate this.", "no idea", '{"score": 2}', "still nothing", "nope", "hmm"]
    out = crscore.compute(FRAMES, crscore.CRConfig(), workspace=ws)
    runs = out.trace["runs"]
    assert [r["score"] for r in runs] == [None, 2, None]
    assert out.value == pytest.approx(0.25) and all("error" in r for r in runs if r["score"] is None)
    chat_server.replies = ["garbage"]
    bad = crscore.compute(FRAMES, crscore.CRConfig(), workspace=ws)
    assert bad.status == "error" and bad.value is None and "failed" in bad.reason
