"""The Images tab: queue with filters, large view with toggleable overlays, one-key labelling."""
from __future__ import annotations

import threading
import time
from typing import Any

import gradio as gr

from storage import images
from storage import review_store as rs

from . import overlays as ovl
from . import render
from .service import IMAGE_REASONS, LabelError, ReviewService
from .ui_common import (SessionLocks, annotator_of, counts_html, key_js, locked, session_of, shown_js,
                        split_key)

ORDERS = [("Uncertainty (closest to threshold)", "uncertainty"), ("Score high → low", "score"), ("Score low → high", "score_asc"),
          ("Newest first", "newest"), ("Catalogue order", "id")]
LABEL_STATES = [("Unlabelled", "unlabelled"), ("Labelled", "labelled"), ("Good", "good"), ("Bad", "bad"),
                ("Any", "any")]
OVERLAYS = ["Product mask", "OCR boxes", "Filter flags", "Classifier score"]
PAGE = 50


class ImageSessions:
    """Per-browser-session navigation: the items shown (history), the position, the pending queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: dict[str, int | None] = {}

    def set_current(self, session: str, image_id: int | None) -> None:
        with self._lock:
            self.current[session] = image_id

    def is_current(self, session: str, image_id: int) -> bool:
        with self._lock:
            return self.current.get(session) == image_id


def new_state(filters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"filters": filters or {}, "hist": [], "i": -1, "queue": [], "seen": [], "offset": 0, "exhausted": False}


def _filters(order: str, label_state: str, category: Any, score_min: Any, score_max: Any, failed: Any,
             annotator_filter: Any, diverse: bool) -> dict[str, Any]:
    def num(x: Any) -> float | None:
        if x is None or x == "":
            return None
        return float(x) / 100.0

    return {"order": order or "uncertainty", "label_state": label_state or "unlabelled",
            "category_id": int(category) if category not in (None, "", 0) else None,
            "score_min": num(score_min) if score_min not in (None, 0) else None,
            "score_max": num(score_max) if score_max not in (None, 100) else None,
            "failed_filter": failed or None, "annotator": annotator_filter or None, "diverse": bool(diverse)}


class ImagesTab:
    def __init__(self, svc: ReviewService) -> None:
        self.svc = svc
        self.sessions = ImageSessions()
        self.locks = SessionLocks()

    # -- navigation ----------------------------------------------------------------------------
    def _refill(self, st: dict[str, Any]) -> None:
        seen = set(st["seen"]) | set(st["queue"])
        for _ in range(20):
            if st["exhausted"]:
                return
            rows = self.svc.image_queue(**st["filters"], limit=PAGE, offset=st["offset"])
            if st["filters"].get("label_state") == "unlabelled":
                # labelled items leave the result set; skipped ones stay and are passed by `seen`
                st["offset"] += sum(1 for r in rows if r["id"] in seen)
            else:
                st["offset"] += len(rows)
            new = [r["id"] for r in rows if r["id"] not in seen]
            st["queue"].extend(new)
            if len(rows) < PAGE:
                st["exhausted"] = True
            if new:
                return

    def _advance(self, st: dict[str, Any]) -> None:
        if st["i"] < len(st["hist"]) - 1:
            st["i"] += 1
            return
        if not st["queue"]:
            self._refill(st)
        if st["queue"]:
            nid = st["queue"].pop(0)
            st["hist"].append(nid)
            st["seen"].append(nid)
            st["i"] = len(st["hist"]) - 1
        else:
            st["i"] = len(st["hist"])  # past the end: "queue done"

    def current_id(self, st: dict[str, Any]) -> int | None:
        if 0 <= st["i"] < len(st["hist"]):
            return st["hist"][st["i"]]
        return None

    # -- rendering -----------------------------------------------------------------------------
    def view(self, st: dict[str, Any], session: str, toggles: list[str] | None = None) -> tuple[str, str, str]:
        iid = self.current_id(st)
        self.sessions.set_current(session, iid)
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
        return (f'<div class="progress-line"><b>{prog.get("labelled", 0)}</b> of {prog["total"]} images labelled'
                f' · good {prog.get("good", 0)} · bad {prog.get("bad", 0)}</div>')

    def gallery(self, st: dict[str, Any]) -> str:
        """The next items as small pictures (file URLs; thumbnails cached under thumbs/ only for large images)."""
        ids = (st["hist"][st["i"] + 1:] + st["queue"])[:12]
        if not ids:
            return '<div class="muted">Nothing queued.</div>'
        rows = images.thumb_rows(self.svc.ws, ids)
        out = ['<div class="upnext-grid">']
        for i in ids:
            r = rows.get(i)
            if r is None:
                continue
            p = r[2]
            if max(r[3] or 0, r[4] or 0) > 512 or not p.lower().endswith((".png", ".jpg", ".jpeg", ".webp")):
                try:
                    p = str(ovl.thumbnail(self.svc.root, r[1], r[2]))
                except Exception:  # noqa: BLE001 - an unreadable file shows no thumbnail; the view says why
                    continue
            out.append(f'<img loading="lazy" data-jump="{i}" title="image {i}" alt="image {i}" '
                       f'src="{render.file_url(p)}">')
        out.append("</div>")
        return "".join(out)

    # -- handlers (thin; named API endpoints) -------------------------------------------------
    def h_load(self, order, label_state, category, score_min, score_max, failed, ann_filter, diverse, toggles,
               request: gr.Request):
        st = new_state(_filters(order, label_state, category, score_min, score_max, failed, ann_filter, diverse))
        self._advance(st)
        v, info, prog = self.view(st, session_of(request), toggles)
        return st, v, info, prog, self.gallery(st), ""

    def _label(self, value: str, st, reasons, note, annotator, client_key, toggles, request):
        with self.locks(session_of(request)):
            return self._label_locked(value, st, reasons, note, annotator, client_key, toggles, request)

    def _label_locked(self, value: str, st, reasons, note, annotator, client_key, toggles, request):
        key, shown = split_key(client_key)
        cur = self.current_id(st or {"hist": [], "i": -1})
        # the item on the designer's screen when the key was pressed (a fast second key press arrives while
        # the previous request is still in flight: it belongs to the item the designer saw)
        iid = shown if shown is not None else cur
        if iid is None:
            raise gr.Error("No image selected: load the queue first.")
        try:
            self.svc.label(item_kind="image", item_id=iid, value=value, annotator=annotator_of(request, annotator),
                           reasons=reasons or [], note=note or None, client_key=key,
                           session=session_of(request))
        except LabelError as exc:
            raise gr.Error(str(exc)) from None
        if iid == cur:
            self._advance(st)
        v, info, prog = self.view(st, session_of(request), toggles)
        st["msg"] = f"Saved: image {iid} → {value}"
        # reasons and note are cleared for the next item; untouched (no update to render) when already empty
        return st, v, info, prog, [] if reasons else gr.skip(), "" if note else gr.skip()

    def h_good(self, st, reasons, note, annotator, client_key, toggles, request: gr.Request):
        return self._label("good", st, reasons, note, annotator, client_key, toggles, request)

    def h_bad(self, st, reasons, note, annotator, client_key, toggles, request: gr.Request):
        return self._label("bad", st, reasons, note, annotator, client_key, toggles, request)

    def h_skip(self, st, reasons, note, annotator, client_key, toggles, request: gr.Request):
        return self._label("skip", st, reasons, note, annotator, client_key, toggles, request)

    def h_undo(self, st, annotator, client_key, toggles, request: gr.Request):
        try:
            res = self.svc.undo(annotator=annotator_of(request, annotator), item_kinds=("image",),
                                client_key=client_key or None, session=session_of(request))
        except LabelError as exc:
            raise gr.Error(str(exc)) from None
        if res is None:
            gr.Info("Nothing to undo.")
            msg = "Nothing to undo"
        else:
            iid = res["item_id"]
            # show the item whose label was undone, so it can be labelled again
            if iid in st["hist"]:
                st["i"] = st["hist"].index(iid)
            else:
                st["hist"].insert(max(st["i"], 0), iid)
                st["i"] = max(st["i"], 0)
            msg = f"Undone: image {iid} ({res.get('value')})"
        st["msg"] = msg
        v, info, prog = self.view(st, session_of(request), toggles)
        return st, v, info, prog

    def h_prev(self, st, toggles, request: gr.Request):
        st["i"] = max(0, min(st["i"], len(st["hist"])) - 1) if st["hist"] else -1
        v, info, prog = self.view(st, session_of(request), toggles)
        return st, v, info, prog

    def h_next(self, st, toggles, request: gr.Request):
        self._advance(st)
        v, info, prog = self.view(st, session_of(request), toggles)
        return st, v, info, prog

    def h_jump(self, st, toggles, evt: gr.EventData, request: gr.Request):
        data = getattr(evt, "_data", None) or {}
        target = int(data.get("id", -1))
        ahead = st["hist"][st["i"] + 1:] + st["queue"]
        if target in ahead:
            if target in st["hist"]:
                st["i"] = st["hist"].index(target)
            else:
                st["queue"].remove(target)
                st["hist"].append(target)
                st["seen"].append(target)
                st["i"] = len(st["hist"]) - 1
        v, info, prog = self.view(st, session_of(request), toggles)
        return st, v, info, prog

    def h_after(self, st):
        """Once a new item is on screen (the page asks, debounced, after drawing it: off the key-press path):
        the fresh progress line, the up-next strip, the last message and the header counts."""
        return (self.progress_html(fresh=True), self.gallery(st or new_state()), (st or {}).get("msg", ""),
                counts_html(self.svc.ws))

    def h_overlays(self, st, toggles, request: gr.Request):
        """While the view says overlays are being computed (the page asks): wait for them in the worker,
        then redraw."""
        out = self._overlays_when_ready(st, toggles, request)
        return (gr.skip(), gr.skip()) if out is None else out

    def _overlays_when_ready(self, st, toggles, request: gr.Request) -> tuple[str, str] | None:
        """(view, info) once the current image's overlays are cached; None when nothing needs redrawing."""
        iid = self.current_id(st or {"hist": [], "i": -1})
        if iid is None:
            return None
        sha = images.sha256_of(self.svc.ws, iid)
        if sha is None or ovl.cached_image_overlays(self.svc.root, sha) is not None:
            return None
        if toggles is not None and not any(t in toggles for t in ("Product mask", "OCR boxes")):
            return None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not self.sessions.is_current(session_of(request), iid):
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
        if not self.sessions.is_current(session_of(request), iid):
            return None
        v, info, _ = self.view(st, session_of(request), toggles)
        return v, info

    # -- layout --------------------------------------------------------------------------------
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
            with gr.Column(scale=3, min_width=420):
                progress = gr.HTML(elem_id="img-progress")
                view = gr.HTML(render.empty_state("Loading…", "fetching the review queue"), elem_id="image-view",
                               min_height=420, js_on_load=shown_js(".iv", ".ov-status"))
                toggles = gr.CheckboxGroup(OVERLAYS, value=OVERLAYS, label="Overlays", elem_id="img-overlays")
                with gr.Row(elem_classes=["actions"]):
                    prev = gr.Button("← Prev", elem_id="img-prev", size="lg", min_width=80)
                    good = gr.Button("Good  [G]", variant="primary", elem_id="img-good", size="lg",
                                     elem_classes=["btn-good"])
                    bad = gr.Button("Bad  [B]", variant="stop", elem_id="img-bad", size="lg", elem_classes=["btn-bad"])
                    skip = gr.Button("Skip  [S]", elem_id="img-skip", size="lg")
                    undo = gr.Button("Undo  [Z]", elem_id="img-undo", size="lg")
                    nxt = gr.Button("Next →", elem_id="img-next", size="lg", min_width=80)
                reasons = gr.CheckboxGroup(IMAGE_REASONS, label="Reasons (optional)", elem_id="img-reasons")
                note = gr.Textbox(label="Note", placeholder="optional note (keys are off while typing)",
                                  elem_id="img-note", lines=1)
                status = gr.Markdown(elem_id="img-status")
            with gr.Column(scale=1, min_width=260):
                info = gr.HTML(elem_id="img-info")
        st = gr.State(new_state())
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
        self.load_event = (self.h_load, filt, outs_nav + [gallery, status])
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
        self.inputs_for_load = filt
        self.outputs_for_load = outs_nav + [gallery, status]


TOGGLE_JS = """(t) => {
  const map = {"Product mask": "mask", "OCR boxes": "ocr", "Filter flags": "flags", "Classifier score": "score"};
  for (const [k, v] of Object.entries(map)) document.body.classList.toggle("hide-" + v, !(t || []).includes(k));
  return [];
}"""

JUMP_JS = """
element.addEventListener('click', (e) => {
  const el = e.target.closest('[data-jump]');
  if (el) trigger('jump', {id: +el.dataset.jump});
});
"""
