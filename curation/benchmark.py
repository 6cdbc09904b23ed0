"""The InnoAds-Bench runner: `python -m curation bench --workspace W --out DIR` → `run_benchmark(ws, out_dir)`.

Scores every (case, model) of a benchmark set with the six metrics and the extras (CLIPScore; cached results
are reused; what is missing is scored through curation.scoring when that module is present) and writes under
out_dir:

- leaderboard.md / .csv / .html / .json: the paper's Table 3 (models grouped by type, six metrics in %, best
  bold, second underlined), then one column per extra, headed "CLIPScore*" with the footnote "* not one of
  InnoAds-Bench's six metrics"; radar.png / radar.svg: the paper's Figure 9 (left), the six only;
- domains.md / domains.csv: every metric per domain (6 domains) and model;
- agreement.md / agreement.json: metric-designer agreement (ROC-AUC of predicting "accept" per metric,
  Spearman / Kendall between per-model metric means and accept rates, bootstrap CIs);
- user_study.md / .json / .png / .svg: the Compare tab's pairwise judgements (the paper's Figure 9, right):
  per model the preference rate on prompt following and on advertising quality, the number of judgements
  and a Bradley-Terry ranking;
- report.md (all of it on one page) and summary.json.
Metrics without values are shown as such ("unavailable", "n/a", "error", "not scored") with their reasons.

A case is (source image, prompt); a model's score for a metric is the mean over cases of its per-case value
(the mean over that model's videos of the case, normally one), over cases whose result is "ok"; "n/a" results
(e.g. TSScore without text) are excluded from the mean and counted.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from metrics.registry import EXTRA_MARK, EXTRA_NOTE, is_paper, marked
from storage import Workspace, report_store, triples

from . import agreement, benchset, report
from .current import current_keys, stale_counts
from .executors import run_scoring
from .jobs import Cancelled, Progress, check, quiet, sub
from .stats import DISPLAY, METRIC_NAMES, ok_value, triple_records

UNTYPED = "Other"


def _name(m: str) -> str:
    """A metric's name in the report: the paper's for the six, the extras marked ("CLIPScore*")."""
    return marked(m, DISPLAY[m])


def _extra_footnote(metrics: list[str]) -> str:
    extras = [_name(m) for m in metrics if not is_paper(m)]
    return f"\n\\{EXTRA_MARK} {EXTRA_NOTE} ({', '.join(extras)}).\n" if extras else ""   # \*: no list item


def resolve_set(ws: Workspace, name: str | None) -> str | None:
    """The set to run: the given name; else the only named set; else None (= every triple)."""
    sets = triples.benchmark_set_names(ws)
    if name is not None:
        if not any(s["name"] == name for s in sets):
            known = ", ".join(repr(s["name"]) for s in sets if s["name"]) or "none"
            raise benchset.BenchSetError(f"no triples in benchmark set {name!r} (sets in the workspace: {known})")
        return name
    named = [s["name"] for s in sets if s["name"]]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise benchset.BenchSetError("the workspace holds several benchmark sets (" + ", ".join(named)
                                     + "); choose one with --name")
    return None


def score_missing(ws: Workspace, records: list[dict[str, Any]], metrics: list[str], *,
                  progress: Progress | None = None, cancel: threading.Event | None = None) -> dict[str, Any]:
    """Score the videos of `records` that lack a result for any of `metrics` (cached ones are skipped by the
    scorer itself). Cancelling stops the scoring (Cancelled); a scorer failure is reported, not raised, so the
    report of what is cached is not lost."""
    todo = sorted({r["video_id"] for r in records if any(m not in r["metrics"] for m in metrics)})
    if not todo:
        return {"scored_videos": 0}
    t0 = time.perf_counter()
    try:
        run_scoring(ws, metrics, video_ids=todo, progress=progress, cancel=cancel)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - reported in the benchmark's warnings
        return {"scored_videos": 0, "missing_videos": len(todo), "error": f"{type(exc).__name__}: {exc}"}
    return {"scored_videos": len(todo), "seconds": round(time.perf_counter() - t0, 2)}


def assign_cases(records: list[dict[str, Any]]) -> None:
    """Set r["case"]. A case is its source image and prompt (the paper's cases share one prompt across
    models). Where no model has two prompts for one image (e.g. the demo, whose models got different prompts
    for the same ad), the image alone identifies the case."""
    prompts: dict[tuple, set] = defaultdict(set)
    for r in records:
        prompts[(r["model"], r["image_id"])].add(r["prompt_id"])
    by_prompt = any(len(p) > 1 for p in prompts.values())
    for r in records:
        if r["image_id"] is None:
            r["case"] = ("video", r["video_id"])
        else:
            r["case"] = (r["image_id"], r["prompt_id"]) if by_prompt else (r["image_id"],)


def _case_key(r: dict[str, Any]) -> tuple:
    if "case" not in r:
        return (r["image_id"], r["prompt_id"]) if r["image_id"] is not None else ("video", r["video_id"])
    return r["case"]


def aggregate(records: list[dict[str, Any]], metrics: list[str], key: Callable[[dict], Any] | None = None
              ) -> dict[Any, dict[str, dict[str, Any]]]:
    """group -> metric -> {"mean": % or None, "n": cases with a value, "status": Counter, "reasons": Counter}.
    Groups are models, or (model, domain) with `key`."""
    key = key or (lambda r: r["model"])
    per: dict[Any, dict[str, dict[tuple, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    status: dict[Any, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    reasons: dict[Any, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    backends: dict[Any, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in records:
        g = key(r)
        for m in metrics:
            res = r["metrics"].get(m)
            st = res["status"] if res else "not scored"
            status[g][m][st] += 1
            if res and st != "ok" and res.get("reason"):
                reasons[g][m][res["reason"]] += 1
            v = ok_value(r, m)
            if v is not None:
                per[g][m][_case_key(r)].append(v)
                backends[g][m][backend_label(res)] += 1
    out: dict[Any, dict[str, dict[str, Any]]] = {}
    for g in status:
        out[g] = {}
        for m in metrics:
            cases = per[g][m]
            vals = [float(np.mean(v)) for v in cases.values()]
            out[g][m] = {"mean": 100.0 * float(np.mean(vals)) if vals else None, "n": len(vals),
                         "status": dict(status[g][m]), "reasons": dict(reasons[g][m]),
                         "backends": dict(backends[g][m])}
    return out


def backend_label(res: dict[str, Any]) -> str:
    """The stored backend id and metric version of one result, as a leaderboard column names it."""
    return f"{res.get('backend') or 'unknown backend'}, v{res.get('version')}"


class MixedBackends(ValueError):
    """Models of one leaderboard column were scored by different backends (or metric versions)."""


def column_backends(agg: dict[str, dict[str, dict[str, Any]]], metrics: list[str], allow_mixed: bool
                    ) -> tuple[list[str], list[bool]]:
    """Per metric: the column's backend label(s) and whether it mixes backends. Raises MixedBackends (naming
    the models and backends) unless allow_mixed."""
    columns, mixed, problems = [], [], []
    for m in metrics:
        by_backend: dict[str, list[str]] = defaultdict(list)
        for model in sorted(agg):
            for b in agg[model][m]["backends"]:
                by_backend[b].append(model)
        columns.append(" / ".join(sorted(by_backend)))
        mixed.append(len(by_backend) > 1)
        if len(by_backend) > 1:
            problems.append(f"{_name(m)}: " + "; ".join(f"{b} for {', '.join(ms)}" for b, ms in by_backend.items()))
    if any(mixed) and not allow_mixed:
        raise MixedBackends("refusing to rank models scored by different backends — " + " | ".join(problems)
                            + ". Re-score them with one backend (`python -m curation score --force`), or pass "
                            "--allow-mixed to rank them anyway with the cells marked")
    return columns, mixed


def _cell_status(cell: dict[str, Any]) -> str:
    if cell["mean"] is not None:
        return ""
    st = {k: v for k, v in cell["status"].items() if k != "ok"}
    return max(st, key=st.get) if st else "not scored"


def build_leaderboard(records: list[dict[str, Any]], metrics: list[str], types: dict[str, str],
                      type_order: list[str], title: str, *, allow_mixed: bool = False
                      ) -> tuple[report.Leaderboard, dict]:
    agg = aggregate(records, metrics)
    columns, mixed = column_backends(agg, metrics, allow_mixed)
    rows = []
    for model in sorted(agg):
        cells = agg[model]
        rows.append(report.Row(model=model, type=types.get(model, UNTYPED),
                               values=[cells[m]["mean"] for m in metrics],
                               status=[_cell_status(cells[m]) for m in metrics],
                               n=[cells[m]["n"] for m in metrics],
                               backends=[" + ".join(sorted(cells[m]["backends"])) for m in metrics]))
    order = list(type_order) + ([UNTYPED] if any(r.type == UNTYPED for r in rows) and UNTYPED not in type_order
                                else [])
    notes = []
    for m in metrics:
        total = Counter()
        why = Counter()
        for model in agg:
            total.update({k: v for k, v in agg[model][m]["status"].items() if k != "ok"})
            why.update(agg[model][m]["reasons"])
        if total:
            n_all = sum(sum(agg[model][m]["status"].values()) for model in agg)
            parts = ", ".join(f"{k} for {v} of {n_all} videos" for k, v in total.most_common())
            reason = "; ".join(f"{r}" for r, _ in why.most_common(2))
            notes.append(f"{_name(m)}: {parts}" + (f" — {reason}" if reason else ""))
    board = report.Leaderboard(metrics=[DISPLAY[m] for m in metrics], rows=rows, type_order=order, notes=notes,
                               title=title, backends=columns, mixed=mixed, extra=[not is_paper(m) for m in metrics])
    return board, agg


def domain_breakdown(records: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    agg = aggregate(records, metrics, key=lambda r: (r["domain"] or "(no category)", r["model"]))
    pos = {(r["domain"] or "(no category)"): (99 if r["domain_position"] is None else r["domain_position"])
           for r in records}
    domains = sorted({d for d, _ in agg}, key=lambda d: (pos.get(d, 99), d))
    out: dict[str, Any] = {}
    for d in domains:
        out[d] = {model: {m: {"mean": agg[(dd, model)][m]["mean"], "n": agg[(dd, model)][m]["n"],
                              "status": _cell_status(agg[(dd, model)][m])} for m in metrics}
                  for dd, model in sorted(agg) if dd == d}
    return out


def _domains_md(dom: dict[str, Any], metrics: list[str]) -> str:
    lines = []
    for d, models in dom.items():
        lines.append(f"### {d}\n")
        lines.append("| Model | " + " | ".join(_name(m) for m in metrics) + " |")
        lines.append("|:--|" + "|".join(":-:" for _ in metrics) + "|")
        marks = {m: report.rank_marks([models[x][m]["mean"] for x in models]) for m in metrics}
        for i, (model, cells) in enumerate(models.items()):
            out = []
            for m in metrics:
                c = cells[m]
                t = f"{c['mean']:.2f}" if c["mean"] is not None else (c["status"] or "not scored")
                mk = marks[m][i]
                out.append(f"**{t}**" if mk == "best" and len(models) > 1 else
                           f"<u>{t}</u>" if mk == "second" else t)
            lines.append(f"| {model} | " + " | ".join(out) + " |")
        lines.append("")
    return "\n".join(lines) + _extra_footnote(metrics)


TOP_DISAGREE = 5


def designer_agreement(records: list[dict[str, Any]], metrics: list[str], *, n_boot: int, seed: int
                       ) -> dict[str, Any]:
    # a decision a calibrated rule made is the metrics' own verdict: agreeing with it would be circular
    by_rule = sum(1 for r in records if r["decision"] in (0, 1) and r.get("decided_by_rule"))
    labelled = [r for r in records if r["decision"] in (0, 1) and not r.get("decided_by_rule")]
    out: dict[str, Any] = {"labelled_videos": len(labelled), "rule_decided_left_out": by_rule,
                           "accepted": sum(1 for r in labelled if r["decision"] == 1),
                           "rejected": sum(1 for r in labelled if r["decision"] == 0), "metrics": {}}
    for m in metrics:
        pairs = [(v, r["decision"], r["model"]) for r in labelled if (v := ok_value(r, m)) is not None]
        auc = agreement.auc_with_ci([p[0] for p in pairs], [p[1] for p in pairs], n_boot=n_boot, seed=seed)
        per_model: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for v, y, model in pairs:
            per_model[model][0].append(v)
            per_model[model][1].append(y)
        corr = agreement.model_level_correlation(dict(per_model), n_boot=n_boot, seed=seed)
        if not pairs:
            auc["reason"] = "no labelled video has a value for this metric"
        out["metrics"][m] = {"display": _name(m), "paper": is_paper(m), "roc_auc": auc, "model_level": corr,
                             "disagreements": top_disagreements(
                                 [(r["triple_id"], v, r["decision"]) for r in labelled
                                  if (v := ok_value(r, m)) is not None])}
    return out


def top_disagreements(rows: list[tuple[int, float, int]], k: int = TOP_DISAGREE) -> list[dict[str, Any]]:
    """The k labelled triples where a metric and the designer disagree most: an accepted one the metric ranks
    low, a rejected one it ranks high (by the value's mid-rank among the labelled values, 0..1). Where to look
    first for a broken metric or a mislabel."""
    if len(rows) < 2:
        return []
    vals = np.array([v for _, v, _ in rows], float)
    below = (vals[:, None] > vals[None, :]).sum(1) + 0.5 * ((vals[:, None] == vals[None, :]).sum(1) - 1)
    pct = below / (len(rows) - 1)
    dis = [(1.0 - p) if y == 1 else p for p, (_, _, y) in zip(pct, rows)]
    order = sorted(range(len(rows)), key=lambda i: (-dis[i], rows[i][0]))[:k]
    return [{"triple_id": int(rows[i][0]), "value": float(rows[i][1]), "decision": "accept" if rows[i][2] == 1
             else "reject", "disagreement": round(float(dis[i]), 3)} for i in order if dis[i] > 0.5]


def _fmt(x: float | None, ci: list | None = None, digits: int = 3) -> str:
    if x is None:
        return "—"
    s = f"{x:.{digits}f}"
    return s + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def _agreement_md(a: dict[str, Any]) -> str:
    ruled = a.get("rule_decided_left_out") or 0
    lines = [f"Labelled videos: {a['labelled_videos']} ({a['accepted']} accepted, {a['rejected']} rejected"
             + (f"; {ruled} decided by a calibrated rule left out" if ruled else "") + "). "
             "ROC-AUC: how well each metric predicts a designer's *accept* (0.5 = chance); Spearman / Kendall: "
             "per-model metric mean vs per-model accept rate. Brackets: 95% bootstrap intervals.\n",
             "| Metric | ROC-AUC [95% CI] | n (acc/rej) | Spearman [95% CI] | Kendall [95% CI] | models | note |",
             "|:--|:-:|:-:|:-:|:-:|:-:|:--|"]
    for m, d in a["metrics"].items():
        auc, ml = d["roc_auc"], d["model_level"]
        note = "; ".join(x for x in (auc.get("reason"), ml.get("reason")) if x)
        lines.append(f"| {d['display']} | {_fmt(auc['auc'], auc.get('ci'))} | {auc['n']} ({auc['n_accept']}/"
                     f"{auc['n_reject']}) | {_fmt(ml.get('spearman'), ml.get('spearman_ci'))} | "
                     f"{_fmt(ml.get('kendall'), ml.get('kendall_ci'))} | {ml['models']} | {note} |")
    worst = [(d["display"], x) for d in a["metrics"].values() for x in d.get("disagreements") or []]
    if worst:
        lines += ["", "Top disagreements (a designer's accept the metric ranks low, or a reject it ranks high; "
                  "0.5 = no disagreement, 1 = the metric's lowest accept or highest reject):", "",
                  "| Metric | triple | decision | value | disagreement |", "|:--|--:|:--|--:|--:|"]
        lines += [f"| {name} | {x['triple_id']} | {x['decision']} | {x['value']:.3f} | {x['disagreement']:.2f} |"
                  for name, x in worst]
    return "\n".join(lines) + "\n" + _extra_footnote(list(a["metrics"]))


CRITERIA = (("prompt_following", "Prompt following"), ("ad_quality", "Advertising quality"))


def _user_study_md(us: dict[str, Any]) -> str:
    if not us["judgements"]:
        return "No Compare-tab judgements for this set yet.\n"
    lines = [f"{us['judgements']} judgements by {us['annotators']} annotator(s). Preference rate = (wins + "
             "ties/2) / judgements involving the model; BT = Bradley-Terry strength (geometric mean 1).\n",
             "| Model | " + " | ".join(f"{t} pref. | n | BT (rank)" for _, t in CRITERIA) + " |",
             "|:--|" + "|".join(":-:|:-:|:-:" for _ in CRITERIA) + "|"]
    models = sorted({m for c, _ in CRITERIA for m in us["criteria"][c]["models"]})
    for m in models:
        cells = []
        for c, _ in CRITERIA:
            row = us["criteria"][c]["models"].get(m)
            if row is None or not row["n"]:
                cells += ["—", "0", "—"]
            else:
                cells += [f"{100 * row['preference_rate']:.1f}%", str(row["n"]),
                          f"{row['bt_strength']:.2f} ({row['bt_rank']})"]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    for c, t in CRITERIA:
        lines.append(f"\n{t} ranking (Bradley-Terry): " + " > ".join(us["criteria"][c]["ranking"]))
    return "\n".join(lines) + "\n"


def _user_study_figure(us: dict[str, Any], out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({m for c, _ in CRITERIA for m in us["criteria"][c]["models"]})
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(models) + 2), 4))
    width = 0.38
    for k, (c, title) in enumerate(CRITERIA):
        rows = us["criteria"][c]["models"]
        vals = [100 * (rows[m]["preference_rate"] or 0) if m in rows else 0 for m in models]
        xs = [i + (k - 0.5) * width for i in range(len(models))]
        bars = ax.bar(xs, vals, width, label=title)
        for b, m in zip(bars, models):
            n = rows[m]["n"] if m in rows else 0
            ax.annotate(f"n={n}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=7)
    ax.axhline(50, color="#888", lw=0.8, ls=":")
    ax.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("preference rate (%)")
    ax.set_ylim(0, 105)
    ax.set_title("User study (Compare tab)")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    files = {"png": str(out / "user_study.png"), "svg": str(out / "user_study.svg")}
    fig.savefig(files["png"], dpi=110)
    fig.savefig(files["svg"])
    plt.close(fig)
    return files


def run_benchmark(ws: Workspace, out_dir: str | Path, *, benchmark_set: str | None = None,
                  set_file: str | Path | None = None, model_types: dict[str, str] | None = None,
                  metrics: list[str] | None = None, score: bool = True, n_boot: int = 1000, seed: int = 0,
                  progress: Progress | None = None, cancel: threading.Event | None = None,
                  allow_mixed: bool = False) -> dict[str, Any]:
    """Run the benchmark on a set (imported first from `set_file` when given) and write the report files
    under out_dir. Returns a summary dict (also written as summary.json) with the paths in "files".
    Only current results count (curation.current); stale ones are re-scored when `score`. Raises
    MixedBackends when a column's models were scored by different backends, unless allow_mixed."""
    say = progress or quiet
    metrics = [m for m in (metrics or list(METRIC_NAMES))]
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRIC_NAMES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    imported = None
    if set_file is not None:
        say(0.02, f"importing {set_file}")
        imported = benchset.import_set(ws, set_file)
        benchmark_set = imported["name"]
    name = resolve_set(ws, benchmark_set)
    check(cancel, "benchmark")
    say(0.05, "reading triples and cached scores")
    records = [r for r in triple_records(ws, benchmark_set=name)]
    unnamed = [r for r in records if not r["model"]]
    records = [r for r in records if r["model"]]
    scoring = {"scored_videos": 0, "skipped": True}
    current = current_keys(ws)
    here = [m for m in metrics if current[m]["source"] == "this machine"]   # the others cannot be scored here
    if score and records and here:
        say(0.1, "scoring what is missing or stale")
        scoring = score_missing(ws, records, here, progress=sub(say, 0.1, 0.6), cancel=cancel)
        if scoring.get("scored_videos"):
            records = [r for r in triple_records(ws, benchmark_set=name) if r["model"]]
    assign_cases(records)
    check(cancel, "benchmark")
    say(0.62, "leaderboard and radar")
    types, type_order = benchset.model_types(ws, name, model_types)
    title = f"InnoAds-Bench: {name}" if name else "InnoAds-Bench: all triples"
    board, agg = build_leaderboard(records, metrics, types, type_order, title, allow_mixed=allow_mixed)
    files = report.write_leaderboard(board, out)
    check(cancel, "benchmark")
    say(0.72, "per-domain breakdown")
    dom = domain_breakdown(records, metrics)
    import csv

    with open(out / "domains.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["domain", "model", "metric", "mean_pct", "n_cases", "status"])
        for d, models in dom.items():
            for model, cells in models.items():
                for m in metrics:
                    c = cells[m]
                    w.writerow([d, model, _name(m), "" if c["mean"] is None else f"{c['mean']:.4f}", c["n"],
                                c["status"] or "ok"])
    (out / "domains.md").write_text("## Per-domain breakdown (scores in %)\n\n" + _domains_md(dom, metrics),
                                    encoding="utf-8")
    files["domains_csv"], files["domains_md"] = str(out / "domains.csv"), str(out / "domains.md")
    check(cancel, "benchmark")
    say(0.8, "metric-designer agreement")
    agr = designer_agreement(records, metrics, n_boot=n_boot, seed=seed)
    (out / "agreement.json").write_text(json.dumps(agr, indent=2), encoding="utf-8")
    (out / "agreement.md").write_text("## Metric-designer agreement\n\n" + _agreement_md(agr), encoding="utf-8")
    files["agreement_json"], files["agreement_md"] = str(out / "agreement.json"), str(out / "agreement.md")
    check(cancel, "benchmark")
    say(0.88, "user study")
    ids = {int(r["triple_id"]) for r in records}
    models = {r["model"] for r in records}
    judgements = [j for j in report_store.pair_judgements(ws)
                  if (_int(j.get("left_triple")) in ids and _int(j.get("right_triple")) in ids)
                  or (name is None and j.get("left_model") in models and j.get("right_model") in models)]
    us = agreement.user_study(judgements)
    (out / "user_study.json").write_text(json.dumps(us, indent=2), encoding="utf-8")
    (out / "user_study.md").write_text("## User study (Compare tab)\n\n" + _user_study_md(us), encoding="utf-8")
    files["user_study_json"], files["user_study_md"] = str(out / "user_study.json"), str(out / "user_study.md")
    if us["judgements"]:
        fig = _user_study_figure(us, out)
        files["user_study_png"], files["user_study_svg"] = fig["png"], fig["svg"]
    cases = {_case_key(r) for r in records}
    coverage = {m: len({_case_key(r) for r in records if r["model"] == m}) for m in sorted(models)}
    warnings = []
    if unnamed:
        warnings.append(f"{len(unnamed)} triple(s) without a generator model were left out")
    for m, n in coverage.items():
        if n < len(cases):
            warnings.append(f"{m} has videos for {n} of {len(cases)} cases")
    dup = Counter((r["model"], _case_key(r)) for r in records)
    if any(v > 1 for v in dup.values()):
        warnings.append("some (case, model) pairs have several videos; their scores are averaged per case")
    if scoring.get("error"):
        warnings.append(f"scoring failed ({scoring['error']}); cached scores only")
    stale = {m: n for m, n in stale_counts(ws, current).items() if m in metrics}
    for m, n in stale.items():
        warnings.append(f"{_name(m)}: {n} stored result(s) of another version or backend are stale and not "
                        "shown" + ("" if current[m]["source"] == "this machine" else
                                   " (this machine cannot re-score them)"))
    summary = {
        "benchmark_set": name, "cases": len(cases), "models": sorted(models), "videos": len(records),
        "model_coverage": coverage, "imported": imported, "scoring": scoring, "warnings": warnings,
        "metrics": metrics, "extra_metrics": [m for m in metrics if not is_paper(m)],
        "leaderboard": [{"model": r.model, "type": r.type,
                         **{m: {"pct": r.values[j], "n": r.n[j], "status": r.status[j] or "ok",
                                "backend": r.backends[j]}
                            for j, m in enumerate(metrics)}} for r in board.ordered_rows()],
        "backends": {m: {"column": board.backends[j], "mixed": board.mixed[j]} for j, m in enumerate(metrics)},
        "stale": stale,
        "unavailable": board.notes, "domains": dom, "agreement": agr, "user_study": us,
        "seconds": None, "files": files,
    }
    say(0.95, "report")
    md = [f"# {title}\n", f"{len(cases)} cases x {len(models)} models ({len(records)} videos). "
                          f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.\n"]
    md += [f"> {w}\n" for w in warnings]
    md += ["## Leaderboard\n", report.to_markdown(board), "\n![radar](radar.png)\n",
           "## Per-domain breakdown (scores in %)\n", _domains_md(dom, metrics),
           "## Metric-designer agreement\n", _agreement_md(agr),
           "## User study (Compare tab)\n", _user_study_md(us)]
    if us["judgements"]:
        md.append("\n![user study](user_study.png)\n")
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    files["report_md"] = str(out / "report.md")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    files["summary_json"] = str(out / "summary.json")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str, ensure_ascii=False),
                                      encoding="utf-8")
    say(1.0, "done")
    return summary


def _int(x: Any) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None
