"""skip_init: the initialisers of torch.nn.init do nothing inside it, for the calling thread only."""
from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")


def test_initialisers_leave_tensors_inside_and_work_outside():
    from metrics.backends.skip_init import skip_init, skipping

    t = torch.zeros(64)
    with skip_init():
        assert skipping()
        torch.nn.init.normal_(t)
        torch.nn.init.kaiming_uniform_(t.view(8, 8))
        assert torch.count_nonzero(t) == 0
        mha = torch.nn.MultiheadAttention(8, 2)   # xavier_uniform_ / constant_ imported by torch's module
        mha.in_proj_bias.data.fill_(7.0)
        mha._reset_parameters()
        assert torch.all(mha.in_proj_bias == 7.0)
    assert not skipping()
    torch.nn.init.normal_(t)
    assert torch.count_nonzero(t) == 64
    mha._reset_parameters()
    assert torch.all(mha.in_proj_bias == 0.0)


def test_another_thread_initialises_as_usual_meanwhile():
    from metrics.backends.skip_init import skip_init

    inside, go = threading.Event(), threading.Event()
    seen = {}

    def other():
        inside.wait(5)
        t = torch.zeros(32)
        torch.nn.init.uniform_(t, 1.0, 2.0)
        seen["min"] = float(t.min())
        go.set()

    th = threading.Thread(target=other)
    th.start()
    with skip_init():
        inside.set()
        assert go.wait(5)
        t = torch.zeros(4)
        torch.nn.init.uniform_(t, 1.0, 2.0)
        assert torch.count_nonzero(t) == 0
    th.join()
    assert seen["min"] >= 1.0
