"""The real loading code of CLIP (open_clip), DINOv2 (timm), SAM2 (image and video predictor) and the
LAION aesthetic heads, run on checkpoints created here in the real on-disk formats (random weights):
output shapes, L2 norms, model ids, and that a changed weight changes the output."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from metrics.backends import BackendUnavailable, clear_cache, get_aesthetic, get_embedder, get_segmenter  # noqa: E402
from metrics.backends._common import file_sha256, run_batched  # noqa: E402

RNG = np.random.default_rng(0)
IMAGES = [RNG.integers(0, 255, (300, 200, 3), dtype=np.uint8), RNG.integers(0, 255, (64, 96, 3), dtype=np.uint8),
          RNG.integers(0, 255, (300, 200, 3), dtype=np.uint8)]


def _save_safetensors(sd, path):
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in sd.items()}, str(path))


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """Two models folders: `a` with random checkpoints, `b` with the same checkpoints but one weight changed."""
    import open_clip
    import timm
    a, b = tmp_path_factory.mktemp("models_a"), tmp_path_factory.mktemp("models_b")
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
    sd = clip.state_dict()
    _save_safetensors(sd, a / "clip/ViT-B-32.safetensors")
    sd2 = dict(sd)
    sd2["visual.proj"] = sd["visual.proj"] * -1.0 + 0.01
    sd2["text_projection"] = sd["text_projection"].flip(0)
    _save_safetensors(sd2, b / "clip/ViT-B-32.safetensors")
    del clip, sd, sd2
    dino = timm.create_model("vit_small_patch14_dinov2", pretrained=False)
    sd = dino.state_dict()
    _save_safetensors(sd, a / "dino/vit_small_patch14_dinov2.safetensors")
    sd2 = dict(sd)
    sd2["norm.weight"] = sd["norm.weight"] * torch.linspace(0.1, 3.0, sd["norm.weight"].numel())
    _save_safetensors(sd2, b / "dino/vit_small_patch14_dinov2.safetensors")
    del dino
    from sam2.build_sam import build_sam2
    sam = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    sd = sam.state_dict()
    (a / "sam2").mkdir()
    torch.save({"model": sd}, a / "sam2/sam2.1_hiera_tiny.pt")
    sd2 = dict(sd)
    for k in ("sam_mask_decoder.output_upscaling.3.weight", "sam_mask_decoder.output_upscaling.3.bias"):
        sd2[k] = sd[k] * -2.0 + 0.05
    (b / "sam2").mkdir()
    torch.save({"model": sd2}, b / "sam2/sam2.1_hiera_tiny.pt")
    return a, b


def _use(monkeypatch, d):
    from metrics.backends import set_models_dir
    set_models_dir(None)
    monkeypatch.setenv("ADVFX_MODELS", str(d))  # the process cache is keyed by models folder


def test_clip_image_and_text_towers(ckpts, monkeypatch):
    a, b = ckpts
    _use(monkeypatch, a)
    emb = get_embedder("clip")
    assert emb is get_embedder("clip")  # created once per process
    assert emb.dim == 512 and emb.model_id == f"open_clip:ViT-B-32:{file_sha256(a / 'clip/ViT-B-32.safetensors')[:8]}"
    x = emb.embed_images(IMAGES)
    assert x.shape == (3, 512) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    t = emb.embed_texts(["a red can of cola", "a pair of running shoes"])
    assert t.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-4)
    assert emb.embed_images([]).shape == (0, 512)
    np.testing.assert_allclose(emb.embed_images(IMAGES[:2], batch_size=1), x[:2], atol=1e-4)  # batching-invariant
    _use(monkeypatch, b)
    emb2 = get_embedder("clip")
    assert emb2.model_id != emb.model_id
    assert not np.allclose(emb2.embed_images(IMAGES[:1]), x[:1], atol=1e-3)
    assert not np.allclose(emb2.embed_texts(["a red can of cola"]), t[:1], atol=1e-3)


def test_clip_takes_every_weight_from_its_checkpoint(ckpts, monkeypatch):
    """The loader skips open_clip's random initialisation (skip_init): every parameter and buffer must then
    come from the file, and the buffers open_clip computes (the text tower's causal mask) must be built."""
    import open_clip
    from safetensors.torch import load_file
    a, _ = ckpts
    _use(monkeypatch, a)
    emb = get_embedder("clip")
    want = load_file(str(a / "clip/ViT-B-32.safetensors"))
    got = emb.model.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        assert torch.equal(got[k].float().cpu(), v.float()), k
    fresh = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
    assert torch.equal(emb.model.attn_mask.cpu(), fresh.attn_mask)
    assert torch.isinf(fresh.attn_mask).any()     # a real mask, not an empty buffer


def test_clip_preprocessing_is_open_clips_own(ckpts, monkeypatch):
    """On a 224 px square (no resize, no crop) our device preprocessing gives the tensor open_clip's own image
    transform gives: size and normalisation are read from the model, not restated."""
    import open_clip
    from PIL import Image

    from metrics.backends.embed import gpu_preprocess

    a, _ = ckpts
    _use(monkeypatch, a)
    emb = get_embedder("clip")
    img = np.random.default_rng(3).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None, force_quick_gelu=True)
    ref = preprocess(Image.fromarray(img)).numpy()
    ours = gpu_preprocess([img], emb.image_size, emb.mean, emb.std, "cpu", torch.float32)[0].numpy()
    assert ours.shape == ref.shape == (3, 224, 224)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_dinov2(ckpts, monkeypatch):
    a, b = ckpts
    _use(monkeypatch, a)
    emb = get_embedder("dino")
    assert emb.dim == 384 and emb.model_id.startswith("timm:vit_small_patch14_dinov2:")
    x = emb.embed_images(IMAGES)
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    assert not hasattr(emb, "embed_texts")
    _use(monkeypatch, b)
    assert not np.allclose(get_embedder("dino").embed_images(IMAGES[:1]), x[:1], atol=1e-3)


