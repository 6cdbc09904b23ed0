"""The one protocol every long action follows (scoring, filters, embedding, dedup, training, export, benchmark).

- progress: ``progress(fraction, message)``; fraction in [0, 1] of this action, or None when unknown.
- cancel: a ``threading.Event``; the action checks it between steps and raises ``Cancelled``, keeping what it
  already wrote (results are stored as they are computed).
- errors: raised as exceptions; the caller (CLI or app job runner) decides how to show them. ``Refused`` is the
  expected kind (the action cannot run as asked, e.g. too few labels): its message alone is shown, no traceback.

An action that runs another as a part of it hands it ``sub(progress, lo, hi)`` so the inner fractions land in
its own range.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable, Optional

Progress = Callable[[Optional[float], str], None]


class Cancelled(Exception):
    """The action stopped because its cancel event was set; what was stored before stays."""


class Refused(Exception):
    """The action cannot run as asked (too few labels, ...); the message says why and what to do."""


def check(cancel: threading.Event | None, what: str) -> None:
    """Raise Cancelled("<what> cancelled ...") when the event is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{what} cancelled")


def quiet(fraction: float | None, message: str) -> None:
    """The progress callback of an action nobody watches."""


def to_stderr(fraction: float | None, message: str) -> None:
    """The CLI's progress callback: one line per message on stderr."""
    print(message if fraction is None else f"[{100 * fraction:5.1f}%] {message}", file=sys.stderr, flush=True)


def sub(progress: Progress | None, lo: float, hi: float) -> Progress:
    """progress for a part of an action that spans [lo, hi] of the whole."""
    outer = progress or quiet

    def inner(fraction: float | None, message: str) -> None:
        outer(None if fraction is None else lo + (hi - lo) * min(1.0, max(0.0, float(fraction))), message)
    return inner


__all__ = ["Progress", "Cancelled", "Refused", "check", "quiet", "to_stderr", "sub"]
