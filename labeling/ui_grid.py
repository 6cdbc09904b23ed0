"""Images → Grid: a page of 24 or 48 thumbnails from the Images tab's queue and filters, labelled many at a time.

The cursor and the selection live in the browser (static/grid.js: arrows, click, shift-click, A, Esc, Space);
a label action sends the chosen ids with one idempotency key, and the server writes one event per item as one
batch (ReviewService.label_many), which Z takes back whole (ReviewService.undo). Pages come from the same
queue walk as the single view (nav_refill), so labelled items leave an "unlabelled" queue and skipped ones
are not shown twice.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from curation import overlays as ovl
from storage import classifier_runs, labels
from storage import review_store as rs

from . import render, render_grid
from .service import IMAGE_REASONS, LabelError, ReviewService
from .ui_common import SessionLocks, annotator_of, key_js, locked, new_nav, nav_refill, session_of

PAGE_SIZES = [("24", 24), ("48", 48)]
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".webp")


def thumb_src(root: Path, sha: str, path: str, width: int | None, height: int | None) -> str:
    """The picture a small tile shows: the original when small and browser-friendly, else a cached thumbnail."""
    if max(width or 0, height or 0) > 512 or not str(path).lower().endswith(BROWSER_FORMATS):
        return str(ovl.thumbnail(root, sha, path))
    return str(path)


def _src(root: Path, r: dict[str, Any]) -> str:
    try:
        return thumb_src(root, r["sha256"], r["path"], r.get("width"), r.get("height"))
    except Exception:  # noqa: BLE001 - an unreadable file: its tile shows a broken picture, the page still loads
        return str(r["path"])


def new_grid(filters: dict[str, Any], size: int, threshold: float) -> dict[str, Any]:
    """Per-session grid state: the queue walk (nav), the pages shown (lists of ids), the current page p, the
    rows of the items on them, the page size, the classifier threshold, a load serial (the browser resets its
    cursor and selection when the page or the load changes)."""
    return {"nav": new_nav(filters), "pages": [], "p": -1, "rows": {}, "size": int(size or 24),
            "threshold": threshold, "gen": 0, "msg": ""}


def parse_targets(raw: str | None) -> tuple[list[int], str | None]:
    """What grid.js sends with a label action: {"ids": [...], "key": "..."} -> (ids, key)."""
    try:
        data = json.loads(raw or "{}")
        return [int(i) for i in data.get("ids") or []], (data.get("key") or None)
    except (ValueError, TypeError, AttributeError):
        return [], None


class GridView:
    """The grid inside the Images tab. `to_filters` turns the Images tab's filter inputs into queue filters."""

    def __init__(self, svc: ReviewService, to_filters: Callable[..., dict[str, Any]]) -> None:
        self.svc = svc
        self.to_filters = to_filters
        self.locks = SessionLocks()

    # -- pages -----------------------------------------------------------------------------------
    def _fetch(self, st: dict[str, Any]) -> Callable[[int, int], list[int]]:
        def fetch(offset: int, limit: int) -> list[int]:
            rows = self.svc.image_queue(**st["nav"]["filters"], limit=limit, offset=offset)
            for r in rows:
                st["rows"][int(r["id"])] = {
                    "id": int(r["id"]), "product": r.get("product"), "score": r.get("score"),
                    "failed_filters": list(r.get("failed_filters") or []),
                    "failed_reasons": list(r.get("failed_reasons") or []),
                    "src": _src(self.svc.root, r)}
            return [int(r["id"]) for r in rows]
        return fetch

    def turn(self, st: dict[str, Any], delta: int) -> None:
        """Go `delta` pages (±1); past the last page shown, the next `size` items of the queue form a new page."""
        if delta < 0:
            st["p"] = max(0, st["p"] - 1)
            return
        if st["p"] < len(st["pages"]) - 1:
            st["p"] += 1
            return
        nav, size = st["nav"], st["size"]
        for _ in range(size):      # each refill adds new ids or moves the offset on; bounded all the same
            if len(nav["queue"]) >= size or nav["exhausted"]:
                break
            nav_refill(nav, self._fetch(st))
        page = nav["queue"][:size]
        if not page:
            st["p"] = len(st["pages"])     # past the end: "nothing to review"
            return
        del nav["queue"][:size]
        nav["seen"].extend(page)
        st["pages"].append(page)
        st["p"] = len(st["pages"]) - 1
        keep = {i for pg in st["pages"] for i in pg} | set(nav["queue"])
        st["rows"] = {i: r for i, r in st["rows"].items() if i in keep}

    def page_html(self, st: dict[str, Any] | None, annotator: str, done_key: str = "",
                  focus: int | None = None) -> str:
        if not st:
            return render.empty_state("Grid not loaded", "press Apply filters")
        ids = st["pages"][st["p"]] if 0 <= st["p"] < len(st["pages"]) else []
        decided = labels.resolved_labels(self.svc.ws, "image", ids) if ids else {}
        own = labels.annotator_values(self.svc.ws, "image", ids, annotator)
        tiles = [{**st["rows"][i], "own": own.get(i), "decided": decided.get(i)} for i in ids if i in st["rows"]]
        empty = ("No images match these filters." if not st["pages"] else
                 "Queue done — every image matching these filters has been shown. Change the filters or press P.")
        return render_grid.grid_page(tiles, threshold=st["threshold"], page=st["p"], gen=st["gen"],
                                     done_key=done_key, focus=focus, empty=empty)

    def status_html(self, notice: str = "", msg: str = "") -> str:
        # the live count (kept up to date incrementally, a few ms): after a batch it must show the batch
        prog = rs.label_progress_live(self.svc.ws, "image")
        line = render.progress_line(prog, "images labelled", {"good": "good", "bad": "bad"})
        return (render.notice(notice) if notice else "") + line + (f'<div class="muted">{render.esc(msg)}</div>'
                                                                    if msg else "")

    def _answer(self, st, annotator, request, *, done_key="", focus=None, notice="", msg=""):
        who = annotator_of(request, annotator)
        return st, self.page_html(st, who, done_key, focus), self.status_html(notice, msg)

    # -- handlers (thin) ---------------------------------------------------------------------------
    def h_load(self, order, label_state, category, score_min, score_max, failed, ann_filter, diverse, size,
               annotator, request: gr.Request):
        run = classifier_runs.get_run(self.svc.ws)
        filters = self.to_filters(order, label_state, category, score_min, score_max, failed, ann_filter, diverse)
        st = new_grid(filters, size, float((run or {}).get("threshold") or 0.5))
        st["gen"] = time.monotonic_ns()      # a new load: the browser starts a fresh cursor and selection
        self.turn(st, +1)
        return self._answer(st, annotator, request)

    def h_next(self, st, annotator, request: gr.Request):
        if st:
            self.turn(st, +1)
        return self._answer(st, annotator, request)

    def h_prev(self, st, annotator, request: gr.Request):
        if st:
            self.turn(st, -1)
        return self._answer(st, annotator, request)

    def h_good(self, st, targets, reasons, annotator, request: gr.Request):
        return self._label("good", st, targets, reasons, annotator, request)

    def h_bad(self, st, targets, reasons, annotator, request: gr.Request):
        return self._label("bad", st, targets, reasons, annotator, request)

    def h_skip(self, st, targets, reasons, annotator, request: gr.Request):
        return self._label("skip", st, targets, reasons, annotator, request)

    def _label(self, value, st, targets, reasons, annotator, request):
        """Label the ids the browser sent (the selection, else the cursor's tile) as one batch. Reasons are
        cleared after a label (no update when already empty)."""
        ids, key = parse_targets(targets)
        if st is None or not st.get("pages"):
            return (st, gr.skip(), self.status_html("Load the grid first (Apply filters)."), gr.skip())
        try:
            res = self.svc.label_many(item_ids=ids, value=value, annotator=annotator_of(request, annotator),
                                      reasons=reasons or [], client_key=key)
        except LabelError as exc:
            return (*self._answer(st, annotator, request, done_key=key or "", notice=str(exc)), gr.skip())
        msg = f"Saved: {res['labelled']} image{'s' if res['labelled'] != 1 else ''} → {value}"
        return (*self._answer(st, annotator, request, done_key=key or "", msg=msg), [] if reasons else gr.skip())

    def h_undo(self, st, annotator, client_key, request: gr.Request):
        """Undo the designer's latest action (a whole batch) and show the page it was on, the cursor on it."""
        try:
            res = self.svc.undo(annotator=annotator_of(request, annotator), item_kinds=("image",),
                                client_key=client_key or None, session=session_of(request))
        except LabelError as exc:
            return self._answer(st, annotator, request, notice=str(exc))
        if res is None:
            return self._answer(st, annotator, request, notice="Nothing to undo.")
        ids = res.get("item_ids") or [res["item_id"]]
        for k, page in enumerate((st or {}).get("pages", [])):
            if ids[0] in page:
                st["p"] = k
                break
        n = len(ids)
        return self._answer(st, annotator, request, focus=ids[0],
                            msg=f"Undone: {n} image{'s' if n != 1 else ''} ({res.get('value')})")

    # -- layout ------------------------------------------------------------------------------------
    def build(self, filters: list[gr.components.Component], annotator: gr.Textbox, apply: gr.Button,
              tab: gr.Tab) -> None:
        with gr.Row(equal_height=True):
            size = gr.Radio(PAGE_SIZES, value=24, label="Page size", elem_id="grid-size", scale=1, min_width=160)
            status = gr.HTML(elem_id="grid-status")
        grid = gr.HTML(render.empty_state("Loading…", "fetching a page of the queue"), elem_id="grid-view",
                       js_on_load=GRID_ON_LOAD, min_height=300)
        with gr.Row(elem_classes=["actions"]):
            prev = gr.Button("← Prev page [P]", elem_id="grid-prev", min_width=80)
            select = gr.Button("Select page [A]", elem_id="grid-all", min_width=80)
            good = gr.Button("Good  [G]", variant="primary", elem_id="grid-good", elem_classes=["btn-good"])
            bad = gr.Button("Bad  [B]", variant="stop", elem_id="grid-bad", elem_classes=["btn-bad"])
            skip = gr.Button("Skip  [S]", elem_id="grid-skip")
            undo = gr.Button("Undo  [Z]", elem_id="grid-undo")
            nxt = gr.Button("Next page [N] →", elem_id="grid-next", min_width=80)
        reasons = gr.CheckboxGroup(IMAGE_REASONS, label="Reasons (optional, for every image labelled)",
                                   elem_id="grid-reasons")
        st = gr.State(None)
        targets = gr.Textbox(visible=False)
        client_key = gr.Textbox(visible=False)
        fast = dict(concurrency_limit=None, show_progress="hidden", queue=False, api_visibility="private")
        load_in = [*filters, size, annotator]
        for trigger in (tab.select, apply.click, size.change):
            trigger(locked(self.locks, self.h_load), load_in, [st, grid, status], **fast)
        for btn, fn, value in ((good, self.h_good, "good"), (bad, self.h_bad, "bad"), (skip, self.h_skip, "skip")):
            btn.click(locked(self.locks, fn), [st, targets, reasons, annotator], [st, grid, status, reasons],
                      js=TAKE_JS % value, trigger_mode="multiple", **fast)
        undo.click(locked(self.locks, self.h_undo), [st, annotator, client_key], [st, grid, status],
                   js=key_js(2, 3), **fast)
        nxt.click(locked(self.locks, self.h_next), [st, annotator], [st, grid, status], **fast)
        prev.click(locked(self.locks, self.h_prev), [st, annotator], [st, grid, status], **fast)
        select.click(None, None, None, js="() => { if (window.advfxGrid) window.advfxGrid.selectAll(); return []; }")


# The grid's browser side is static/grid.js (loaded in the page head); the component only hands it its element
# and says when the server has redrawn the page.
GRID_ON_LOAD = ("if (window.advfxGrid) { window.advfxGrid.mount(element); "
                "watch('value', () => window.advfxGrid.rendered()); }")
# The label buttons' inputs: [state, targets, reasons, annotator]; targets := the ids to label and a fresh key.
TAKE_JS = ("(...a) => { a = a.slice(0, 4); a[1] = window.advfxGrid ? window.advfxGrid.take('%s') : ''; "
           "return a; }")