def test_sam2_image_and_video_predictor(ckpts, monkeypatch):
    a, b = ckpts
    monkeypatch.setenv("ADVFX_SAM2_IMAGE_SIZE", "256")  # same checkpoint, smaller input: CPU speed
    _use(monkeypatch, a)
    seg = get_segmenter()
    assert seg.name == "sam2-hiera-tiny"
    # the input size changes the masks, so it is part of the version (and the score cache key)
    assert seg.version.endswith("; image size 256")
    img = np.full((120, 160, 3), 230, np.uint8)
    img[30:90, 50:110] = (200, 30, 30)
    m = seg.segment_image(img, box=(50, 30, 110, 90))
    assert m.shape == (120, 160) and m.dtype == bool
    logits_a = seg.predictor.predict(box=np.array([[50, 30, 110, 90]]), multimask_output=False, return_logits=True)[0]
    frames = [img, np.roll(img, 6, axis=1)]
    first = np.zeros((120, 160), bool)
    first[30:90, 50:110] = True
    masks = seg.propagate(frames, first)
    assert len(masks) == 2 and all(mm.shape == (120, 160) and mm.dtype == bool for mm in masks)
    _use(monkeypatch, b)
    seg2 = get_segmenter()
    seg2.segment_image(img, box=(50, 30, 110, 90))
    logits_b = seg2.predictor.predict(box=np.array([[50, 30, 110, 90]]), multimask_output=False, return_logits=True)[0]
    assert logits_a.shape == logits_b.shape and not np.allclose(logits_a, logits_b, atol=1e-3)


