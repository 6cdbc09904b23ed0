"""Builds the Gradio Blocks app: one tab per area, a header with counts and the annotator name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr

from metrics.registry import METRICS
from storage import Workspace, labels

from .serving import LiveRoots
from .service import LabelError, ReviewService
from .ui_bestof import BestOfTab
from .ui_calibration import CalibrationPanel
from .ui_common import annotator_of, counts_html
from .ui_compare import CompareTab
from .ui_images import ImagesTab
from .ui_misc import MiscTabs
from .ui_workspace import WorkspaceJobs
from .ui_videos import VideosTab

STATIC = Path(__file__).parent / "static"


def build_app(ws: Workspace, *, auth_enabled: bool = False, score_at_start: bool = False
              ) -> tuple[gr.Blocks, dict[str, Any]]:
    """The Blocks app and the launch() keyword arguments it needs (css, head, allowed/blocked paths).
    `score_at_start`: score the unscored videos in the background at once (a demo workspace just generated)."""
    # Gradio's queue rebuilds a pandas summary of up to 10,000 past events after every event, for a monitoring
    # page this app does not use; in a labelling session that grows to a tenth of the server's CPU per label
    # (py-spy). Read when the Blocks' queue is created, so set here.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**9))
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
    svc = ReviewService(ws)
    images, videos, compare, misc = ImagesTab(svc), VideosTab(svc), CompareTab(svc), MiscTabs(svc)
    wsjobs = WorkspaceJobs(svc, misc.jobs)
    with gr.Blocks(title="Ad-VFX Curation Studio", fill_width=True) as demo:
        with gr.Row(elem_id="app-header", equal_height=True):
            gr.HTML(f'<div id="app-title"><h1>Ad-VFX Curation Studio</h1><p>workspace '
                    f'<code>{ws.root}</code></p></div>', scale=3)
            counts = gr.HTML(counts_html(svc.ws), scale=3, elem_id="app-counts")
            annotator = gr.Textbox(label="Annotator", placeholder="your name (asked once, kept in this browser)",
                                   scale=1, min_width=160,
                                   elem_id="annotator", interactive=not auth_enabled,
                                   value=None)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Images", id="images", elem_id="tab-images-root"):
                images.build(annotator, counts)
            with gr.Tab("Videos", id="videos", elem_id="tab-videos-root"):
                videos.build(annotator, counts)
                CalibrationPanel(svc, misc.jobs).build()
            with gr.Tab("Best of N", id="bestof", elem_id="tab-bestof-root") as bestof_tab:
                BestOfTab(svc).build(annotator, bestof_tab)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare-root"):
                compare.build(annotator)
            with gr.Tab("Classifier", id="classifier", elem_id="tab-classifier-root") as classifier_tab:
                misc.build_classifier(classifier_tab)
            with gr.Tab("Benchmark", id="benchmark", elem_id="tab-benchmark-root"):
                misc.build_benchmark()
            with gr.Tab("Export", id="export", elem_id="tab-export-root"):
                misc.build_export()
            with gr.Tab("Statistics", id="statistics", elem_id="tab-statistics-root") as stats_tab:
                wsjobs.build()
                misc.build_stats()
            # the label counts there are read again whenever the tab is opened (labels change meanwhile)
            fn_s, outs_s = misc.stats_refresh
            stats_tab.select(fn_s, None, outs_s, api_visibility="private", show_progress="hidden")
        _register_api(svc)

        def on_load(request: gr.Request):
            user = getattr(request, "username", None)
            return gr.update(value=user) if user else gr.skip()

        demo.load(on_load, None, [annotator], api_visibility="private", show_progress="hidden")
        # restore / remember the typed annotator name in this browser; no shared default name: a label must say
        # who made it, so the first label without a name asks for it (labeling.service.require_annotator)
        demo.load(None, None, [annotator], js="() => localStorage.getItem('advfx-annotator') || ''")
        annotator.change(None, [annotator], None, js="(a) => { localStorage.setItem('advfx-annotator', a || ''); }")
        images.on_app_load(demo)
        videos.on_app_load(demo)
        fn_c, outs_c = misc.classifier_refresh
        demo.load(fn_c, None, outs_c, api_visibility="private", show_progress="hidden")
        compare.on_app_load(demo, annotator)
        gr.Timer(15).tick(lambda: counts_html(svc.ws), None, [counts], api_visibility="private",
                          show_progress="hidden")
    demo.svc = svc  # type: ignore[attr-defined]
    demo.jobs = misc.jobs  # type: ignore[attr-defined]
    if score_at_start:
        wsjobs.start_scoring()
    roots = LiveRoots(ws, [str(ws.root)])
    launch_kw = {
        "css": (STATIC / "app.css").read_text(encoding="utf-8"),
        "head": "".join("<script>" + (STATIC / f).read_text(encoding="utf-8") + "</script>"
                        for f in ("keys.js", "grid.js", "player.js", "bestof.js")),
        "allowed_paths": roots,
        "blocked_paths": [str(ws.db_path), str(ws.db_path) + ".wal", str(ws.root / "runs"),
                          str(ws.root / "models")],
        "theme": gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                                font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"]),
        # Gradio 6's run history keeps the last 100 public calls, with their inputs and outputs (~8 kB each here),
        # as one JSON array in localStorage, and re-parses and re-writes it several times per call: ~50 ms of the
        # page's main thread per key press once full (after ~100 labels; it survives reloads). keys.js deletes
        # what earlier sessions saved, annotator names and notes included.
        "run_history": False,
    }
    return demo, launch_kw


def _plain(row: dict) -> dict:
    """JSON-safe row; 'path' is renamed 'media_path' (gradio_client treats a dict with 'path' as a file)."""
    return {("media_path" if k == "path" else k): (v if isinstance(v, (int, float, str, list, type(None))) else str(v))
            for k, v in row.items()}


def _register_api(svc: ReviewService) -> None:
    """Programmatic endpoints (no UI): what gradio_client, the load test and scripts call. A refused request (a
    bad id, a blank annotator) is a gr.Error without a traceback in the log: an answer, not a crash."""

    def label(item_kind: str, item_id: int, value: str, annotator: str, reasons: list[str] | None = None,
              note: str | None = None, client_key: str | None = None, request: gr.Request = None) -> dict:
        """Append one label event (durable when this returns). Returns {event_id, duplicate, ...}.
        With a login the event carries the logged-in user, whatever `annotator` says."""
        try:
            item_id = int(item_id)
        except (TypeError, ValueError):     # a bad id from a script gets a message, not a server error
            raise gr.Error(f"item id must be a whole number, got {item_id!r}", print_exception=False) from None
        try:
            return svc.label(item_kind=item_kind, item_id=item_id, value=value,
                             annotator=annotator_of(request, annotator),
                             reasons=reasons or [], note=note, client_key=client_key)
        except LabelError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def label_many(item_ids: list[int], value: str, reasons: list[str] | None = None, annotator: str = "",
                   client_key: str | None = None, item_kind: str = "image", request: gr.Request = None) -> dict:
        """Label many items in one action: one event per item, one batch that one /undo takes back whole.
        Returns {labelled, duplicate, value, item_ids, batch, ...}; a retried client_key adds nothing."""
        try:
            return svc.label_many(item_ids=item_ids, value=value, reasons=reasons or [], item_kind=item_kind,
                                  annotator=annotator_of(request, annotator), client_key=client_key)
        except LabelError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def undo(annotator: str, item_kind: str = "image", client_key: str | None = None,
             request: gr.Request = None) -> dict:
        """Undo this annotator's latest label of this kind. Returns the undone event, or {} if none."""
        try:
            return svc.undo(annotator=annotator_of(request, annotator), item_kinds=(item_kind,), client_key=client_key) or {}
        except LabelError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def image_queue(order: str = "uncertainty", label_state: str = "unlabelled", category_id: int | None = None,
                    score_min: float | None = None, score_max: float | None = None, failed_filter: str | None = None,
                    annotator: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        """The image review queue (ids, paths, scores, labels, failed filters)."""
        rows = svc.image_queue(order=order, label_state=label_state, category_id=category_id, score_min=score_min,
                               score_max=score_max, failed_filter=failed_filter or None, annotator=annotator or None,
                               limit=int(limit), offset=int(offset))
        return {"items": [_plain(r) for r in rows]}

    def video_queue(label_state: str = "any", model: str | None = None, metric: str | None = None,
                    metric_min: float | None = None, metric_max: float | None = None, limit: int = 50,
                    offset: int = 0, order: str = "id") -> dict:
        """Videos with metric values (fractions 0-1), filtered by label state, model and one metric's range;
        order: id | newest | metric | disagreement (metric vs designer: rows carry the calibration's p_accept)."""
        rows = svc.video_queue(label_state=label_state, model=model or None, metric=metric or None,
                               metric_min=metric_min, metric_max=metric_max, limit=int(limit), offset=int(offset),
                               order=order or "id")
        # one column per metric (None when not scored), as scripts read them
        return {"items": [_plain({**{k: v for k, v in r.items() if k != "metrics"},
                                  **{m: r["metrics"].get(m) for m in METRICS}}) for r in rows]}

    def current_label(item_kind: str, item_id: int) -> dict:
        """An item's label under the label rule, or {}: value (the decision), n_pos, n_neg, annotators, and the
        annotator, event_id, reasons and note of its newest counted label."""

        row = labels.label_summary(svc.ws, item_kind, int(item_id)) or {}
        return {k: (v if isinstance(v, (int, float, str, list, type(None))) else str(v)) for k, v in row.items()}

    gr.api(label, api_name="label", queue=False)
    gr.api(label_many, api_name="label_many", queue=False)
    gr.api(undo, api_name="undo", queue=False)
    gr.api(image_queue, api_name="image_queue", concurrency_limit=None)
    gr.api(video_queue, api_name="video_queue", concurrency_limit=None)
    gr.api(current_label, api_name="current_label", concurrency_limit=None)
