"""The Images tab: queue with filters, large view with toggleable overlays, one-key labelling."""
from __future__ import annotations

import time
from typing import Any

import gradio as gr

from curation import overlays as ovl
from storage import images
from storage import review_store as rs

from . import render
from .service import IMAGE_REASONS
from .ui_common import (JUMP_JS, QueueTab, counts_html, key_js, locked, nav_current, new_nav, session_of,
                        shown_js)
from .ui_grid import GridView, thumb_src

ORDERS = [("Uncertainty (closest to threshold)", "uncertainty"), ("Score high → low", "score"), ("Score low → high", "score_asc"),
          ("Newest first", "newest"), ("Catalogue order", "id"),
          ("Classifier vs designer (labelled: disagree most first)", "disagreement")]
LABEL_STATES = [("Unlabelled", "unlabelled"), ("Labelled", "labelled"), ("Good", "good"), ("Bad", "bad"),
                ("Any", "any")]
OVERLAYS = ["Product mask", "OCR boxes", "Filter flags", "Classifier score"]


def _filters(order: str, label_state: str, category: Any, score_min: Any, score_max: Any, failed: Any,
             annotator_filter: Any, diverse: bool) -> dict[str, Any]:
    def num(x: Any) -> float | None:
        if x is None or x == "":
            return None
        return float(x) / 100.0

    # disagreement needs a designer's label: on the unlabelled queue it would order nothing
    if order == "disagreement" and label_state in (None, "", "unlabelled"):
        label_state = "labelled"
    return {"order": order or "uncertainty", "label_state": label_state or "unlabelled",
            "category_id": int(category) if category not in (None, "", 0) else None,
            "score_min": num(score_min) if score_min not in (None, 0) else None,
            "score_max": num(score_max) if score_max not in (None, 100) else None,
            "failed_filter": failed or None, "annotator": annotator_filter or None, "diverse": bool(diverse)}