def test_sam2_video_state_from_memory_matches_init_state(ckpts, monkeypatch, tmp_path):
    """The in-memory video state is the one sam2's own init_state builds from a JPEG folder: same keys and
    sizes, frames equal up to the JPEG loss, same first-frame features. A sam2 release that changes its
    state layout fails here."""
    import torch
    from PIL import Image

    from metrics.backends.sam2_seg import _prefill_features, sam2_video_state

    monkeypatch.setenv("ADVFX_SAM2_IMAGE_SIZE", "256")
    _use(monkeypatch, ckpts[0])
    seg = get_segmenter()
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(128, 20, (90, 120, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    for f in frames:
        f[20:70, 30:90] = (210, 40, 40)
    seg.propagate(frames[:1], np.ones((90, 120), bool))  # builds the video predictor
    video = seg._video
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i:05d}.jpg", quality=100, subsampling=0)
    with torch.inference_mode():
        ref = video.init_state(video_path=str(tmp_path), offload_video_to_cpu=True)
        ours = sam2_video_state(video, frames)
    assert set(ours) == set(ref)
    for k in ("num_frames", "video_height", "video_width", "offload_video_to_cpu", "offload_state_to_cpu",
              "device", "storage_device"):
        assert ours[k] == ref[k], k
    assert ours["images"].shape == ref["images"].shape and ours["images"].dtype == ref["images"].dtype
    assert (ours["images"] - ref["images"]).abs().mean() < 0.02  # JPEG at quality 100 vs exact pixels
    assert set(ours["cached_features"]) == set(ref["cached_features"]) == {0}
    feat_ours, feat_ref = ours["cached_features"][0][1], ref["cached_features"][0][1]
    assert feat_ours["vision_features"].shape == feat_ref["vision_features"].shape
    # the GPU path's batched encoder: every frame's cached features are what the encoder gives it alone
    with torch.inference_mode():
        _prefill_features(video, ours, chunk=2)
        alone = video.forward_image(ours["images"][2:3].float())
    assert set(ours["cached_features"]) == {0, 1, 2}
    got = ours["cached_features"][2][1]
    for a, b in zip(got["backbone_fpn"] + got["vision_pos_enc"], alone["backbone_fpn"] + alone["vision_pos_enc"]):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4)


def test_sam2_bf16_weights_track_as_autocast_does(ckpts, monkeypatch):
    """On a GPU the SAM2 models keep their linear and convolution weights in bf16 (autocast could not keep
    its casts under inference mode): under bf16 autocast the tracked masks are the ones the fp32 weights
    give. Checked with the CPU's autocast, on the same predictor before and after."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from metrics.backends.sam2_seg import bf16_matmul_weights, sam2_overrides, sam2_video_state

    monkeypatch.setenv("ADVFX_SAM2_IMAGE_SIZE", "256")
    _use(monkeypatch, ckpts[0])
    seg = get_segmenter()
    rng = np.random.default_rng(1)
    frames = [np.clip(rng.normal(128, 20, (90, 120, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    for k, f in enumerate(frames):
        f[20:70, 30 + 4 * k:90 + 4 * k] = (210, 40, 40)
    first = np.zeros((90, 120), bool)
    first[20:70, 30:90] = True
    video = build_sam2_video_predictor(seg.config, str(seg.ckpt), device="cpu",
                                       hydra_overrides_extra=sam2_overrides())

    def track() -> list:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            state = sam2_video_state(video, frames)
            video.add_new_mask(state, frame_idx=0, obj_id=1, mask=first)
            return [logits.float().clone() for _i, _o, logits in video.propagate_in_video(state)]

    ref = track()
    bf16_matmul_weights(video)
    assert video.memory_attention.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    assert video.memory_attention.layers[0].norm1.weight.dtype == torch.float32
    got = track()
    assert len(got) == len(ref) == 3
    for a, b in zip(ref, got):
        assert torch.equal(a, b)


def test_sam2_device_transforms_are_sam2s_own(ckpts, monkeypatch):
    """The image predictor's input transform, moved to the model's device on a GPU, gives the tensor
    sam2's own transform gives (here both on the CPU) and hands every other call to the original."""
    import torch

    from metrics.backends.sam2_seg import DeviceTransforms

    monkeypatch.setenv("ADVFX_SAM2_IMAGE_SIZE", "256")
    _use(monkeypatch, ckpts[0])
    base = get_segmenter().predictor._transforms
    img = np.random.default_rng(2).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    ours = DeviceTransforms(base, "cpu")
    assert torch.allclose(ours(img), base(img), atol=1e-6) and ours(img).shape == (3, 256, 256)
    assert ours.postprocess_masks == base.postprocess_masks and ours.resolution == base.resolution


