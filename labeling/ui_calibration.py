"""The Videos tab's calibration panel: what `python -m curation calibrate` learnt from the designers' accept/reject
labels (a threshold per metric and component, and the model's operating points, with their out-of-fold precision
and recall), how many unlabelled videos each direction would decide and which, and Calibrate (a background job),
Apply and Undo apply: the same code paths as `calibrate`, `calibrate --apply [--direction]` and
`calibrate --undo` (curation.calibrate). Scripts: /calibration, /calibration_apply, /calibration_undo (JSON),
/calibration_run (the job's progress)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from curation import calibrate as cal_mod
from curation.jobs import Refused
from storage import calibrations, videos

from .jobs import JobRunner, progress_md
from .service import ReviewService

DIRECTIONS = [("Both", "both"), ("Auto-reject only", "reject"), ("Auto-accept only", "accept")]
PREVIEW_ROWS = 8
JOB = "calibrate"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _op(op: dict[str, Any], sign: str, fmt: str = "{:.3g}") -> str:
    """An operating point in a table cell: "< 0.29 · P 100 % · R 92 % · 28 %" or why there is none."""
    if op.get("threshold") is None:
        best = op.get("best_precision")
        return f"none (best precision {_pct(best)})" if best is not None else "none"
    return (f"{sign} {fmt.format(op['threshold'])} · P {_pct(op['precision'])} · R {_pct(op['recall'])} · "
            f"decides {_pct(op['coverage'])}")


def summary_md(cal: dict[str, Any] | None, stale: bool = False) -> str:
    """The latest calibration: learnt from how many labels, and per feature and the model both operating points."""
    if cal is None:
        return ("**No calibration yet.** Calibrate learns, from the designers' accept/reject labels of videos, where "
                "each metric separates them, and a small model over all of them.")
    c, cv = cal["label_counts"], cal["cv_metrics"]
    lines = [f"**Calibration {cal['id']}** ({str(cal['created_at'])[:16]}): learnt from {cal['n_labels']} labelled "
             f"videos ({c['accept']} accepted, {c['reject']} rejected), {cv['folds']}-fold CV. Operating point: the "
             f"most videos decided at out-of-fold precision ≥ {cv['target_precision']:g} (P precision, R recall).",
             "", "| feature | threshold | AUC | bal. acc. (CV) | auto-reject | auto-accept |",
             "|:--|--:|--:|--:|:--|:--|"]
    for name, t in cal["thresholds"].items():
        lo, hi = ("<", "≥") if t["higher_is_better"] else (">", "≤")
        cv_acc = "–" if t["cv_balanced_accuracy"] is None else f"{t['cv_balanced_accuracy']:.2f}"
        lines.append(f"| {cal_mod.feature_label(name)} | {lo} {t['threshold']:.3g} | {t['auc']:.2f} | "
                     f"{t['balanced_accuracy']:.2f} ({cv_acc}) | {_op(t['reject']['operating_point'], lo)} | "
                     f"{_op(t['accept']['operating_point'], hi)} |")
    lines.append(f"| **model P(accept)** (applied) | | | | {_op(cv['reject']['operating_point'], '<', '{:.3f}')} | "
                 f"{_op(cv['accept']['operating_point'], '≥', '{:.3f}')} |")
    if stale:
        lines += ["", "_The designers' labels changed since this calibration: calibrate again to learn them._"]
    return "\n".join(lines)


def preview_md(rep: dict[str, Any] | None, names: dict[int, dict[str, Any]], error: str | None = None) -> str:
    """What Apply would write: per direction how many unlabelled videos, and the first of them."""
    if error:
        return f"_{error}_"
    if rep is None:
        return ""
    lines = [f"**Apply would label {rep['reject'] + rep['accept']} of {rep['candidates']} videos no designer has "
             f"labelled**, as `{rep['annotator']}` in one batch: **{rep['reject']}** auto-rejected, "
             f"**{rep['accept']}** auto-accepted; left to the designers {rep['undecided']} undecided, {rep['no_metrics']} without metric "
             "values" + (f", {rep['conflicting']} both operating points claim" if rep["conflicting"] else "") + "."]
    for d, word in (("reject", "Auto-reject"), ("accept", "Auto-accept")):
        rows = rep["videos"][d]
        if not rows:
            continue
        lines += ["", f"{word} ({len(rows)}):", "", "| video | file | model | P(accept) |", "|--:|:--|:--|--:|"]
        for e in rows[:PREVIEW_ROWS]:
            b = names.get(e["video_id"], {})
            lines.append(f"| {e['video_id']} | {Path(b.get('path') or '').name} | {b.get('model') or ''} | "
                         f"{e['p_accept']:.3f} |")
        if len(rows) > PREVIEW_ROWS:
            lines.append(f"| … | and {len(rows) - PREVIEW_ROWS} more | | |")
    return "\n".join(lines)


class CalibrationPanel:
    """The panel and its endpoints; jobs share the app's runner (one calibration at a time, listed with the
    other jobs)."""

    def __init__(self, svc: ReviewService, jobs: JobRunner) -> None:
        self.svc = svc
        self.jobs = jobs

    # -- what the endpoints return ---------------------------------------------------------------
    def latest(self) -> dict[str, Any] | None:
        return calibrations.get(self.svc.ws)

    def requirement(self) -> dict[str, Any]:
        """What calibrating needs against what the workspace has (labelled videos with metric values)."""
        counts = cal_mod.training_data(self.svc.ws)["counts"]
        need = {c: max(0, cal_mod.MIN_PER_CLASS - counts[c]) for c in ("accept", "reject")}
        return {"have": counts, "needed": need, "min_per_class": cal_mod.MIN_PER_CLASS}

    def preview(self, direction: str = "both") -> dict[str, Any]:
        """Apply as a dry run (the same code path), with each listed video's file and model."""
        rep = cal_mod.apply(self.svc.ws, direction=direction or "both", dry_run=True)
        ids = [e["video_id"] for d in ("reject", "accept") for e in rep["videos"][d][:PREVIEW_ROWS]]
        return {**rep, "names": videos.briefs(self.svc.ws, ids)}

    def apply(self, direction: str = "both") -> dict[str, Any]:
        return cal_mod.apply(self.svc.ws, direction=direction or "both")

    def undo(self) -> dict[str, Any]:
        return cal_mod.undo_last_apply(self.svc.ws)

    # -- the panel -------------------------------------------------------------------------------
    def view(self, direction: str = "both") -> tuple[str, str]:
        """-> summary markdown, preview markdown."""
        cal = self.latest()
        if cal is None:
            r = self.requirement()
            h, n, k = r["have"], r["needed"], r["min_per_class"]
            ready = (f"The workspace has {h['accept']} accepted and {h['reject']} rejected videos with metric values"
                     + (f" ({h['no_metrics']} more labelled without any)" if h["no_metrics"] else "") + "; ")
            ready += (f"calibrating needs at least {k} of each: label {n['accept']} more accepted and "
                      f"{n['reject']} more rejected first." if any(n.values()) else "ready to calibrate.")
            return summary_md(None) + "\n\n" + ready, ""
        try:
            rep = self.preview(direction)
        except Refused as exc:
            return summary_md(cal), preview_md(None, {}, str(exc))
        return summary_md(cal, rep["stale_labels"]), preview_md(rep, rep["names"])

    def h_calibrate(self, direction, request: gr.Request = None):
        """Calibrate in the background (progress, cancel); then the panel shows the new calibration."""
        try:
            job = self.jobs.start(JOB, "Calibrating from the designers' video labels",
                                  lambda job: cal_mod.calibrate(self.svc.ws, progress=job.progress,
                                                                cancel=job.cancel)["id"])
        except RuntimeError as exc:
            raise gr.Error(str(exc)) from None
        for md in self.jobs.follow(job, progress_md):
            yield md, gr.skip(), gr.skip()
        yield (progress_md(job, tail=1), *self.view(direction))

    def h_cancel(self):
        return "Cancelling…" if self.jobs.cancel(JOB) else "Nothing is running."

    def h_apply(self, direction):
        try:
            rep = self.apply(direction)
        except Refused as exc:
            return f"**Not applied:** {exc}", *self.view(direction)
        msg = (f"Labelled {rep['written']} videos as `{rep['annotator']}` ({rep['reject']} rejected, {rep['accept']} "
               "accepted) in one batch; **Undo apply** takes it back." if rep["written"] else
               "Nothing to label: no video without a designer's label is decided at the operating points.")
        return msg, *self.view(direction)

    def h_undo(self, direction):
        try:
            rep = self.undo()
        except Refused as exc:
            return f"**Nothing undone:** {exc}", *self.view(direction)
        return f"Took back {rep['undone']} labels of `{rep['annotator']}` (one batch).", *self.view(direction)

    def build(self) -> None:
        with gr.Accordion("Calibration: metric thresholds learnt from your accept / reject labels", open=False,
                          elem_id="calib-panel") as acc:
            summary = gr.Markdown(elem_id="calib-summary")
            direction = gr.Radio(DIRECTIONS, value="both", label="Apply: which decisions", elem_id="calib-direction")
            preview = gr.Markdown(elem_id="calib-preview")
            with gr.Row():
                run = gr.Button("Calibrate", variant="primary", elem_id="calib-run")
                cancel = gr.Button("Cancel", variant="stop", elem_id="calib-cancel")
                apply = gr.Button("Apply", elem_id="calib-apply")
                undo = gr.Button("Undo apply", elem_id="calib-undo")
                refresh = gr.Button("Refresh", elem_id="calib-refresh")
            status = gr.Markdown(elem_id="calib-status")
        shown = [summary, preview]
        # read when opened (labels change meanwhile; at 10,000 videos a dry run reads every metric value: ~1 s)
        acc.expand(self.view, [direction], shown, api_visibility="private", show_progress="minimal")
        refresh.click(self.view, [direction], shown, api_visibility="private", show_progress="minimal")
        direction.change(self.view, [direction], shown, api_visibility="private", show_progress="minimal")
        run.click(self.h_calibrate, [direction], [status, *shown], api_name="calibration_run", concurrency_limit=2)
        cancel.click(self.h_cancel, None, [status], api_name="calibration_run_cancel", concurrency_limit=None)
        apply.click(self.h_apply, [direction], [status, *shown], api_visibility="private", concurrency_limit=1,
                    concurrency_id="calibration-write")
        undo.click(self.h_undo, [direction], [status, *shown], api_visibility="private", concurrency_limit=1,
                   concurrency_id="calibration-write")
        self._register_api()

    def _register_api(self) -> None:
        def calibration(direction: str = "both") -> dict:
            """The latest calibration (thresholds and operating points, without curves) and what Apply would write
            in this direction ("preview": apply's dry run, each listed video's file and model in "names"); without
            a calibration, what calibrating needs ("requirement")."""
            cal = self.latest()
            if cal is None:
                return {"calibration": None, "requirement": self.requirement()}
            ops = cal_mod.summary(cal)["operating_points"]
            try:
                prev = self.preview(direction)
                # 'path' renamed 'media_path', as labeling.ui._plain does: gradio_client reads a dict with a
                # 'path' as a file to download
                prev["names"] = {str(k): {"media_path": v["path"], "model": v["model"]}
                                 for k, v in prev["names"].items()}
            except Refused as exc:
                prev = {"error": str(exc)}
            return {"calibration": {k: cal[k] for k in ("id", "n_labels", "label_counts", "version")},
                    "created_at": str(cal["created_at"]), "operating_points": ops, "preview": prev}

        def calibration_apply(direction: str = "both") -> dict:
            """Label the videos no designer labelled that the latest calibration decides, as rule:<id>, in one
            batch (`calibrate --apply --direction`); returns apply's report."""
            return self._answer(self.apply, direction)

        def calibration_undo() -> dict:
            """Take back the newest applied batch of rule labels, all of it (`calibrate --undo`)."""
            return self._answer(self.undo)

        gr.api(calibration, api_name="calibration", concurrency_limit=None)
        gr.api(calibration_apply, api_name="calibration_apply", concurrency_limit=1, concurrency_id="calibration-write")
        gr.api(calibration_undo, api_name="calibration_undo", concurrency_limit=1, concurrency_id="calibration-write")

    @staticmethod
    def _answer(fn, *args) -> dict:
        try:
            return fn(*args)
        except Refused as exc:
            raise gr.Error(str(exc), print_exception=False) from None