class ImagesTab(QueueTab):
    kind = "image"
    n_view = 3

    def __init__(self, svc) -> None:
        super().__init__(svc)
        self.grid = GridView(svc, _filters)

    def queue(self, **kw: Any) -> list[dict[str, Any]]:
        return self.svc.image_queue(**kw)

    # -- rendering -----------------------------------------------------------------------------
    def view(self, st: dict[str, Any], session: str, toggles: list[str] | None = None) -> tuple[str, str, str]:
        iid = nav_current(st)
        self.sessions.set(session, iid)
        progress = self.progress_html()
        if iid is None:
            msg = ("No images match these filters." if not st["hist"] else
                   "Queue done — every image matching these filters has been reviewed. "
                   "Change the filters or press ← to go back.")
            return render.empty_state("Nothing to review", msg), "", progress
        card = rs.image_card(self.svc.ws, iid)
        if card is None:
            return render.empty_state("Image not found", f"image {iid} is not in the workspace"), "", progress
        root = self.svc.root
        disp = ovl.display_path(root, card["sha256"], card["path"], card["width"], card["height"], card["bytes"])
        cached = ovl.cached_image_overlays(root, card["sha256"])
        want = toggles is None or any(t in toggles for t in ("Product mask", "OCR boxes"))
        pending = False
        if cached is None and want:
            self.svc.worker.submit(card["sha256"], ovl.compute_image_overlays, root, card["sha256"], card["path"],
                                   card.get("product"))
            pending = True
        pos = f"{st['i'] + 1} of {len(st['hist']) + len(st['queue'])}{'+' if not st['exhausted'] else ''} in queue"
        return (render.image_view(card, disp, cached, pending=pending, position=pos),
                render.image_info(card, cached), progress)

    def progress_html(self, fresh: bool = False) -> str:
        """The progress line. On the key-press path the count may be up to a second old (a full count costs tens
        of ms at 100,000 images); the follow-up after every label redraws it with fresh=True (kept up to date
        incrementally, a few ms)."""
        prog = rs.label_progress_live(self.svc.ws, "image") if fresh else rs.label_progress_cached(self.svc.ws, "image")
        return render.progress_line(prog, "images labelled", {"good": "good", "bad": "bad"})

    def gallery(self, st: dict[str, Any]) -> str:
        """The next items as small pictures (file URLs; thumbnails cached under thumbs/ only for large images)."""
        ids = (st["hist"][st["i"] + 1:] + st["queue"])[:12]
        rows = images.thumb_rows(self.svc.ws, ids) if ids else {}
        thumbs = []
        for i in ids:
            r = rows.get(i)
            if r is None:
                continue
            try:
                thumbs.append((i, thumb_src(self.svc.root, r[1], r[2], r[3], r[4])))
            except Exception:  # noqa: BLE001 - an unreadable file shows no thumbnail; the view says why
                continue
        return render.upnext_strip(thumbs)

    # -- handlers (thin; named API endpoints) -------------------------------------------------
    def h_load(self, order, label_state, category, score_min, score_max, failed, ann_filter, diverse, toggles,
               request: gr.Request):
        st = new_nav(_filters(order, label_state, category, score_min, score_max, failed, ann_filter, diverse))
        self.advance(st)
        v, info, prog = self.view(st, session_of(request), toggles)
        return st, v, info, prog, self.gallery(st), ""

    def h_good(self, st, reasons, note, annotator, client_key, toggles, request: gr.Request):
        return self._label("good", st, reasons, note, annotator, client_key, toggles, request)

    def h_bad(self, st, reasons, note, annotator, client_key, toggles, request: gr.Request):
        return self._label("bad", st, reasons, note, annotator, client_key, toggles, request)

    def h_after(self, st):
        """Once a new item is on screen (the page asks, debounced, after drawing it: off the key-press path):
        the fresh progress line, the up-next strip, the last message and the header counts."""
        return (self.progress_html(fresh=True), self.gallery(st or new_nav()), (st or {}).get("msg", ""),
                counts_html(self.svc.ws))

    def h_overlays(self, st, toggles, request: gr.Request):
        """While the view says overlays are being computed (the page asks): wait for them in the worker,
        then redraw."""
        out = self._overlays_when_ready(st, toggles, request)
        return (gr.skip(), gr.skip()) if out is None else out

    def _overlays_when_ready(self, st, toggles, request: gr.Request) -> tuple[str, str] | None:
        """(view, info) once the current image's overlays are cached; None when nothing needs redrawing."""
        iid = nav_current(st)
        if iid is None:
            return None
        sha = images.sha256_of(self.svc.ws, iid)
        if sha is None or ovl.cached_image_overlays(self.svc.root, sha) is not None:
            return None
        if toggles is not None and not any(t in toggles for t in ("Product mask", "OCR boxes")):
            return None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.sessions.get(session_of(request)) != iid:
                return None
            if ovl.cached_image_overlays(self.svc.root, sha) is not None:
                break
            if not self.svc.worker.pending(sha):
                card = rs.image_card(self.svc.ws, iid)
                fut = self.svc.worker.submit(sha, ovl.compute_image_overlays, self.svc.root, sha, card["path"],
                                             card.get("product"))
                try:
                    fut.result(timeout=60)
                except Exception as exc:  # noqa: BLE001
                    gr.Warning(f"Overlays failed: {exc}")
                    return None
            time.sleep(0.1)
        if self.sessions.get(session_of(request)) != iid:
            return None
        v, info, _ = self.view(st, session_of(request), toggles)
        return v, info

    # -- layout --------------------------------------------------------------------------------
    @staticmethod
    def _single_view() -> tuple:
        """One image at a time: the view with its overlays, the label keys, reasons and note; the info card."""
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                progress = gr.HTML(elem_id="img-progress")
                # the label keys and reasons above the item: at 1600x900 and 1440x900 they stay in view with it
                with gr.Row(elem_classes=["actions"]):
                    prev = gr.Button("← Prev", elem_id="img-prev", size="lg", min_width=80)
                    good = gr.Button("Good  [G]", variant="primary", elem_id="img-good", size="lg",
                                     elem_classes=["btn-good"])
                    bad = gr.Button("Bad  [B]", variant="stop", elem_id="img-bad", size="lg", elem_classes=["btn-bad"])
                    skip = gr.Button("Skip  [S]", elem_id="img-skip", size="lg")
                    undo = gr.Button("Undo  [Z]", elem_id="img-undo", size="lg")
                    nxt = gr.Button("Next →", elem_id="img-next", size="lg", min_width=80)
                reasons = gr.CheckboxGroup(IMAGE_REASONS, label="Reasons (optional)", elem_id="img-reasons",
                                           show_label=False,
                                           elem_classes=["compact-reasons"])
                view = gr.HTML(render.empty_state("Loading…", "fetching the review queue"), elem_id="image-view",
                               min_height=300, js_on_load=shown_js(".iv", ".ov-status"))
                toggles = gr.CheckboxGroup(OVERLAYS, value=OVERLAYS, label="Overlays", elem_id="img-overlays")
                note = gr.Textbox(label="Note", placeholder="optional note (keys are off while typing)",
                                  elem_id="img-note", lines=1)
                status = gr.Markdown(elem_id="img-status")
            with gr.Column(scale=1, min_width=260):
                info = gr.HTML(elem_id="img-info")
        return progress, view, toggles, prev, good, bad, skip, undo, nxt, reasons, note, status, info

    def build(self, annotator: gr.Textbox, counts: gr.HTML) -> None:
        ws = self.svc.ws
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240, elem_classes=["sidebar"]):
                gr.Markdown("#### Queue")
                order = gr.Dropdown(ORDERS, value="uncertainty", label="Order", elem_id="img-order")
                label_state = gr.Dropdown(LABEL_STATES, value="unlabelled", label="Label state",
                                          elem_id="img-label-state")
                category = gr.Dropdown([("All categories", 0)] + rs.category_choices(ws), value=0, label="Category")
                with gr.Row():
                    score_min = gr.Number(value=0, minimum=0, maximum=100, label="Score ≥ %", min_width=80)
                    score_max = gr.Number(value=100, minimum=0, maximum=100, label="Score ≤ %", min_width=80)
                failed = gr.Dropdown([("Any result", ""), ("Failed any filter", "any")]
                                     + [(f"Failed: {f}", f) for f in rs.failed_filter_names(ws)],
                                     value="", label="Filters")
                ann_filter = gr.Dropdown([("Anyone", "")] + [(a, a) for a in rs.annotators(ws)], value="",
                                         label="Labelled by", allow_custom_value=True)
                diverse = gr.Checkbox(value=False, label="Diverse batch (no near-copies)")
                apply = gr.Button("Apply filters", variant="secondary", elem_id="img-apply")
                gr.Markdown("#### Up next")
                gallery = gr.HTML(elem_id="img-upnext", js_on_load=JUMP_JS)
            with gr.Column(scale=4, min_width=420), gr.Tabs(elem_id="img-modes"):
                with gr.Tab("One at a time", id="img-one", elem_id="tab-img-one-root") as one_tab:
                    (progress, view, toggles, prev, good, bad, skip, undo, nxt, reasons, note, status,
                     info) = self._single_view()
                with gr.Tab("Grid", id="img-grid", elem_id="tab-img-grid-root") as grid_tab:
                    self.grid.build([order, label_state, category, score_min, score_max, failed, ann_filter,
                                     diverse], annotator, apply, grid_tab)
        st = gr.State(new_nav())
        client_key = gr.Textbox(visible=False)
        filt = [order, label_state, category, score_min, score_max, failed, ann_filter, diverse, toggles]
        outs_nav = [st, view, info, progress]
        # The key-press path is one direct request (queue=False: a POST answered with the outputs, no queue
        # join + event stream) with few outputs; the rest follows in `h_after`, which the page asks for once
        # the new item is drawn, and the overlays in `h_overlays` while they are still computing (`shown_js`).
        fast = dict(concurrency_limit=None, show_progress="hidden", queue=False)
        view.shown(self.h_after, [st], [progress, gallery, status, counts], show_progress="hidden",
                   api_visibility="private", queue=False, trigger_mode="always_last")
        view.pending(self.h_overlays, [st, toggles], [view, info], show_progress="hidden", api_visibility="private",
                     concurrency_limit=4, concurrency_id="overlays", trigger_mode="always_last")

        apply.click(self.h_load, filt, outs_nav + [gallery, status], api_name="images_load")
        self.load_args = (self.h_load, filt, outs_nav + [gallery, status])
        # back from the grid: the queue again, without what was labelled there
        one_tab.select(self.h_load, filt, outs_nav + [gallery, status], api_visibility="private",
                       show_progress="hidden")
        label_in = [st, reasons, note, annotator, client_key, toggles]
        label_out = outs_nav + [reasons, note]
        for btn, fn, name in ((good, self.h_good, "image_good"), (bad, self.h_bad, "image_bad"),
                              (skip, self.h_skip, "image_skip")):
            btn.click(fn, label_in, label_out, api_name=name, js=key_js(4, len(label_in), "#image-view .iv"),
                      trigger_mode="multiple", **fast)
        undo.click(locked(self.locks, self.h_undo), [st, annotator, client_key, toggles], outs_nav,
                   api_name="image_undo", js=key_js(2, 4), **fast)
        prev.click(locked(self.locks, self.h_prev), [st, toggles], outs_nav, api_name="image_prev", **fast)
        nxt.click(locked(self.locks, self.h_next), [st, toggles], outs_nav, api_name="image_next", **fast)
        gallery.jump(locked(self.locks, self.h_jump), [st, toggles], outs_nav, api_visibility="private", **fast)
        toggles.change(None, [toggles], None, js=TOGGLE_JS)


TOGGLE_JS = """(t) => {
  const map = {"Product mask": "mask", "OCR boxes": "ocr", "Filter flags": "flags", "Classifier score": "score"};
  for (const [k, v] of Object.entries(map)) document.body.classList.toggle("hide-" + v, !(t || []).includes(k));
  return [];
}"""
