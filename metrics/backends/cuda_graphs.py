"""CUDA graphs for SAM2's per-frame modules (video tracking) and per-image modules (image predictor).

SAM2's tracking step is hundreds of small kernels per frame (memory attention, mask decoder, memory
encoder); on an H200 their launches, not the GPU, set its pace (793 ms of CPU for 263 ms of GPU work
over 32 frames). A CUDA graph replays a recorded sequence of kernels with one launch.

`Graphed(fn)` wraps one pure function of tensors: the first call with a new input signature (the
shapes, dtypes and devices of its tensors and the values of everything else) runs `fn` as usual and then
records it into a graph; later calls with that signature copy their inputs into the graph's inputs and
replay it. The memory attention sees a new signature while its memory bank fills (the first 16 frames
of a video), then the same one; every video of a batch has the same signatures, so from the second video
on every frame replays. Outputs are copied out of the graph (SAM2 keeps them in its memory bank and
adds to one in place). A function that cannot be recorded (it reads a value back to the CPU, or copies
from host memory) raises during the recording; that signature then runs eagerly from then on.

The same kernels run either way, so the masks are the same (tests/backends/test_cuda_graphs.py, run on
a GPU machine).

Graphs are recorded only inside `recording()`, which says that one thread alone uses the GPU in this process.
A capture is broken by CUDA work another thread launches meanwhile, and breaks that work: on an H100 with
the pipeline's three scoring threads a process, recording whenever a new signature came failed 230 of 2,000
results ("operation not permitted when stream is capturing", "cannot copy between CPU and CUDA tensors
during CUDA graph capture"), whatever the capture mode. Outside it, a signature not yet recorded runs eagerly
and can be recorded later; a recorded one replays from any thread. The pipeline's GPU processes open it
while their first videos are scored on one thread (curation/pipeline.py).
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable

EAGER = object()          # a signature that could not be recorded
_recording = 0
_recording_lock = threading.Lock()


@contextlib.contextmanager
def recording():
    """Let graphs be recorded: the caller promises that no other thread of this process launches CUDA work
    until the block ends."""
    global _recording
    with _recording_lock:
        _recording += 1
    try:
        yield
    finally:
        with _recording_lock:
            _recording -= 1


def may_record() -> bool:
    return _recording > 0


class Graphed:
    def __init__(self, fn: Callable, name: str, max_graphs: int = 64) -> None:
        self.fn, self.name, self.max_graphs = fn, name, max_graphs
        self.graphs: dict[tuple, Any] = {}
        self.replays = 0
        self.failures: list[str] = []
        self._pool = None
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        import torch
        from torch.utils._pytree import tree_flatten

        leaves, spec = tree_flatten((args, kwargs))
        tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
        if not tensors or any(not t.is_cuda for t in tensors) or torch.is_grad_enabled():
            return self.fn(*args, **kwargs)
        key = (repr(spec), tuple((tuple(x.shape), x.dtype, x.device) if isinstance(x, torch.Tensor) else ("v", x)
                           for x in leaves),
               torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))
        with self._lock:
            entry = self.graphs.get(key)
            if entry is None:
                out = self.fn(*args, **kwargs)
                if len(self.graphs) < self.max_graphs and may_record():
                    self.graphs[key] = self._record(leaves, spec)
                return out
            if entry is EAGER:
                return self.fn(*args, **kwargs)
            return self._replay(entry, tensors)

    def _record(self, leaves: list, spec) -> Any:
        import torch
        from torch.utils._pytree import tree_flatten, tree_unflatten

        static = [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]
        inputs = [x for x in static if isinstance(x, torch.Tensor)]
        s_args, s_kwargs = tree_unflatten(static, spec)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize()
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                out = self.fn(*s_args, **s_kwargs)
        except Exception as exc:  # a sync or a host copy inside fn: this signature stays eager
            self.failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            torch.cuda.synchronize()
            return EAGER
        out_leaves, out_spec = tree_flatten(out)
        return graph, inputs, out_leaves, out_spec

    def _replay(self, entry, tensors: list) -> Any:
        import torch
        from torch.utils._pytree import tree_unflatten

        graph, inputs, out_leaves, out_spec = entry
        for dst, src in zip(inputs, tensors):
            dst.copy_(src)
        graph.replay()
        self.replays += 1
        return tree_unflatten([x.clone() if isinstance(x, torch.Tensor) else x for x in out_leaves], out_spec)

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "graphs": sum(1 for v in self.graphs.values() if v is not EAGER),
                "eager_signatures": sum(1 for v in self.graphs.values() if v is EAGER),
                "replays": self.replays, "failures": self.failures[:3]}


def _install(model, parts: tuple, tag: str) -> list[Graphed]:
    done = getattr(model, tag, None)
    if done is not None:
        return done
    wrappers = []
    for owner, attr, name in parts:
        g = Graphed(getattr(owner, attr), name)
        # an instance attribute: nn.Module.__call__ looks `forward` up on the instance first
        object.__setattr__(owner, attr, g)
        wrappers.append(g)
    object.__setattr__(model, tag, wrappers)
    return wrappers


def graph_sam2_tracking(model) -> list[Graphed]:
    """Route the per-frame modules of a SAM2 video predictor (`model`, on a CUDA device) through CUDA
    graphs. Idempotent. Returns the wrappers (their `stats()` say what was recorded and replayed)."""
    return _install(model, ((model.memory_attention, "forward", "memory_attention"),
                            (model, "_forward_sam_heads", "sam_heads"),
                            (model.memory_encoder, "forward", "memory_encoder")), "_advfx_graphs")


def graph_sam2_image(model) -> list[Graphed]:
    """The same for the model behind a SAM2 image predictor: its image encoder (a fixed 1024 px input, one
    signature) and its prompt encoder and mask decoder (one signature per kind of prompt)."""
    return _install(model, ((model, "forward_image", "image_encoder"),
                            (model.sam_prompt_encoder, "forward", "prompt_encoder"),
                            (model.sam_mask_decoder, "forward", "mask_decoder")), "_advfx_graphs")
