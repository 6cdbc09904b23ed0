"""What the tabs share: session and navigation state, the labelling handlers of the Images and Videos tabs,
request helpers."""
from __future__ import annotations

import functools
import threading

import gradio as gr

from storage import catalog

from . import render
from .service import LabelError, ReviewService


def counts_html(ws) -> str:
    """The header line: images, videos, triples, label events (five count(*): a few ms at 100,000 rows)."""
    return render.counts_line(catalog.counts(ws))


def session_of(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "api"


def annotator_of(request: gr.Request | None, typed: str | None) -> str:
    """The login name when the app runs with auth, else the name typed in the Annotator field."""
    user = getattr(request, "username", None) if request is not None else None
    return (user or typed or "").strip()


def key_js(index: int, n_inputs: int, shown: str | None = None) -> str:
    """A frontend function that puts a fresh idempotency key into input `index` before the request is sent:
    a retried request carries the same key and adds nothing. With `shown` (a CSS selector of the element whose
    data-item attribute names the item on screen) the key ends in '@<item id>', so a key pressed while the
    previous request is still in flight labels the item the designer saw, not the one that comes next."""
    item = ("+ '@' + ((document.querySelector('%s') || {dataset: {}}).dataset.item || '')" % shown) if shown else ""
    return ("(...a) => { a = a.slice(0, %d); a[%d] = (window.advfxKey ? window.advfxKey() : "
            "(Date.now().toString(36) + Math.random().toString(36).slice(2))) %s; return a; }"
            % (n_inputs, index, item))


def shown_js(item: str, pending: str | None = None, delay_ms: int = 120) -> str:
    """`js_on_load` for a view (gr.HTML). Once it has drawn a new item (the `item` selector's data-item
    changed) it triggers its 'shown' event; while it shows the `pending` selector (overlays being computed)
    it triggers 'pending'. Both debounced, so a burst of key presses sends one request. The key-press request
    then carries only what must change at once; a Gradio event's start-up cost in the browser (tens of ms)
    is paid after the item is visible."""
    waiting = f"element.querySelector('{pending}')" if pending else "null"
    return ("let timer = null, lastItem = null, needShown = false;\n"
            "watch('value', () => {\n"
            f"  const el = element.querySelector('{item}');\n"
            "  const it = el ? el.dataset.item : null;\n"
            f"  const waiting = !!{waiting};\n"
            "  if (it === lastItem && !waiting) return;\n"
            "  needShown = needShown || it !== lastItem;\n"
            "  lastItem = it;\n"
            "  clearTimeout(timer);\n"
            "  timer = setTimeout(() => {\n"
            "    if (needShown) trigger('shown');\n"
            f"    if ({waiting}) trigger('pending');\n"
            "    needShown = false;\n"
            f"  }}, {delay_ms});\n"
            "});\n")


def split_key(client_key: str | None) -> tuple[str | None, int | None]:
    """'<key>@<item id>' -> (key, item id); the whole string stays the idempotency key."""
    if not client_key:
        return None, None
    _, at, tail = client_key.rpartition("@")
    if at and tail.isdigit():
        return client_key, int(tail)
    return client_key, None


class SessionLocks:
    """One lock per browser session: a session's navigation state changes one request at a time."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict = {}

    def __call__(self, session: str):
        with self._guard:
            lk = self._locks.get(session)
            if lk is None:
                lk = self._locks[session] = threading.Lock()
            return lk


class Sessions:
    """The item each browser session has on screen: work started for an item (overlays, a score run) redraws
    the view only while its session still shows that item."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, int | None] = {}

    def set(self, session: str, item_id: int | None) -> None:
        with self._lock:
            self._current[session] = item_id

    def get(self, session: str) -> int | None:
        with self._lock:
            return self._current.get(session)


PAGE = 50


def new_nav(filters: dict | None = None) -> dict:
    """Per-session navigation: items shown (hist), position i, pending queue, ids seen, query offset."""
    return {"filters": filters or {}, "hist": [], "i": -1, "queue": [], "seen": [], "offset": 0, "exhausted": False}


def nav_refill(st: dict, fetch) -> None:
    """fetch(offset, limit) -> list of ids in queue order. Labelled items leave an 'unlabelled' result set;
    skipped ones stay and are passed over by `seen`."""
    seen = set(st["seen"]) | set(st["queue"])
    for _ in range(20):
        if st["exhausted"]:
            return
        ids = fetch(st["offset"], PAGE)
        if st["filters"].get("label_state") == "unlabelled":
            st["offset"] += sum(1 for i in ids if i in seen)
        else:
            st["offset"] += len(ids)
        new = [i for i in ids if i not in seen]
        st["queue"].extend(new)
        if len(ids) < PAGE:
            st["exhausted"] = True
        if new:
            return


def nav_advance(st: dict, fetch) -> None:
    if st["i"] < len(st["hist"]) - 1:
        st["i"] += 1
        return
    if not st["queue"]:
        nav_refill(st, fetch)
    if st["queue"]:
        nid = st["queue"].pop(0)
        st["hist"].append(nid)
        st["seen"].append(nid)
        st["i"] = len(st["hist"]) - 1
    else:
        st["i"] = len(st["hist"])


def nav_prev(st: dict) -> None:
    st["i"] = max(0, min(st["i"], len(st["hist"])) - 1) if st["hist"] else -1


def nav_current(st: dict | None) -> int | None:
    if st and 0 <= st["i"] < len(st["hist"]):
        return st["hist"][st["i"]]
    return None


def nav_show(st: dict, item_id: int) -> None:
    """Make item_id the current item (e.g. the one whose label was just undone)."""
    if item_id in st["hist"]:
        st["i"] = st["hist"].index(item_id)
    else:
        pos = min(max(st["i"], 0), len(st["hist"]))
        st["hist"].insert(pos, item_id)
        st["i"] = pos


def nav_jump(st: dict, item_id: int) -> None:
    """Make item_id, one of the items ahead (the up-next list), the current item; any other id is ignored.
    It moves to the front of what is ahead: the items it was clicked past stay ahead, in their order, and come
    next (moving the position onto it instead would have left those behind it, out of the list)."""
    pos = min(st["i"] + 1, len(st["hist"]))
    ahead = st["hist"][pos:]
    if item_id not in ahead + st["queue"]:
        return
    if item_id in ahead:
        st["hist"].pop(pos + ahead.index(item_id))
    else:
        st["queue"].remove(item_id)
        st["seen"].append(item_id)
    st["hist"].insert(pos, item_id)
    st["i"] = pos


def locked(locks: "SessionLocks", fn):
    """fn (a handler with a `request` keyword) run under its session's lock; the signature is kept, so Gradio
    still injects gr.Request and gr.EventData."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        req = kwargs.get("request") or next((a for a in args if isinstance(a, gr.Request)), None)
        with locks(session_of(req)):
            return fn(*args, **kwargs)
    return wrapper


class QueueTab:
    """What the Images and Videos tabs share: a queue walked per browser session (the nav_* state in a
    gr.State), the item each session has on screen, and labelling, undo and navigation of that item. A tab sets
    `kind` (the label events' item_kind) and provides `queue(**filters, limit, offset)` (rows with an "id") and
    `view(st, session, layers)` (the outputs that follow the state)."""

    kind = ""
    n_view = 0          # how many outputs view() returns; its last is the progress line

    def __init__(self, svc: ReviewService) -> None:
        self.svc = svc
        self.sessions = Sessions()
        self.locks = SessionLocks()

    def queue(self, **kw) -> list[dict]:
        raise NotImplementedError

    def view(self, st: dict, session: str, layers: list[str] | None) -> tuple:
        raise NotImplementedError

    def progress_html(self) -> str:
        raise NotImplementedError

    def tell(self, st: dict, text: str, n_after: int = 0) -> tuple:
        """The outputs of a key press that changed nothing: the item stays, and the line above it says why.
        Not gr.Warning: a key press is a queue=False request, whose warnings never reach the page; not the
        status line: it is below the fold. n_after: outputs after the view's (reasons, note), kept as typed."""
        return (st, *[gr.skip()] * (self.n_view - 1), render.notice(text) + self.progress_html(),
                *[gr.skip()] * n_after)

    def advance(self, st: dict) -> None:
        f = st["filters"]
        nav_advance(st, lambda offset, limit: [r["id"] for r in self.queue(**f, limit=limit, offset=offset)])

    def _label(self, value: str, st, reasons, note, annotator, client_key, layers, request):
        """Label the item that was on the designer's screen when the key was pressed (the key ends in '@<id>':
        a fast second key press arrives while the first request is still in flight and belongs to the item the
        designer saw); the queue moves on only when that item is the current one. Reasons and note are cleared
        for the next item (no update when already empty)."""
        session = session_of(request)
        with self.locks(session):
            key, shown = split_key(client_key)
            cur = nav_current(st)
            item = shown if shown is not None else cur
            if item is None:
                return self.tell(st, f"No {self.kind} selected: load the queue first.", 2)
            try:
                self.svc.label(item_kind=self.kind, item_id=item, value=value,
                               annotator=annotator_of(request, annotator), reasons=reasons or [],
                               note=note or None, client_key=key, session=session)
            except LabelError as exc:
                return self.tell(st, str(exc), 2)
            if item == cur:
                self.advance(st)
            st["msg"] = f"Saved: {self.kind} {item} → {value}"
            return (st, *self.view(st, session, layers), [] if reasons else gr.skip(), "" if note else gr.skip())

    def h_skip(self, st, reasons, note, annotator, client_key, layers, request: gr.Request):
        return self._label("skip", st, reasons, note, annotator, client_key, layers, request)

    def h_undo(self, st, annotator, client_key, layers, request: gr.Request):
        """Undo the annotator's latest label of this tab's kind and show that item, to be labelled again."""
        try:
            res = self.svc.undo(annotator=annotator_of(request, annotator), item_kinds=(self.kind,),
                                client_key=client_key or None, session=session_of(request))
        except LabelError as exc:
            return self.tell(st, str(exc))
        if res is None:
            return self.tell(st, "Nothing to undo.")
        nav_show(st, res["item_id"])
        many = f"{res['n']} {self.kind}s from one action, " if res.get("n", 1) > 1 else ""
        st["msg"] = f"Undone: {many}{self.kind} {res['item_id']} ({res.get('value')})"
        return (st, *self.view(st, session_of(request), layers))

    def h_prev(self, st, layers, request: gr.Request):
        nav_prev(st)
        return (st, *self.view(st, session_of(request), layers))

    def h_next(self, st, layers, request: gr.Request):
        self.advance(st)
        return (st, *self.view(st, session_of(request), layers))

    def h_jump(self, st, layers, evt: gr.EventData, request: gr.Request):
        """An item of the up-next list was clicked (JUMP_JS: trigger('jump', {id})): show it; the items it
        was clicked past stay next (nav_jump)."""
        nav_jump(st, int(getattr(evt, "id", -1)))
        return (st, *self.view(st, session_of(request), layers))

    def on_app_load(self, demo: gr.Blocks) -> None:
        """The queue loads with the page (the tab's `load_args`, set by its build: handler, inputs, outputs)."""
        fn, inputs, outputs = self.load_args
        demo.load(fn, inputs, outputs, api_visibility="private", show_progress="hidden")


# js_on_load of an up-next list (gr.HTML): a click on an item with data-jump asks for it (QueueTab.h_jump)
JUMP_JS = """
element.addEventListener('click', (e) => {
  const el = e.target.closest('[data-jump]');
  if (el) trigger('jump', {id: +el.dataset.jump});
});
"""
