"""Build a model without drawing random weights that a checkpoint overwrites at once.

open_clip builds CLIP with every layer randomly initialised, then loads the checkpoint over it (strictly:
every parameter and persistent buffer must be in the file, or loading fails). For ViT-L/14 the drawing was
14 of the 23 s that loading took on the 2-core box, in every process that loads it (each GPU process of a
scoring run, the app). Inside `skip_init()` the initialisers of `torch.nn.init` leave their tensor as it
is: only for the calling thread, so a model another thread builds meanwhile is initialised as usual. Use it
only around a build whose every parameter a strict load then sets."""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()
_install_lock = threading.Lock()
_installed = False
# the in-place initialisers layers call through `torch.nn.init` (Linear, Conv, MultiheadAttention, LayerNorm
# reset their parameters with these)
_NAMES = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
          "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        import torch.nn.init as init
        import torch.nn.modules.activation as activation

        for name in _NAMES:
            orig = getattr(init, name, None)
            if orig is None:
                continue

            def skipping(tensor, *args, _orig=orig, **kwargs):
                if getattr(_state, "depth", 0):
                    return tensor
                return _orig(tensor, *args, **kwargs)

            skipping.__name__, skipping.__doc__, skipping.__wrapped__ = name, orig.__doc__, orig
            setattr(init, name, skipping)
            # MultiheadAttention calls the names it imported from torch.nn.init
            if getattr(activation, name, None) is orig:
                setattr(activation, name, skipping)
        _installed = True


def skipping() -> bool:
    """Whether the calling thread is inside `skip_init()`."""
    return bool(getattr(_state, "depth", 0))


@contextlib.contextmanager
def skip_init():
    _install()
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
