"""Long operations (scoring, training, export, benchmark) in a background thread, with progress and cancel.

A handler starts a job and then yields progress lines while it runs (a Gradio generator), so the page shows
progress; the Cancel button sets the job's cancel event, which the operation checks between steps. The
operations follow curation.jobs' protocol: a job hands them `job.progress` and `job.cancel`.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from curation.jobs import Cancelled, Refused


@dataclass
class Job:
    name: str
    cancel: threading.Event = field(default_factory=threading.Event)
    lines: list[str] = field(default_factory=list)
    fraction: float | None = None
    result: Any = None
    error: str | None = None
    refused: bool = False         # error is a Refused's message: what to do, not a failure to report
    done: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)

    def progress(self, fraction: float | None, msg: str) -> None:
        """The operation's progress callback (curation.jobs.Progress). It never raises: the operation checks
        `cancel` itself at its own safe points (a raise inside a metric would lose finished work)."""
        self.lines.append(str(msg))
        del self.lines[:-200]
        if fraction is not None:
            self.fraction = float(fraction)


class JobRunner:
    """At most one running job per key (e.g. 'score', 'train'); others wait their turn or are refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}

    def start(self, key: str, name: str, fn: Callable[[Job], Any]) -> Job:
        with self._lock:
            cur = self.jobs.get(key)
            if cur is not None and not cur.done.is_set():
                raise RuntimeError(f"{cur.name} is already running; wait for it or cancel it")
            job = Job(name)
            self.jobs[key] = job

        def run() -> None:
            try:
                job.result = fn(job)
            except Cancelled:
                job.error = "cancelled"
            except Refused as exc:
                job.error, job.refused = str(exc), True
            except Exception as exc:  # noqa: BLE001 - shown to the user
                job.error = f"{type(exc).__name__}: {exc}"
                job.lines.append(traceback.format_exc(limit=3))
            finally:
                job.done.set()

        threading.Thread(target=run, name=f"job-{key}", daemon=True).start()
        return job

    def cancel(self, key: str) -> bool:
        job = self.jobs.get(key)
        if job is None or job.done.is_set():
            return False
        job.cancel.set()
        return True

    def follow(self, job: Job, render: Callable[[Job], Any], every: float = 0.4) -> Iterator[Any]:
        """Yield render(job) while it runs and once at the end."""
        while not job.done.wait(every):
            yield render(job)
        yield render(job)


def progress_md(job: Job, tail: int = 6) -> str:
    el = time.monotonic() - job.started
    head = f"**{job.name}** — "
    if not job.done.is_set():
        pct = f" {100 * job.fraction:.0f}%" if job.fraction is not None else ""
        head += f"running{pct} ({el:.0f} s)"
    elif job.error == "cancelled":
        head += f"cancelled after {el:.0f} s"
    elif job.refused:
        head += job.error or ""
    elif job.error:
        head += f"**failed**: {job.error}"
    else:
        head += f"done in {el:.1f} s"
    body = "\n".join(job.lines[-tail:])
    return head + (f"\n\n```\n{body}\n```" if body else "")
