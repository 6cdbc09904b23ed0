"""HTML of Best of N: one case's candidate videos side by side, each with its model, a one-line scorecard and its
label. Pure functions of plain data (no Gradio, no DuckDB). Playing them together is static/player.js's; which
tile is selected lives in the browser (static/bestof.js)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from metrics.registry import PAPER_METRICS

from . import explain
from .render import METRIC_NAMES, esc, file_url, player_bar, video_player

SHORT_STATUS = {"none": "—", "stale": "stale", "n/a": "n/a", "unavailable": "off", "error": "error"}


def score_line(metrics: dict[str, dict[str, Any]]) -> str:
    """The six metrics in one line: each value (with its band's colour) or its status in a word; the full
    sentence (what the status means and what to do) in the tooltip."""
    cells = []
    for m in PAPER_METRICS:
        name = METRIC_NAMES.get(m, m)
        r = metrics.get(m) or {"status": "none"}
        if r["status"] == "ok":
            bd = explain.band(m, r["value"])
            cls = f' band-{bd["name"]}' if bd else ""
            tip = f'{name}: {100 * r["value"]:.1f}%' + (f' ({bd["name"]}, {bd["third"]} of its scale)' if bd else "")
            cells.append(f'<span class="sc{cls}" title="{esc(tip)}"><i>{esc(name)}</i> {100 * r["value"]:.0f}%</span>')
        else:
            word = SHORT_STATUS.get(r["status"], r["status"])
            tip = f'{name}: {explain.status_sentence(m, r["status"])}'
            cells.append(f'<span class="sc st-{esc(r["status"].replace("/", ""))}" title="{esc(tip)}">'
                         f'<i>{esc(name)}</i> {esc(word)}</span>')
    return '<div class="bo-sc">' + "".join(cells) + "</div>"


def label_badge(decided: dict[str, Any] | None) -> str:
    if not decided:
        return '<span class="bo-lab lb-none">not judged</span>'
    who = (decided["annotators"][0] if decided.get("n_annotators") == 1
           else f'{decided.get("n_pos")}–{decided.get("n_neg")}')
    return f'<span class="bo-lab lb-{esc(decided["label"])}">{esc(decided["label"])} · {esc(who)}</span>'


def tile(k: int, c: dict[str, Any]) -> str:
    """One candidate: key number, the video (muted, looping, no controls of its own: the case's bar drives
    every video), model, triple, label and the one-line scorecard."""
    lab = (c.get("decided") or {}).get("label") or ""
    return (f'<div class="bo-tile{" lab-" + lab if lab else ""}" data-tile="{int(c["triple_id"])}" data-idx="{k}" '
            f'title="triple {int(c["triple_id"])} · video {int(c["video_id"])} · {esc(Path(c["path"]).name)}">'
            f'<div class="bo-stage"><span class="bo-key">{k + 1}</span>'
            + video_player(c["path"], "bo-v", fps=c.get("fps"), frames=c.get("frame_count"), controls=False,
                           autoplay=False)
            + '</div><div class="bo-meta">'
            f'<span class="pill">{esc(c.get("model") or "unknown model")}</span>'
            f'<span class="muted">#{int(c["triple_id"])}</span>{label_badge(c.get("decided"))}</div>'
            + score_line(c.get("metrics") or {}) + "</div>")


def case_view(case: dict[str, Any] | None, *, position: int, total: int, gen: int = 0, done_key: str = "",
              empty: str = "") -> str:
    """The case: its source ad and prompt, the bar that plays every video together, the tiles. data-case names
    the case on screen (a key press acts on what the designer saw), data-done the request this answers."""
    if case is None:
        return (f'<div class="bo-empty" data-done="{esc(done_key)}"><div class="empty-state">'
                f'<div class="empty-title">Nothing to review</div><div>{esc(empty)}</div></div></div>')
    cands = case["candidates"]
    src = (f'<img class="bo-src" alt="source ad" src="{file_url(case["image_path"])}">'
           if case.get("image_path") else "")
    n_acc = sum(1 for c in cands if (c.get("decided") or {}).get("label") == "accept")
    state = (f'<b class="lb-accept">{n_acc} accepted</b>' if n_acc else '<b class="lb-none">no accepted video yet</b>')
    head = (f'<div class="bo-head">{src}<div class="meta"><div><b>{esc(case.get("product") or "—")}</b> '
            f'<span class="muted">case {position + 1} of {total} · image #{int(case["image_id"])} · '
            f'{len(cands)} candidate{"s" if len(cands) != 1 else ""}</span> · {state}</div>'
            f'<div class="prompt">“{esc(case.get("prompt") or "no prompt recorded")}”</div>'
            '<div class="muted">1–9 select · A accept · R reject the selected · Enter accept the selected and '
            'reject the rest · Z undo · N / P next / previous case · Space play / pause all · , . one frame · '
            '[ ] speed</div></div></div>')
    cols = min(max(len(cands), 1), 4)
    return (f'<div class="bo-case pl" data-case="{esc(case["case_id"])}" data-item="{esc(case["case_id"])}" '
            f'data-gen="{int(gen)}" data-done="{esc(done_key)}" tabindex="-1">' + head + player_bar(scrub=True)
            + f'<div class="bo-tiles" style="grid-template-columns:repeat({cols}, minmax(0, 1fr))">'
            + "".join(tile(k, c) for k, c in enumerate(cands)) + "</div></div>")


def case_list(rows: list[dict[str, Any]], current: int, decided: set[str]) -> str:
    """The cases around the current one (rows in queue order, `current` the index of the one on screen):
    product, image, candidates and models; a case decided in this session is marked."""
    if not rows:
        return '<div class="muted">No cases.</div>'
    lo = max(0, current - 2)
    out = ['<div class="qlist">']
    for k, r in enumerate(rows[lo:lo + 12], start=lo):
        cur = " current" if k == current else ""
        mark = (' · <b class="lb-accept">decided</b>' if r["case_id"] in decided else
                ' · <b class="lb-accept">has accepted</b>' if r.get("n_accepted") else "")
        out.append(f'<div class="qrow{cur}"><span class="qid">{k + 1}.</span> {esc(r.get("product") or "")}'
                   f' <span class="muted">image #{int(r["image_id"])}</span><div class="muted">{int(r["n"])} '
                   f'candidate{"s" if r["n"] != 1 else ""} · {esc(", ".join(r.get("models") or []))}{mark}</div></div>')
    out.append("</div>")
    return "".join(out)


def progress_line(prog: dict[str, int], shown: int) -> str:
    return (f'<div class="progress-line"><b>{prog["accepted"]}</b> of {prog["cases"]} cases have an accepted video'
            f' · {shown} in this queue</div>')
