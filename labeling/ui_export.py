"""The Export tab's selection: the options `python -m curation export` has, as controls. Images: the current label
good (the default), or a minimum classifier score, or the filters passed (`--min-score X` / `--passed-filters`: the
score or the filters select instead of the label, and a bad label still drops the image). Triples: a rule's labels
(`calibrate --apply`) used as the decision where no designer labelled, or ignored (`--rule-labels`)."""
from __future__ import annotations

from typing import Any

import gradio as gr

IMAGE_SELECT = [("Current label good", "label"), ("Minimum classifier score", "score"),
                ("Passed the heuristic filters", "filters")]
RULE_LABELS = [("Use them where no designer labelled (default)", "use"),
               ("Ignore them: the designers' labels only", "ignore")]
DEFAULT_MIN_SCORE = 0.5


def export_options(kind: str | None, select_by: str | None = "label", min_score: float | None = None,
                   rule_labels: str | None = "use") -> dict[str, Any]:
    """The curation.splits.ExportOptions fields these controls stand for, as the CLI derives them."""
    if (kind or "triples") != "images":
        return {"kind": "triples", "rule_labels": rule_labels or "use"}
    if select_by == "score":
        score = DEFAULT_MIN_SCORE if min_score in (None, "") else float(min_score)
        return {"kind": "images", "label_state": "not_rejected", "classifier_min": score}
    if select_by == "filters":
        return {"kind": "images", "label_state": "not_rejected", "passed_filters": True}
    return {"kind": "images"}


def _visibility(kind: str | None, select_by: str | None):
    images = kind == "images"
    return (gr.update(visible=images), gr.update(visible=images and select_by == "score"),
            gr.update(visible=not images))


def selection_controls(kind: gr.Radio) -> list[gr.components.Component]:
    """The selection controls under the kind choice, shown for the kind they apply to; [select_by, min_score,
    rule_labels], the handler's inputs after the kind."""
    select_by = gr.Radio(IMAGE_SELECT, value="label", label="Select images by", visible=False,
                         elem_id="export-image-select",
                         info="A score or the filters select instead of the label; an image labelled bad is "
                              "never exported. Same as the CLI's --min-score X / --passed-filters.")
    min_score = gr.Slider(0, 1, value=DEFAULT_MIN_SCORE, step=0.01, label="Minimum classifier score",
                          visible=False, elem_id="export-min-score",
                          info="The latest classifier run's score; a designer's good / bad label counts as 1 / 0.")
    rule_labels = gr.Radio(RULE_LABELS, value="use", label="Labels made by a rule (calibrate → Apply)",
                           elem_id="export-rule-labels",
                           info="A rule labels only videos no designer has labelled; a designer's label always "
                                "wins. Same as the CLI's --rule-labels use|ignore.")
    for trigger in (kind.change, select_by.change):
        trigger(_visibility, [kind, select_by], [select_by, min_score, rule_labels], api_visibility="private",
                show_progress="hidden", queue=False)
    return [select_by, min_score, rule_labels]