def test_aesthetic_v1_head_on_clip_b32(ckpts, shared_models, monkeypatch):
    """The whole get_aesthetic path (CLIP loader + head loader) with the real LAION v1 B/32 head."""
    d = ckpts[0]
    (d / "aesthetic").mkdir(exist_ok=True)
    shutil.copy(shared_models / "sa_0_4_vit_b_32_linear.pth", d / "aesthetic")
    _use(monkeypatch, d)
    aes = get_aesthetic("v1-b32")
    assert aes.embedder is get_embedder("clip")  # shares the process's CLIP instance
    s = aes.score_images(IMAGES)
    assert s.shape == (3,) and np.isfinite(s).all()
    emb = get_embedder("clip").embed_images(IMAGES)
    np.testing.assert_allclose(aes.score_embeddings(emb), s, atol=1e-4)


def test_aesthetic_improved_head_real_file(shared_models, monkeypatch, tmp_path):
    """The real sac+logos+ava1 MLP head loads into the 768-1024-128-64-16-1 module; changed weights change scores.
    Without CLIP ViT-L-14, get_aesthetic() says what is missing."""
    from metrics.backends.aesthetic import AestheticScorer
    d = tmp_path / "models"
    (d / "aesthetic").mkdir(parents=True)
    src = shared_models / "sac+logos+ava1-l14-linearMSE.pth"
    shutil.copy(src, d / "aesthetic")
    _use(monkeypatch, d)
    with pytest.raises(BackendUnavailable, match=r"CLIP ViT-L-14.*clip/ViT-L-14"):
        get_aesthetic()

    class FakeL14:  # stands in for the CLIP tower only; the head is the real file
        model_id, device, dim = "fake-l14", "cpu", 768

    aes = AestheticScorer("improved-l14", embedder=FakeL14())
    e = np.random.default_rng(1).normal(size=(4, 768)).astype(np.float32)
    s = aes.score_embeddings(e)
    assert s.shape == (4,) and np.isfinite(s).all()
    sd = torch.load(src, map_location="cpu", weights_only=True)
    assert list(sd)[0].startswith("layers.")
    sd["layers.7.bias"] = sd["layers.7.bias"] + 1.5
    torch.save(sd, d / "aesthetic" / src.name)
    s2 = AestheticScorer("improved-l14", embedder=FakeL14()).score_embeddings(e)
    np.testing.assert_allclose(s2, s + 1.5, atol=1e-4)


def test_no_gme_means_no_gmescore_and_clip_keeps_its_own_name(ckpts, monkeypatch):
    from metrics.backends.textvideo import CLIPCosine
    _use(monkeypatch, ckpts[0])
    with pytest.raises(BackendUnavailable, match="GME: weights not found") as ei:
        from metrics.backends import get_text_video
        get_text_video()
    assert "gme-Qwen2-VL-7B-Instruct" in str(ei.value) and "gme-Qwen2-VL-2B-Instruct" in str(ei.value)
    tv = CLIPCosine(get_embedder("clip"))
    assert tv.name == "clip-ViT-B-32-cosine"
    sim = tv.similarity("a red can", IMAGES)
    assert sim.shape == (3,) and (np.abs(sim) <= 1.0001).all()


@pytest.mark.parametrize("content,kind", [(b"", "empty"), (b"not a checkpoint at all" * 10, "corrupt")])
def test_missing_and_corrupt_weights_name_path_and_command(models_dir, content, kind):
    with pytest.raises(BackendUnavailable) as ei:
        get_embedder("clip")
    assert str(models_dir / "clip/ViT-B-32.safetensors") in str(ei.value)
    assert "python -m curation models download" in str(ei.value)
    for rel in ("clip/ViT-B-32.safetensors", "dino/vit_small_patch14_dinov2.safetensors", "sam2/sam2.1_hiera_tiny.pt",
                "aesthetic/sac+logos+ava1-l14-linearMSE.pth"):
        p = models_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    clear_cache()
    for build in (lambda: get_embedder("clip"), lambda: get_embedder("dino"), lambda: get_segmenter("tiny"),
                  lambda: get_aesthetic()):
        with pytest.raises(BackendUnavailable) as ei:
            build()
        msg = str(ei.value)
        assert str(models_dir) in msg and "python -m curation models download" in msg
        assert kind in msg
    # the automatic segmenter choice still works: it falls back to the classical one
    assert get_segmenter().name == "classical-grabcut-v1"


