"""The Best of N tab: the video queue grouped by case (a source image and its prompt), every candidate video of
the case side by side, played together, each with its model, a one-line scorecard and its label. Keys 1-9 select
a tile, A / R accept or reject it, Enter accepts it and rejects the rest in one action (one batch, which Z takes
back whole), N / P move between cases.

The selection lives in the browser (static/bestof.js), playback in static/player.js; a label action sends the
case on screen, the selected tile and one idempotency key. Labels are triple labels: the label rule counts a
designer's label on a triple over their label on its video (storage.labels)."""
from __future__ import annotations

import json
import time
from typing import Any

import gradio as gr

from storage import bestof

from . import render, render_bestof
from .service import LabelError, ReviewService
from .ui_common import SessionLocks, annotator_of, key_js, locked, session_of

ORDERS = [("No accepted video first", "open"), ("Source image", "image"), ("Model", "model")]
MAX_CASES = 10_000          # one queue's cases (ids and a few facts each), kept per browser session

# the label buttons' inputs: [state, targets, annotator]; targets := the case on screen, the tile, a fresh key
TAKE_JS = ("(...a) => { a = a.slice(0, 3); a[1] = window.advfxBestof ? window.advfxBestof.take('%s') : ''; "
           "return a; }")
VIEW_ON_LOAD = ("if (window.advfxBestof) { window.advfxBestof.mount(element); "
                "watch('value', () => window.advfxBestof.rendered()); }\n"
                "if (window.advfxPlayer) { window.advfxPlayer.mount(element); "
                "watch('value', () => window.advfxPlayer.rendered(element)); }\n")


def parse_targets(raw: str | None) -> tuple[str | None, list[int], str | None]:
    """What bestof.js sends with an action: {"case", "ids", "key"} -> (case id, triple ids, key)."""
    try:
        data = json.loads(raw or "{}")
        return (data.get("case") or None), [int(i) for i in data.get("ids") or []], (data.get("key") or None)
    except (ValueError, TypeError, AttributeError):
        return None, [], None


