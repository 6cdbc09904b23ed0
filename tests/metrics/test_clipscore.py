"""CLIPScore, the CLIP text-image cosine under its own name (not one of the paper's six metrics): on a random-weight
CLIP checkpoint written here in open_clip's real format, through the real loader and a real decoded video; and
"unavailable" with the reason without weights. GmeScore never takes the CLIP cosine, weights or not."""
from __future__ import annotations

import numpy as np
import pytest

from metrics import clipscore, gmescore
from metrics.registry import (
    EXTRA_METRICS, METRICS, PAPER_METRICS, Case, backend_keys, get_spec, is_paper, marked, parse_metrics)

torch = pytest.importorskip("torch")

ARCH = "ViT-B-32"            # the smallest CLIP the loader knows; the default (ViT-L-14) is 1.7 GB of weights
PROMPT = "a red can of cola on a table, the camera slowly pans"


@pytest.fixture(scope="module")
def clip_models(tmp_path_factory):
    """A models folder with a random-weight open_clip ViT-B-32 checkpoint (safetensors, as `models download`
    writes it)."""
    import open_clip
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("clip_models")
    torch.manual_seed(0)
    model = open_clip.create_model(ARCH, pretrained=None, force_quick_gelu=True)
    (root / "clip").mkdir()
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(root / f"clip/{ARCH}.safetensors"))
    del model
    yield root
    from metrics.backends import clear_cache
    clear_cache()


@pytest.fixture()
def use_models(monkeypatch):
    def use(root):
        from metrics.backends import _common
        monkeypatch.setattr(_common, "_models_dir_override", None)   # no --models-dir; the loaded models stay
        monkeypatch.setenv("ADVFX_MODELS", str(root))   # the process cache is keyed by models folder
    return use


def test_registry_lists_clipscore_after_the_six_as_not_one_of_them():
    assert METRICS[:6] == PAPER_METRICS and METRICS[6:] == EXTRA_METRICS == ("clipscore",)
    assert [m for m in METRICS if get_spec(m).paper] == list(PAPER_METRICS)    # modules and registry agree
    spec = get_spec("clipscore")
    assert not spec.paper and not is_paper("clipscore") and spec.per_triple
    assert spec.display == "CLIPScore" and marked("clipscore", spec.display) == "CLIPScore*"
    assert marked("gmescore", "GmeScore") == "GmeScore"
    assert spec.backends == ("text_image",) and spec.version == clipscore.VERSION
    assert "not one of the paper's six" in spec.summary
    assert parse_metrics(None)[-1] == "clipscore" and parse_metrics("clipscore") == ["clipscore"]


def test_backend_key_follows_the_clip_weights(tmp_path, use_models):
    use_models(tmp_path)
    assert backend_keys()["clipscore"] == "unavailable"
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip/ViT-L-14.safetensors").write_bytes(b"x")     # the status looks at files only
    keys = backend_keys()
    assert keys["clipscore"].startswith("clip-ViT-L-14:") and keys["gmescore"] == "unavailable"


def test_unavailable_without_weights_with_the_reason(no_model_env, tmp_path):
    frames = [np.full((32, 32, 3), v, np.uint8) for v in (10, 120, 240)]
    out = clipscore.compute(frames, PROMPT)
    assert out.status == "unavailable" and out.value is None and out.backend == "clip-ViT-L-14-cosine"
    assert "CLIP ViT-L-14" in out.reason and str(tmp_path / "models" / "clip" / "ViT-L-14.safetensors") in out.reason
    assert "models download" in out.reason
    assert clipscore.compute(frames, "  ").status == "n/a"


def test_the_backend_loads_the_checkpoint_on_the_shared_clip_embedder(clip_models, use_models):
    from metrics.backends import get_embedder, get_text_image
    from metrics.backends._common import file_sha256

    use_models(clip_models)
    tv = get_text_image(ARCH)
    emb = get_embedder("clip", ARCH)
    assert tv is get_text_image(ARCH) and tv.embedder is emb    # one CLIP per process (AesScore's, at ViT-L-14)
    assert tv.name == f"clip-{ARCH}-cosine"
    assert tv.version == f"open_clip:{ARCH}:{file_sha256(clip_models / f'clip/{ARCH}.safetensors')[:8]}"


def test_clipscore_on_random_weights_through_a_decoded_video(clip_models, use_models, tmp_path):
    from media.decode import decode_video
    from metrics.backends import get_embedder

    from .conftest import pan_frames, write_video

    use_models(clip_models)
    cfg = clipscore.CLIPScoreConfig(n_frames=4, arch=ARCH)       # 4 of 24 frames: fast on a loaded CPU
    path = write_video(tmp_path / "pan.mp4", pan_frames(24, 2.0, 0.0, size=96, canvas=192))
    video = decode_video(path, clipscore.requests(cfg))
    out = clipscore.run(video, Case(triple_id=1, prompt=PROMPT), cfg)
    assert out.status == "ok" and 0.0 <= out.value <= 1.0
    assert out.backend == f"clip-{ARCH}-cosine"
    frames = out.trace["frames"]
    sampled = video.get(cfg.request())
    assert len(frames) == len(sampled) == 4
    assert [f["index"] for f in frames] == sampled.indices.tolist() and all("t" in f for f in frames)
    cos = np.array([f["cosine"] for f in frames])
    assert (np.abs(cos) <= 1.0001).all()
    assert out.trace["mean_cosine"] == pytest.approx(cos.mean(), abs=1e-3)
    assert out.value == pytest.approx(min(1.0, max(0.0, out.trace["mean_cosine"])), abs=1e-4)
    assert out.trace["model"].startswith(f"open_clip:{ARCH}:") and out.trace["prompt_truncated"] is False
    # the cosine is the embedder's own: its text tower on the prompt, its image tower on the (first) frame
    emb = get_embedder("clip", ARCH)
    ref = emb.embed_images(sampled.frames[:1]) @ emb.embed_texts([PROMPT])[0]
    assert cos[0] == pytest.approx(float(ref[0]), abs=2e-3)
    # with the CLIP weights present GmeScore is still unavailable: GME only, never the CLIP cosine
    g = gmescore.compute(sampled.frames, PROMPT)
    assert g.status == "unavailable" and g.value is None and "GME" in g.reason