def test_gpu_oom_retries_with_smaller_batch():
    seen = []

    def fn(chunk):
        seen.append(len(chunk))
        if len(chunk) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.asarray(chunk, np.float32)[:, None]

    halved = []
    out = run_batched(fn, list(range(10)), 16, on_oom=halved.append)
    assert out[:, 0].tolist() == list(range(10))
    assert seen[:4] == [10, 8, 4, 2] and halved == [8, 4, 2]

    def always(chunk):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_batched(always, [1, 2, 3], 4)

    def other(chunk):
        raise ValueError("not an OOM")
    with pytest.raises(ValueError):
        run_batched(other, [1, 2], 2)


def test_embedder_survives_oom(ckpts, monkeypatch):
    _use(monkeypatch, ckpts[0])
    emb = get_embedder("clip")
    ref = emb.embed_images(IMAGES[:2])
    real = emb._image_batch

    def flaky(chunk):
        if len(chunk) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(chunk)
    monkeypatch.setattr(emb, "_image_batch", flaky)
    np.testing.assert_allclose(emb.embed_images(IMAGES[:2], batch_size=8), ref, atol=1e-4)


def _make_tiny_gme(d, seed):
    """A tiny random Qwen2-VL saved in the GME folder layout (transformers format: config, safetensors,
    processor and a word-level tokenizer with Qwen2-VL's special tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    words = ["system", "user", "assistant", "find", "an", "image", "that", "matches", "the", "given", "text.",
             "represent", "image.", "a", "red", "can", "[UNK]"]
    vocab = {t: i for i, t in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="<|endoftext|>",
                                  eos_token="<|im_end|>")
    tok.add_special_tokens({"additional_special_tokens": specials[1:]})
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tok,
                            video_processor=Qwen2VLVideoProcessor())
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         bos_token_id=0, eos_token_id=2,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 2, 4]}),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"])
    torch.manual_seed(seed)
    Qwen2VLForConditionalGeneration(cfg).save_pretrained(d)
    proc.save_pretrained(d)


def test_gme_loader_on_tiny_qwen2vl(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from metrics.backends import get_text_video
    frames = [np.zeros((60, 80, 3), np.uint8), np.full((90, 70, 3), 200, np.uint8)]
    sims = []
    for seed in (0, 1):
        d = tmp_path / f"m{seed}"
        _make_tiny_gme(d / "gme/gme-Qwen2-VL-2B-Instruct", seed)
        _use(monkeypatch, d)
        tv = get_text_video()
        assert tv.name == "gme-qwen2-vl-2b"
        # OpenS2V's GME wrapper resolution: 256 to 1,280 image tokens of 28 x 28 px
        size = tv.processor.image_processor.size
        assert (size["shortest_edge"], size["longest_edge"]) == (256 * 784, 1280 * 784)
        s = tv.similarity("a red can", frames)
        assert s.shape == (2,) and np.isfinite(s).all() and (np.abs(s) <= 1.0001).all()
        sims.append(s)
        # ProductScore's crops are embedded with GME when it is present, as OpenS2V's NexusScore does
        from metrics.productscore import pick_embedder
        fam, emb = pick_embedder("auto")
        v = emb.embed_images(frames)
        assert fam == "gme" and emb is tv and v.shape == (2, tv.dim)
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3) and "gme-Qwen2-VL-2B-Instruct" in emb.model_id
    assert not np.allclose(sims[0], sims[1], atol=1e-4)
    # the 7B model, OpenS2V's, is preferred when both are present
    _make_tiny_gme(tmp_path / "m1" / "gme/gme-Qwen2-VL-7B-Instruct", 2)
    _use(monkeypatch, tmp_path / "m1")
    assert get_text_video().name == "gme-qwen2-vl-7b"
