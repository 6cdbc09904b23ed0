"""Small helpers shared by the tabs."""
from __future__ import annotations

import gradio as gr


def session_of(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "api"


def annotator_of(request: gr.Request | None, typed: str | None) -> str:
    """The login name when the app runs with auth, else the name typed in the Annotator field."""
    user = getattr(request, "username", None) if request is not None else None
    return (user or typed or "").strip()


def key_js(index: int, n_inputs: int) -> str:
    """A frontend function that puts a fresh idempotency key into input `index` before the request is sent:
    a retried request carries the same key and adds nothing."""
    return ("(...a) => { a = a.slice(0, %d); a[%d] = (window.advfxKey ? window.advfxKey() : "
            "(Date.now().toString(36) + Math.random().toString(36).slice(2))); return a; }" % (n_inputs, index))
