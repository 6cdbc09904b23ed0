"""Dataset statistics (the paper's Figure 3) and the per-triple records that the benchmark runner, the
statistics and the split export share: each triple with its media, category, newest metric results (with
versions) and the resolved designer labels.

`python -m curation stats --workspace W --out DIR` → `compute_stats(ws, out_dir)`: distribution over the 6
domains and their subcategories, distribution of each metric, prompt length in tokens, top prompt terms;
PNG figures plus stats.json with every number drawn.

Labels follow the one label rule (docs/benchmark.md), read from storage.labels: a triple's decision counts
each annotator's label on the triple, or else on its video; the majority decides and a tie goes to the most
recent vote. Image labels (good/bad) follow the same majority rule.
"""
from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

from metrics.registry import METRICS, display_names, is_paper
from storage import Workspace, labels, metric_results, report_store

from .current import current_keys, key_list
from .jobs import Progress, check, quiet

METRIC_NAMES = METRICS                 # the metric keys, in the benchmark's order, extras (CLIPScore) last
DISPLAY = display_names()              # key -> its name (the paper's for the six), as each module declares it


def _decisions(ws: Workspace, item_kind: str, detail: Callable[[dict[str, Any]], dict[str, Any]],
               ) -> dict[int, dict[str, Any]]:
    """item id -> {"decision": 1/0/None, "n_pos", "n_neg", "annotators", "labels": [...]} for every item with
    a counted label: the decision from the label rule (storage.labels), the details from the votes it counted."""
    votes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for v in labels.label_votes(ws, item_kind):
        votes[int(v["item_id"])].append(v)
    resolved = labels.resolved_labels(ws, item_kind)
    out = {}
    for item_id, labs in votes.items():
        r = resolved.get(item_id)
        out[item_id] = {"decision": None if r is None else int(r["decision"]),
                        "n_pos": 0 if r is None else int(r["n_pos"]), "n_neg": 0 if r is None else int(r["n_neg"]),
                        "annotators": [] if r is None else list(r["annotators"]),
                        "by_rule": bool(r is not None and r.get("by_rule")),
                        "labels": [detail(x) for x in labs]}
    return out


