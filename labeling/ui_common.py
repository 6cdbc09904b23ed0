"""Small helpers shared by the tabs."""
from __future__ import annotations

import gradio as gr


def counts_html(ws) -> str:
    """The header line: images, videos, triples, label events (five count(*): a few ms at 100,000 rows)."""
    from storage import catalog

    c = catalog.counts(ws)
    return ('<div class="counts">'
            + " · ".join(f"<b>{c[k]:,}</b> {k.replace('_', ' ')}" for k in ("images", "videos", "triples", "labels"))
            + "</div>")


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
        import threading

        self._guard = threading.Lock()
        self._locks: dict = {}

    def __call__(self, session: str):
        import threading

        with self._guard:
            lk = self._locks.get(session)
            if lk is None:
                lk = self._locks[session] = threading.Lock()
            return lk


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


def locked(locks: "SessionLocks", fn):
    """fn (a handler with a `request` keyword) run under its session's lock; the signature is kept, so Gradio
    still injects gr.Request and gr.EventData."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        req = kwargs.get("request") or next((a for a in args if isinstance(a, gr.Request)), None)
        with locks(session_of(req)):
            return fn(*args, **kwargs)
    return wrapper
