"""`sam2-hiera-<size>`: SAM2 (the `sam2` package) image predictor with a box prompt; its video predictor
propagates the first-frame mask through a video. The box comes from, in order: an explicit box, the alpha
channel of a cut-out, Grounding DINO (segment.py) prompted with the product name when its weights are
present, else the classical saliency estimate (classical_seg.py).

On CUDA: bf16 weights (`bf16_matmul_weights`), CUDA graphs (cuda_graphs.py), the image predictor's input
transform on the device (`DeviceTransforms`); the video state is built from frames in memory
(`sam2_video_state`), with the image encoder batched over the frames on a GPU.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._common import BackendUnavailable, alpha_of, as_rgb_uint8, corrupt, find_weights, sha8, torch_device
from .classical_seg import ClassicalSegmenter, estimate_box
from .cuda_graphs import graph_sam2_image, graph_sam2_tracking
from .segment import _shared_detector, mask_bbox

SAM2_SIZES = {  # size -> (checkpoint file, config inside the sam2 package)
    "tiny": ("sam2.1_hiera_tiny.pt", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    "small": ("sam2.1_hiera_small.pt", "configs/sam2.1/sam2.1_hiera_s.yaml"),
    "base_plus": ("sam2.1_hiera_base_plus.pt", "configs/sam2.1/sam2.1_hiera_b+.yaml"),
    "large": ("sam2.1_hiera_large.pt", "configs/sam2.1/sam2.1_hiera_l.yaml"),
}
# how the video predictor is fed: frames from memory (not a JPEG round trip), bf16 autocast on CUDA. Part of
# the segmenter's version, so masks made the old way are not reused from the score cache.
SAM2_VIDEO_INPUT = "frames-in-memory"


def sam2_image_size() -> int:
    return int(os.environ.get("ADVFX_SAM2_IMAGE_SIZE", "1024") or 1024)


def sam2_size_tag() -> str:
    """The version's part for a non-default input size: masks change with it, so the cache key does too."""
    size = sam2_image_size()
    return "" if size == 1024 else f"; image size {size}"


def sam2_overrides() -> list[str]:
    """Hydra overrides. $ADVFX_SAM2_IMAGE_SIZE (a multiple of 64, default 1024) runs SAM2 at a smaller
    input size - a speed knob for CPUs and tests; the checkpoint is the same, quality is lower."""
    size = sam2_image_size()
    if size == 1024:
        return []
    if size % 64:
        raise BackendUnavailable(f"ADVFX_SAM2_IMAGE_SIZE={size} is not a multiple of 64")
    f = size // 16
    return [f"++model.image_size={size}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{f},{f}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{f},{f}]"]


def sam2_checkpoint(size: str = "tiny") -> Path:
    fname, _ = SAM2_SIZES[size]
    return find_weights([f"sam2/{fname}"], f"SAM2 hiera-{size}")