def triple_decisions(ws: Workspace, trip: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """triple id -> {"decision": 1 accept / 0 reject, "n_pos", "n_neg", "annotators", "labels": [...]}."""
    every = _decisions(ws, "triple", lambda x: {"annotator": x["annotator"], "value": x["value"],
                                               "kind": x["label_kind"], "reasons": list(x["reasons"] or []),
                                               "note": x["note"]})
    return {int(t["triple_id"]): every[int(t["triple_id"])] for t in trip if int(t["triple_id"]) in every}


def image_decisions(ws: Workspace) -> dict[int, dict[str, Any]]:
    return _decisions(ws, "image", lambda x: {"annotator": x["annotator"], "value": x["value"],
                                             "reasons": list(x["reasons"] or []), "note": x["note"]})


def metric_table(ws: Workspace, trip: list[dict[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """triple id -> metric -> newest current result (curation.current: stale versions and backends are left
    out). A result stored for the triple wins; a video-level result (triple_id 0: MotionX, AesScore) applies
    to every triple of the video."""
    keys = key_list(current_keys(ws))
    results = metric_results.latest_metric_results(ws, [t["video_id"] for t in trip], keys=keys) if trip else []
    by_key = {(int(r["video_id"]), int(r["triple_id"]), r["metric"]): r for r in results}
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for t in trip:
        vid, tid = int(t["video_id"]), int(t["triple_id"])
        row = {}
        for m in METRIC_NAMES:
            r = by_key.get((vid, tid, m)) or by_key.get((vid, 0, m))
            if r is not None:
                row[m] = {"value": r["value"], "status": r["status"], "reason": r["reason"],
                          "version": r["metric_version"], "params_hash": r["params_hash"], "backend": r["backend"]}
        out[tid] = row
    return out


def triple_records(ws: Workspace, *, benchmark_set: str | None = None) -> list[dict[str, Any]]:
    """Every triple (of a set, or all) as a dict with `metrics` (metric -> result), `decision` (triple
    label majority or None), `label` (its details), `image_decision` and `image_label`."""
    trip = report_store.triples(ws, benchmark_set=benchmark_set)
    metrics = metric_table(ws, trip)
    decisions = triple_decisions(ws, trip)
    images = image_decisions(ws)
    for t in trip:
        tid = int(t["triple_id"])
        t["metrics"] = metrics.get(tid, {})
        lab = decisions.get(tid)
        t["label"] = lab
        t["decision"] = lab["decision"] if lab else None
        t["decided_by_rule"] = bool(lab and lab["by_rule"])
        ilab = images.get(int(t["image_id"])) if t["image_id"] is not None else None
        t["image_label"] = ilab
        t["image_decision"] = ilab["decision"] if ilab else None
    return trip


def ok_value(rec: dict[str, Any], metric: str) -> float | None:
    r = rec["metrics"].get(metric)
    if r is None or r["status"] != "ok" or r["value"] is None:
        return None
    return float(r["value"])


# == statistics ===================================================================================
TOKEN_RE = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]", re.UNICODE)
WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
STOPWORDS = frozenset("""
a an the and or but nor so yet of to in on at by for with from into onto over under up down out off about
as than then that this these those it its it's is are was were be been being am do does did has have had
having will would shall should can could may might must not no only very too also just while when where
which who whom whose what why how all any both each few more most other some such own same s t
there here their they them his her him he she we our you your i me my mine ours yours
across behind beside between through around along past within without after before during until again
once slowly gently softly slightly lightly little slow soft keep keeps stays stay remains remain
""".split())


def tokenize(text: str) -> list[str]:
    """Prompt tokens: words (with inner apostrophes/hyphens) and punctuation marks, each one token. A
    dependency-free stand-in for a model tokenizer; `tokenizer="clip"` counts CLIP BPE tokens instead."""
    return TOKEN_RE.findall(text)


def _clip_counter() -> Callable[[str], int]:
    from open_clip.tokenizer import SimpleTokenizer  # lazy: imports torch

    tok = SimpleTokenizer()
    return lambda text: len(tok.encode(text))


def _hist(values: list[float], bins: int, lo: float, hi: float) -> dict[str, Any]:
    import numpy as np

    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(lo, hi))
    return {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def _summary(values: list[float]) -> dict[str, Any]:
    import numpy as np

    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    q = np.percentile(a, [10, 25, 50, 75, 90])
    return {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()),
            "p10": float(q[0]), "p25": float(q[1]), "median": float(q[2]), "p75": float(q[3]),
            "p90": float(q[4]), "max": float(a.max())}


def metric_distributions(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric: summary and a 20-bin histogram of ok values in % and counts per status (with reasons)."""
    out = {}
    for m, disp in DISPLAY.items():
        vals = [100.0 * v for r in records if (v := ok_value(r, m)) is not None]
        status = Counter(r["metrics"][m]["status"] for r in records if m in r["metrics"])
        reasons = Counter(r["metrics"][m]["reason"] for r in records
                          if m in r["metrics"] and r["metrics"][m]["status"] != "ok" and r["metrics"][m]["reason"])
        versions = sorted({r["metrics"][m]["version"] for r in records if m in r["metrics"]})
        out[m] = {"display": disp, "paper": is_paper(m), "summary_pct": _summary(vals),
                  "hist_pct": _hist(vals, 20, 0.0, 100.0),
                  "status_counts": dict(status), "missing": sum(1 for r in records if m not in r["metrics"]),
                  "reasons": dict(reasons.most_common(5)), "versions": versions}
    return out


def compute_stats(ws: Workspace, out_dir: str | Path, *, tokenizer: str = "words", top_k: int = 30,
                  benchmark_set: str | None = None,
                  progress: Progress | None = None, cancel: threading.Event | None = None) -> dict[str, Any]:
    """Write the Figure-3 statistics of the workspace (or one benchmark set) under out_dir and return them.

    Files: stats.json, domains.png, metrics.png, prompt_lengths.png, top_terms.png."""
    def say(fraction: float, msg: str) -> None:
        check(cancel, "statistics")
        (progress or quiet)(fraction, msg)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say(0.05, "reading the workspace")
    records = triple_records(ws, benchmark_set=benchmark_set)
    cats = report_store.category_counts(ws)
    if benchmark_set is not None:  # count only the set's triples
        per_cat = Counter(r["category_id"] for r in records)
        for c in cats:
            c["triples"] = per_cat.get(c["category_id"], 0)
            c["videos"] = len({r["video_id"] for r in records if r["category_id"] == c["category_id"]})
    unassigned = report_store.uncategorised_counts(ws)
    unit = "triples" if any(c["triples"] for c in cats) else "images"
    domains: dict[str, dict[str, Any]] = {}
    for c in cats:
        d = domains.setdefault(c["domain"], {"images": 0, "triples": 0, "videos": 0, "subcategories": {}})
        for k in ("images", "triples", "videos"):
            d[k] += int(c[k])
        d["subcategories"][c["category"]] = {k: int(c[k]) for k in ("images", "triples", "videos")}

    say(0.3, "prompts")
    if benchmark_set is None:
        prompts = report_store.prompt_texts(ws)
    else:
        prompts = sorted({r["prompt"] for r in records if r["prompt"]})
    if tokenizer == "clip":
        count = _clip_counter()
        lengths = [count(p) for p in prompts]
    elif tokenizer == "words":
        lengths = [len(tokenize(p)) for p in prompts]
    else:
        raise ValueError(f"tokenizer must be 'words' or 'clip', got {tokenizer!r}")
    terms = Counter()
    for p in prompts:
        terms.update(w for w in (x.lower() for x in WORD_RE.findall(p)) if w not in STOPWORDS and len(w) > 1)
    hi = max(lengths, default=0)
    step = max(1, math.ceil((hi + 1) / 30))
    stats = {
        "unit": unit, "benchmark_set": benchmark_set,
        "totals": {"images": sum(int(c["images"]) for c in cats) + unassigned["images"],
                   "triples": len(records) if benchmark_set is not None
                   else sum(int(c["triples"]) for c in cats) + unassigned["triples"],
                   "videos": len({r["video_id"] for r in records}), "prompts": len(prompts),
                   "models": sorted({r["model"] for r in records if r["model"]})},
        "uncategorised": unassigned,
        "domains": domains,
        "metrics": metric_distributions(records),
        "prompt_length": {"tokenizer": tokenizer, "summary": _summary([float(x) for x in lengths]),
                          "hist": _hist([float(x) for x in lengths], max(1, math.ceil((hi + 1) / step)), 0.0,
                                        float(step * math.ceil((hi + 1) / step)))},
        "top_terms": [[w, n] for w, n in terms.most_common(top_k)],
        "labels": _label_counts(records),
        "files": {},
    }
    say(0.5, "figures")
    stats["files"] = render_stats_figures(stats, out)
    with open(out / "stats.json", "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False, default=str)
    stats["files"]["json"] = str(out / "stats.json")
    say(1.0, "done")
    return stats


def _label_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    c = Counter("accepted" if r["decision"] == 1 else "rejected" if r["decision"] == 0 else "unlabelled"
                for r in records)
    return {k: c.get(k, 0) for k in ("accepted", "rejected", "unlabelled")}


def render_stats_figures(stats: dict[str, Any], out: Path) -> dict[str, str]:
    """domains.png, metrics.png, prompt_lengths.png, top_terms.png under `out`; returns their paths."""
    import matplotlib.pyplot as plt

    files = {}
    for name, fig in stats_figures(stats).items():
        files[name] = str(out / f"{name}.png")
        # "tight" with a margin: a legend or label the layout could not fit is still in the file, never cut off
        fig.savefig(files[name], dpi=110, bbox_inches="tight", pad_inches=0.15)
        plt.close(fig)
    return files


def stats_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """The Figure-3 panels as matplotlib figures (name -> figure), laid out so that no title, label, legend
    or note reaches past the figure's edge."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    unit = stats["unit"]
    palette = plt.get_cmap("tab10").colors
    dom_names = list(stats["domains"])

    def _domains(ax_pie, ax_bar):
        inner = [stats["domains"][d][unit] for d in dom_names]
        if sum(inner) == 0:
            ax_pie.text(0.5, 0.5, f"no {unit} with a category", ha="center", va="center")
            ax_pie.axis("off")
        else:
            outer, colours = [], []
            for i, d in enumerate(dom_names):
                for sub, c in stats["domains"][d]["subcategories"].items():
                    if c[unit]:
                        outer.append(c[unit])
                        colours.append(tuple(min(1.0, x * 0.75 + 0.25) for x in palette[i % 10]))
            ax_pie.pie(outer, radius=1.0, colors=colours, wedgeprops={"width": 0.3, "edgecolor": "w"})
            ax_pie.pie([v if v else 0 for v in inner], radius=0.7, colors=[palette[i % 10] for i in range(len(inner))],
                       wedgeprops={"width": 0.3, "edgecolor": "w"},
                       labels=[f"{v}" if v else "" for v in inner], labeldistance=0.78,
                       textprops={"color": "w", "fontsize": 8, "ha": "center"})
            ax_pie.legend([f"{d} ({stats['domains'][d][unit]})" for d in dom_names], loc="upper center",
                          bbox_to_anchor=(0.5, 0.0), fontsize=8, frameon=False, ncol=2)
            ax_pie.set_title(f"Domains (inner) and subcategories (outer), {unit}")
        names, vals, cols = [], [], []
        for i, d in enumerate(dom_names):
            for sub, c in stats["domains"][d]["subcategories"].items():
                names.append(sub)
                vals.append(c[unit])
                cols.append(palette[i % 10])
        y = np.arange(len(names))
        ax_bar.barh(y, vals, color=cols)
        ax_bar.set_yticks(y, names, fontsize=6)
        ax_bar.invert_yaxis()
        ax_bar.set_xlabel(unit)
        ax_bar.set_title("Per subcategory")

    def _metrics(axes):     # the paper's six (a 2 x 3 grid); the extras' numbers are in stats.json only
        for ax, (m, disp) in zip(axes, [(m, d) for m, d in DISPLAY.items() if is_paper(m)]):
            md = stats["metrics"][m]
            h = md["hist_pct"]
            if md["summary_pct"]["n"]:
                edges = np.asarray(h["edges"])
                ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="#4c72b0",
                       edgecolor="white")
                ax.set_title(f"{disp} (n={md['summary_pct']['n']}, mean {md['summary_pct']['mean']:.1f}%)",
                             fontsize=9)
            else:
                why = ", ".join(f"{k}: {v}" for k, v in md["status_counts"].items()) or "not scored"
                reason = next(iter(md["reasons"]), "")
                # wrapped to the panel's width: one long line ran over the neighbouring panels
                note = "\n".join(["no values", why] + textwrap.wrap(reason, 42)[:3])
                ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=7, transform=ax.transAxes)
                ax.set_title(f"{disp}", fontsize=9)
            ax.set_xlim(0, 100)
            ax.set_xlabel("%", fontsize=8)

    def _lengths(ax):
        h = stats["prompt_length"]["hist"]
        edges = np.asarray(h["edges"])
        ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="#55a868", edgecolor="white")
        s = stats["prompt_length"]["summary"]
        ax.set_title(f"Prompt length ({stats['prompt_length']['tokenizer']} tokens)"
                     + (f", mean {s['mean']:.1f}" if s.get("n") else ""))
        ax.set_xlabel("tokens")
        ax.set_ylabel("prompts")

    def _terms(ax):
        tt = stats["top_terms"][:25]
        if not tt:
            ax.text(0.5, 0.5, "no prompts", ha="center", va="center")
            return
        y = np.arange(len(tt))
        ax.barh(y, [n for _, n in tt], color="#c44e52")
        ax.set_yticks(y, [w for w, _ in tt], fontsize=7)
        ax.invert_yaxis()
        ax.set_title("Top prompt terms")

    figs = {}
    figs["domains"], (a, b) = plt.subplots(1, 2, figsize=(13, 7), gridspec_kw={"width_ratios": [1.2, 1]},
                                           layout="constrained")
    _domains(a, b)
    figs["metrics"], axes = plt.subplots(2, 3, figsize=(12, 6), layout="constrained")
    _metrics(axes.ravel())
    figs["prompt_lengths"], ax = plt.subplots(figsize=(6, 4), layout="constrained")
    _lengths(ax)
    figs["top_terms"], ax = plt.subplots(figsize=(6, 6), layout="constrained")
    _terms(ax)
    return figs
