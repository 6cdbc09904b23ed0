"""HTML of the Images grid: a page of thumbnails with flags, classifier score and label. Pure functions of plain
data (no Gradio, no DuckDB). The page's cursor and selection live in the browser (static/grid.js); the HTML
only says what the server knows: items, labels, and which request it answers."""
from __future__ import annotations

from typing import Any

from .render import esc, file_url


def grid_tile(k: int, t: dict[str, Any], threshold: float) -> str:
    """One tile. t: id, src (picture file), product, score (None before any classifier run), failed_filters,
    failed_reasons, own (this annotator's latest value: good/bad/skip), decided (the label rule's decision
    record, or None)."""
    layers = []
    failed = list(zip(t.get("failed_filters") or [], (t.get("failed_reasons") or []) + [""] * 99))
    if failed:
        layers.append('<div class="ov ov-flags">' + "".join(
            f'<span class="flag" title="{esc(reason or "failed")}">⚑ {esc(name)}</span>' for name, reason in failed)
            + "</div>")
    score = t.get("score")
    if score is not None:
        cls = "good" if score >= threshold else "bad"
        layers.append(f'<div class="ov ov-score score-{cls}" title="classifier score">{100 * score:.0f}%</div>')
    own, decided = t.get("own"), t.get("decided")
    state = ""
    if own in ("good", "bad", "skip"):
        state = own
        layers.append(f'<div class="label-badge lb-{esc(own)}">{"skipped" if own == "skip" else esc(own)}</div>')
    elif decided:
        # someone else's decision: shown, but the tile still counts as not yet labelled by this designer
        who = (decided["annotators"][0] if decided.get("n_annotators") == 1
               else f'{decided.get("n_pos")}–{decided.get("n_neg")}')
        layers.append(f'<div class="label-badge lb-{esc(decided["label"])} lb-other">'
                      f'{esc(decided["label"])} · {esc(who)}</div>')
    title = f'image {t["id"]}' + (f' · {t["product"]}' if t.get("product") else "")
    return (f'<div class="tile{" lab-" + state if state else ""}" data-tile="{t["id"]}" data-idx="{k}" '
            f'data-label="{esc(state)}" title="{esc(title)}">'
            f'<img class="tile-img" alt="image {t["id"]}" draggable="false" src="{file_url(t["src"])}">'
            + "".join(layers) + "</div>")


def grid_page(tiles: list[dict[str, Any]], *, threshold: float, page: int, gen: int = 0, done_key: str = "",
              focus: int | None = None, empty: str = "") -> str:
    """The page: a header line and the tiles. gen: the load it belongs to (with the page number: when either
    changes the browser starts a fresh cursor and selection); done_key: the client key of the request this
    answers (the browser drops its pending marks for it); focus: the item the cursor goes to (an undone one)."""
    if not tiles:
        return (f'<div class="grid-page" data-done="{esc(done_key)}"><div class="empty-state">'
                f'<div class="empty-title">Nothing to review</div><div>{esc(empty)}</div></div></div>')
    n_done = sum(1 for t in tiles if t.get("own") in ("good", "bad", "skip"))
    head = (f'<div class="grid-head">Page {page + 1} · {len(tiles)} images · {n_done} labelled by you here'
            '<span class="muted"> — arrows move · click / shift-click select · A select page · Esc clear · '
            'G / B / S label the selection (or the cursor) · Z undo · N / P page</span></div>')
    return (f'<div class="grid-page" data-gen="{int(gen)}" data-page="{page}" data-done="{esc(done_key)}" '
            f'data-focus="{"" if focus is None else int(focus)}">' + head + '<div class="grid-tiles">'
            + "".join(grid_tile(k, t, threshold) for k, t in enumerate(tiles)) + "</div></div>")