class SAM2Segmenter:
    """SAM2 image predictor (box prompt) and video predictor (mask on frame 0 propagated)."""

    def __init__(self, size: str = "tiny", device: str | None = None) -> None:
        self.size = size
        self.name = f"sam2-hiera-{size.replace('_', '-')}"
        self.ckpt = sam2_checkpoint(size)
        self.config = SAM2_SIZES[size][1]
        self.device = device or torch_device()
        try:
            import sam2
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except Exception as exc:
            raise BackendUnavailable(f"SAM2: the sam2 package cannot be imported ({exc}); install it with "
                                     "`SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2`") from None
        try:
            model = build_sam2(self.config, str(self.ckpt), device=self.device,
                               hydra_overrides_extra=sam2_overrides())
        except Exception as exc:
            raise corrupt(self.ckpt, exc) from None
        self.predictor = SAM2ImagePredictor(model)
        self.graphs: list = []                   # CUDA graphs (cuda_graphs.py), image and tracking
        if str(self.device).startswith("cuda"):
            self.graphs += _cuda_setup(model, graph_sam2_image)
            self.predictor._transforms = DeviceTransforms(self.predictor._transforms, self.device)
        isz = int(model.image_size)
        self.predictor._bb_feat_sizes = [(isz // 4, isz // 4), (isz // 8, isz // 8), (isz // 16, isz // 16)]
        self.version = (f"sam2 {getattr(sam2, '__version__', '1.x')}; {self.ckpt.name}:{sha8(self.ckpt)}; "
                        f"video: {SAM2_VIDEO_INPUT}{sam2_size_tag()}")
        self._video = None
        self._lock = threading.Lock()
        self._classical = ClassicalSegmenter()
        self._detector = None
        self._detector_tried = False

    def _box_for(self, rgb, alpha, box, product, exclude_boxes):
        if box is not None:
            return np.asarray(box, np.float32).reshape(4), "given"
        if alpha is not None:
            al = np.asarray(alpha)
            if al.shape[:2] == rgb.shape[:2] and (al > 127).any() and (al <= 127).any():
                return np.asarray(mask_bbox(al > 127), np.float32), "alpha"
        if product:
            det = self.detector()
            if det is not None:
                b = det.detect(rgb, product)
                if b is not None:
                    return b, "grounding-dino"
        return np.asarray(estimate_box(rgb, exclude_boxes), np.float32), "classical"

    def detector(self):
        return _shared_detector()

    def segment_image(self, image_rgb: np.ndarray, *, alpha: np.ndarray | None = None, box=None,
                      product: str | None = None, exclude_boxes=None) -> np.ndarray:
        import torch
        if alpha is None:
            alpha = alpha_of(image_rgb)
        rgb = as_rgb_uint8(image_rgb)
        b, _ = self._box_for(rgb, alpha, box, product, exclude_boxes)
        with self._lock, torch.inference_mode():
            ac = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.startswith("cuda") else _null()
            with ac:
                self.predictor.set_image(rgb)
                masks, _scores, _ = self.predictor.predict(box=b[None, :], multimask_output=False)
        m = np.asarray(masks)
        m = m.reshape(-1, *m.shape[-2:])[0]
        return m > 0.5 if m.dtype != np.bool_ else m

    def propagate(self, frames: list[np.ndarray], first_mask: np.ndarray) -> list[np.ndarray]:
        import torch
        if not frames:
            return []
        if self._video is None:
            from sam2.build_sam import build_sam2_video_predictor
            try:
                self._video = build_sam2_video_predictor(self.config, str(self.ckpt), device=self.device,
                                                         hydra_overrides_extra=sam2_overrides())
            except Exception as exc:
                raise corrupt(self.ckpt, exc) from None
            if str(self.device).startswith("cuda"):
                self.graphs += _cuda_setup(self._video, graph_sam2_tracking)
        with self._lock, torch.inference_mode():
            ac = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.startswith("cuda") else _null()
            with ac:
                state = sam2_video_state(self._video, frames)
                self._video.add_new_mask(state, frame_idx=0, obj_id=1, mask=np.asarray(first_mask, bool))
                # masks stay on the device until the end: one copy back, not a wait for the GPU per frame
                found = {idx: logits[0] > 0.0 for idx, _obj_ids, logits in self._video.propagate_in_video(state)}
            self._video.reset_state(state)
        h, w = np.asarray(first_mask).shape[:2]
        idx = sorted(found)
        stacked = torch.stack([found[i].reshape(found[i].shape[-2:]) for i in idx]).cpu().numpy() if idx else []
        out = dict(zip(idx, stacked))
        return [out.get(i, np.zeros((h, w), bool)) for i in range(len(frames))]


class DeviceTransforms:
    """SAM2ImagePredictor's input transform (to tensor, resize to the model's square, normalise) run on
    `device`: the same scripted Resize and Normalize, given the image as a device tensor. On the CPU the
    resize of a 960 px image took ~20 ms, longer than the image encoder on an H200. Everything else
    (box and mask coordinate transforms) is the wrapped object's."""

    def __init__(self, base, device) -> None:
        self.base, self.device = base, device

    def __call__(self, image: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        return self.base.transforms(x.permute(2, 0, 1).float().div_(255.0))   # ToTensor's scaling

    def __getattr__(self, name: str):
        return getattr(self.base, name)


def _cuda_setup(model, graph) -> list:
    """A SAM2 model on CUDA: bf16 weights, and CUDA graphs (`graph(model)`, from cuda_graphs.py) unless
    ADVFX_CUDA_GRAPHS=0. Returns the graph wrappers."""
    bf16_matmul_weights(model)
    return [] if os.environ.get("ADVFX_CUDA_GRAPHS", "1") == "0" else list(graph(model))


def bf16_matmul_weights(model) -> None:
    """Store the weights of `model`'s linear and convolution layers in bf16, for use under bf16 autocast.
    Autocast runs these layers in bf16 anyway, casting each fp32 weight at every call; under inference mode
    (sam2's tracking runs in it) it cannot keep those casts, and they were a third of the tracking loop's
    CPU time on an H200. The weights are the values autocast would cast them to, so the outputs are the
    same (tests/backends); norms and embeddings stay fp32."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d,
             torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    for m in model.modules():
        if isinstance(m, kinds):
            m.to(torch.bfloat16)


def sam2_frames_tensor(frames: Sequence[np.ndarray], image_size: int, device: Any = "cpu"):
    """Frames as SAM2's video loader makes them from JPEG files (resized to a square, /255, ImageNet
    mean/std), without the JPEG round trip. On the CPU the resize is PIL's, as in sam2; on a GPU it is
    torch's bicubic on the device (PIL took ~20 ms a frame there, more than the tracking step)."""
    import torch

    mean = torch.tensor((0.485, 0.456, 0.406), dtype=torch.float32)[:, None, None]
    std = torch.tensor((0.229, 0.224, 0.225), dtype=torch.float32)[:, None, None]
    if torch.device(device).type == "cuda":
        import torch.nn.functional as F

        x = torch.from_numpy(np.stack([as_rgb_uint8(f) for f in frames])).to(device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(image_size, image_size), mode="bicubic", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
        return (x - mean.to(device)) / std.to(device)
    from PIL import Image

    out = torch.zeros(len(frames), 3, image_size, image_size, dtype=torch.float32)
    for i, fr in enumerate(frames):
        sq = np.asarray(Image.fromarray(as_rgb_uint8(fr)).resize((image_size, image_size)))
        out[i] = torch.from_numpy(sq / 255.0).permute(2, 0, 1)  # float64 division, as sam2 does
    return (out - mean) / std


def _prefill_features(predictor, state: dict, chunk: int = 8) -> None:
    """Run the image encoder on all frames in batches and put each frame's features where
    `_get_image_feature` looks first (its cache, which it otherwise fills one frame at a time, batch 1).
    The position encodings are the same for every frame, so one copy is shared."""
    images = state["images"]
    pos = None
    cache = {}
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk].to(state["device"]).float()
        out = predictor.forward_image(batch)
        if pos is None:
            pos = [p[:1].clone() for p in out["vision_pos_enc"]]
        for j in range(batch.shape[0]):
            cache[start + j] = (batch[j:j + 1], {
                "vision_features": out["vision_features"][j:j + 1].clone(),
                "backbone_fpn": [f[j:j + 1].clone() for f in out["backbone_fpn"]],
                "vision_pos_enc": pos})
        del out
    state["cached_features"] = cache


def sam2_video_state(predictor, frames: Sequence[np.ndarray]) -> dict:
    """`SAM2VideoPredictor.init_state` for frames already in memory (sam2 1.1.0 reads only a JPEG folder
    or an MP4 file: writing 32 frames as JPEGs to read them back cost time and moved every pixel). The
    state is built as init_state builds it; tests/backends check it against init_state on a JPEG folder.
    On a GPU the frames stay on it and the image encoder runs batched over all of them up front."""
    from collections import OrderedDict

    h, w = np.asarray(frames[0]).shape[:2]
    device = predictor.device
    on_gpu = getattr(device, "type", str(device)).startswith("cuda")
    state: dict[str, Any] = {
        "images": sam2_frames_tensor(frames, int(predictor.image_size), device if on_gpu else "cpu"),
        "num_frames": len(frames), "offload_video_to_cpu": not on_gpu, "offload_state_to_cpu": False,
        "video_height": h, "video_width": w, "device": device, "storage_device": device,
        "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {}, "constants": {},
        "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
        "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }
    if on_gpu:
        import torch

        try:
            _prefill_features(predictor, state)
        except torch.cuda.OutOfMemoryError:
            # every frame's features stay on the GPU: a small GPU and a long clip may not hold them all. The predictor
            # then encodes each frame when it reaches it, as it does on the CPU.
            state["cached_features"] = {}
            torch.cuda.empty_cache()
            predictor._get_image_feature(state, frame_idx=0, batch_size=1)
    else:
        predictor._get_image_feature(state, frame_idx=0, batch_size=1)
    return state


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
