"""Workspace jobs from the app: the image filters, the near-duplicate search and the scoring of unscored videos,
the same code paths as `python -m curation filters | dedup | score`, in the background with progress and
cancel. An app that generated its demo workspace scores the demo's videos at start, so the metric filters and
the scorecards work at first use without a command line."""
from __future__ import annotations

import json
from typing import Any, Callable

import gradio as gr

from curation.duplicates import dedup
from curation.executors import run_scoring
from curation.filter_runs import run_filters

from .jobs import JobRunner, progress_md
from .service import ReviewService
from .ui_misc import MiscTabs

SCORE = ("score-unscored", "Scoring unscored videos")


class WorkspaceJobs(MiscTabs):
    """Reuses MiscTabs' background-job section (one running job per key, progress, cancel) and its runner, so
    a job started here and one started on the other tabs are listed and refused alike."""

    def __init__(self, svc: ReviewService, jobs: JobRunner) -> None:
        super().__init__(svc)
        self.jobs = jobs

    def _follow_or_start(self, key: str, title: str, work: Callable[[Any], Any]):
        cur = self.jobs.jobs.get(key)
        if cur is not None and not cur.done.is_set():
            # already running (the demo's scoring the app started itself): show it instead of refusing
            for md in self.jobs.follow(cur, progress_md):
                yield md, gr.skip(), gr.skip()
            res = json.dumps(cur.result, indent=1, default=str)[:20000] if cur.result is not None else ""
            yield progress_md(cur), res, []
            return
        yield from self._job(key, title, work)

    def _score(self, job) -> Any:
        return run_scoring(self.svc.ws, progress=job.progress, cancel=job.cancel)

    def h_filters(self, request: gr.Request):
        yield from self._follow_or_start("filters", "Running the image filters",
                                         lambda job: run_filters(self.svc.ws, progress=job.progress,
                                                                 cancel=job.cancel))

    def h_dedup(self, request: gr.Request):
        yield from self._follow_or_start("dedup", "Finding near-duplicate images",
                                         lambda job: dedup(self.svc.ws, progress=job.progress, cancel=job.cancel))

    def h_score(self, request: gr.Request):
        yield from self._follow_or_start(*SCORE, self._score)

    def start_scoring(self) -> None:
        """Score every unscored video now, in the background (the app's own start on a fresh demo workspace)."""
        self.jobs.start(*SCORE, self._score)

    def build(self) -> None:
        gr.Markdown("#### Workspace jobs\nThe image filters (blur, collage, text clutter, product saliency), the "
                    "near-duplicate groups and the metrics of every video not scored yet: each runs in the "
                    "background, keeps what it finished when cancelled, and skips what is already up to date.")
        with gr.Accordion("Run the image filters", open=False):
            self._section("filters", "Run the image filters", self.h_filters, [], "filters_run")
        with gr.Accordion("Find near-duplicate images", open=False):
            self._section("dedup", "Find near-duplicates", self.h_dedup, [], "dedup_run")
        with gr.Accordion("Score unscored videos", open=False):
            self._section(SCORE[0], "Score unscored videos", self.h_score, [], "score_unscored_run")