def new_queue(filters: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-session state: the filters, the cases in queue order (a few facts each), the index on screen, the
    cases decided in this session, a load serial (the browser drops its selection when it changes)."""
    return {"filters": filters, "rows": rows, "i": 0, "decided": [], "gen": time.monotonic_ns() % 10**12}


class BestOfTab:
    def __init__(self, svc: ReviewService) -> None:
        self.svc = svc
        self.locks = SessionLocks()

    # -- views -----------------------------------------------------------------------------------
    def current(self, st: dict[str, Any] | None) -> str | None:
        if st and 0 <= st["i"] < len(st["rows"]):
            return st["rows"][st["i"]]["case_id"]
        return None

    def answer(self, st, *, done_key: str = "", notice: str = "", msg: str = "") -> tuple:
        """-> state, case view, progress line (with a notice above it when a key press changed nothing), the
        case list, the status line."""
        st = st or new_queue({}, [])
        cid = self.current(st)
        case = self.svc.bestof_case(cid) if cid else None
        empty = ("No case matches these filters." if not st["rows"] else
                 "Queue done — every case in it has been shown. Change the filters or press P.")
        view = render_bestof.case_view(case, position=st["i"], total=len(st["rows"]), gen=st["gen"],
                                       done_key=done_key, empty=empty)
        prog = render_bestof.progress_line(bestof.progress(self.svc.ws), len(st["rows"]))
        return (st, view, (render.notice(notice) if notice else "") + prog,
                render_bestof.case_list(st["rows"], st["i"], set(st["decided"])), msg or st.get("msg", ""))

    # -- handlers (thin) ---------------------------------------------------------------------------
    def h_load(self, search, model, open_only, order, request: gr.Request):
        filters = {"search": search or None, "model": model or None, "open_only": bool(open_only),
                   "order": order or "open"}
        rows = self.svc.bestof_cases(**filters, limit=MAX_CASES)
        keep = ("case_id", "image_id", "product", "n", "models", "n_accepted")
        return self.answer(new_queue(filters, [{k: r[k] for k in keep} for r in rows]))

    def h_open(self, st, search, model, open_only, order, request: gr.Request):
        """The tab is shown: the first time, load the queue; later, redraw where the designer left it (labels
        may have changed on the Videos tab meanwhile)."""
        if st is None:
            return self.h_load(search, model, open_only, order, request)
        return self.answer(st)

    def h_next(self, st, request: gr.Request):
        if st:
            st["i"] = min(st["i"] + 1, len(st["rows"]))
        return self.answer(st)

    def h_prev(self, st, request: gr.Request):
        if st:
            st["i"] = max(st["i"] - 1, 0)
        return self.answer(st)

    def h_accept(self, st, targets, annotator, request: gr.Request):
        return self._label("accept", st, targets, annotator, request)

    def h_reject(self, st, targets, annotator, request: gr.Request):
        return self._label("reject", st, targets, annotator, request)

    def _label(self, value, st, targets, annotator, request):
        """Accept or reject the selected tile of the case that was on screen; the case stays."""
        cid, ids, key = parse_targets(targets)
        if not ids:
            return self.answer(st, done_key=key or "", notice="Select a video first: keys 1–9 or a click.")
        try:
            self.svc.label(item_kind="triple", item_id=ids[0], value=value, annotator=annotator_of(request, annotator),
                           client_key=key, session=session_of(request))
        except LabelError as exc:
            return self.answer(st, done_key=key or "", notice=str(exc))
        return self.answer(st, done_key=key or "", msg=f"Saved: triple {ids[0]} → {value}")

    def h_decide(self, st, targets, annotator, request: gr.Request):
        """Accept the selected tile and reject every other candidate of the case on screen, as one batch; then the
        next case."""
        cid, ids, key = parse_targets(targets)
        if not cid or not ids:
            return self.answer(st, done_key=key or "",
                               notice="Select the best video first (keys 1–9 or a click), then Enter.")
        try:
            res = self.svc.decide_case(case_id=cid, accepted=ids, annotator=annotator_of(request, annotator),
                                       client_key=key)
        except LabelError as exc:
            return self.answer(st, done_key=key or "", notice=str(exc))
        if st is not None:
            st["decided"] = sorted(set(st["decided"]) | {cid})
            if self.current(st) == cid:
                st["i"] = min(st["i"] + 1, len(st["rows"]))
        n = len(res["rejected"])
        return self.answer(st, done_key=key or "", msg=f"Saved: case {cid} — accepted triple {ids[0]}, rejected "
                                                       f"{n} other{'s' if n != 1 else ''}")

    def h_undo(self, st, annotator, client_key, request: gr.Request):
        """Undo the designer's latest triple label (a whole Enter at once) and show its case."""
        try:
            res = self.svc.undo(annotator=annotator_of(request, annotator), item_kinds=("triple",),
                                client_key=client_key or None, session=session_of(request))
        except LabelError as exc:
            return self.answer(st, notice=str(exc))
        if res is None:
            return self.answer(st, notice="Nothing to undo.")
        where = bestof.case_of_triple(self.svc.ws, res["item_id"])
        if where and st is not None:
            cid = bestof.case_id(*where)
            k = next((k for k, r in enumerate(st["rows"]) if r["case_id"] == cid), None)
            if k is not None:
                st["i"] = k
            st["decided"] = [d for d in st["decided"] if d != cid]
        n = res.get("n", 1)
        return self.answer(st, msg=f"Undone: {n} label{'s' if n != 1 else ''} (triple {res['item_id']})")

    # -- scripts -----------------------------------------------------------------------------------
    def api_decide(self, case_id: str | None = None, triple_ids: list[int] | None = None,
                   accepted: list[int] | None = None, annotator: str = "", client_key: str | None = None,
                   request: gr.Request = None) -> dict:
        """Accept these candidates of a case (named by its id '<image id>:<prompt id>', or by its triple ids)
        and reject the rest: one triple label event each, one batch that one /undo (item_kind 'triple') takes
        back whole. Returns {labelled, accepted, rejected, item_ids, case_id, batch, duplicate, annotator}."""
        try:
            return self.svc.decide_case(case_id=case_id or None, triple_ids=triple_ids or [], accepted=accepted or [],
                                        annotator=annotator_of(request, annotator), client_key=client_key)
        except LabelError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def api_cases(self, search: str | None = None, model: str | None = None, open_only: bool = False,
                  order: str = "open", limit: int = 100, offset: int = 0) -> dict:
        """The Best-of-N cases: {"cases": [{case_id, image_id, prompt_id, n, models, n_accepted, n_decided,
        product, prompt, image}]}; open_only: only cases with no accepted video yet."""
        rows = self.svc.bestof_cases(search=search or None, model=model or None, open_only=bool(open_only),
                                     order=order or "open", limit=int(limit), offset=int(offset))
        return {"cases": [{**{k: r[k] for k in ("case_id", "image_id", "prompt_id", "n", "models", "n_accepted",
                                                "n_decided", "product", "prompt")}, "image": str(r["image_path"])}
                          for r in rows]}

    def api_case(self, case_id: str) -> dict:
        """One case with its candidates: triple_id, video_id, model, label (the decision) and metrics."""
        try:
            case = self.svc.bestof_case(case_id)
        except LabelError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        if case is None:
            return {}
        return {"case_id": case["case_id"], "candidates": [
            {"triple_id": c["triple_id"], "video_id": c["video_id"], "model": c["model"],
             "label": (c["decided"] or {}).get("label"), "metrics": c["metrics"]} for c in case["candidates"]]}

    # -- layout ------------------------------------------------------------------------------------
    def build(self, annotator: gr.Textbox, tab: gr.Tab) -> None:
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240, elem_classes=["sidebar"]):
                gr.Markdown("#### Cases")
                search = gr.Textbox(label="Source image", placeholder="file name, product or image id",
                                    elem_id="bo-search", lines=1)
                model = gr.Dropdown([("All models", "")] + [(m, m) for m in bestof.models(self.svc.ws)], value="",
                                    label="With a video by", elem_id="bo-model")
                open_only = gr.Checkbox(label="Only cases with no accepted video yet", value=False,
                                        elem_id="bo-open")
                order = gr.Dropdown(ORDERS, value="open", label="Order", elem_id="bo-order")
                apply = gr.Button("Apply filters", elem_id="bo-apply")
                caselist = gr.HTML(elem_id="bo-cases")
            with gr.Column(scale=4, min_width=520):
                progress = gr.HTML(elem_id="bo-progress")
                view = gr.HTML(render.empty_state("Open the Best of N tab", "loading the cases…"), elem_id="bo-view",
                               min_height=320, js_on_load=VIEW_ON_LOAD)
                with gr.Row(elem_classes=["actions"]):
                    prev = gr.Button("← Prev case [P]", elem_id="bo-prev", min_width=80)
                    acc = gr.Button("Accept [A]", elem_id="bo-accept", elem_classes=["btn-good"])
                    rej = gr.Button("Reject [R]", elem_id="bo-reject", elem_classes=["btn-bad"])
                    decide = gr.Button("Accept selected, reject the rest [Enter]", variant="primary",
                                       elem_id="bo-decide")
                    undo = gr.Button("Undo [Z]", elem_id="bo-undo")
                    nxt = gr.Button("Next case [N] →", elem_id="bo-next", min_width=80)
                status = gr.Markdown(elem_id="bo-status")
        st = gr.State(None)
        targets = gr.Textbox(visible=False)
        client_key = gr.Textbox(visible=False)
        outs = [st, view, progress, caselist, status]
        fast = dict(concurrency_limit=None, show_progress="hidden", queue=False)
        filt = [search, model, open_only, order]
        apply.click(locked(self.locks, self.h_load), filt, outs, api_name="bestof_load", **fast)
        search.submit(locked(self.locks, self.h_load), filt, outs, api_visibility="private", **fast)
        tab.select(locked(self.locks, self.h_open), [st, *filt], outs, api_visibility="private", **fast)
        for btn, fn, value, name in ((acc, self.h_accept, "accept", "bestof_accept"),
                                     (rej, self.h_reject, "reject", "bestof_reject"),
                                     (decide, self.h_decide, "decide", "bestof_decide_selected")):
            btn.click(locked(self.locks, fn), [st, targets, annotator], outs, js=TAKE_JS % value,
                      trigger_mode="multiple", api_visibility="private", **fast)
        undo.click(locked(self.locks, self.h_undo), [st, annotator, client_key], outs, js=key_js(2, 3),
                   api_visibility="private", **fast)
        nxt.click(locked(self.locks, self.h_next), [st], outs, api_visibility="private", **fast)
        prev.click(locked(self.locks, self.h_prev), [st], outs, api_visibility="private", **fast)
        gr.api(self.api_decide, api_name="bestof_decide", queue=False)
        gr.api(self.api_cases, api_name="bestof_cases", concurrency_limit=None)
        gr.api(self.api_case, api_name="bestof_case", concurrency_limit=None)
