"""The folders the app may serve files from: the workspace and every media root the catalogue registers,
read again while the app runs.

Gradio reads `Blocks.allowed_paths` on every file request and every returned file, so a list that refreshes
itself from the catalogue lets media ingested after the app started (another folder, a generation hand-off
coming back) show at once instead of as broken images until a restart. The blocked paths still take
precedence (Gradio checks them first)."""
from __future__ import annotations

import threading
import time
from typing import Iterator

from storage import Workspace, catalog

REFRESH_S = 1.0        # a grid of 48 tiles asks 48 times in a burst: one catalogue read serves them all


class LiveRoots(list):
    """A list of root paths (Gradio checks `isinstance(allowed_paths, list)`) that re-reads the catalogue's
    media roots at most every REFRESH_S seconds when it is iterated or added to."""

    def __init__(self, ws: Workspace, fixed: list[str]) -> None:
        super().__init__(fixed)
        self._ws, self._lock, self._at = ws, threading.Lock(), 0.0
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._at < REFRESH_S:
            return
        with self._lock:
            self._at = now
            try:
                roots = catalog.media_roots(self._ws)
            except Exception:          # a closed or busy workspace: keep serving the roots known so far
                return
            known = set(list.__iter__(self))
            list.extend(self, [r for r in roots if r not in known])

    def __iter__(self) -> Iterator[str]:
        self.refresh()
        return list.__iter__(self)

    def __add__(self, other):          # Gradio's `allowed_paths + [cwd, tmp]`
        self.refresh()
        return list(list.__iter__(self)) + list(other)
