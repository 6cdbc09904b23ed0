"""The dataset card (README.md) of a curated split export, of triples or of images (curation.export_images).
It holds no timestamp, so a re-run with the same state gives the same bytes."""
from __future__ import annotations

from collections import Counter
from typing import Any

from metrics.registry import EXTRA_MARK, EXTRA_NOTE, is_paper, marked

from .splits import SPLITS, ExportOptions, empty_splits
from .stats import DISPLAY, METRIC_NAMES, _summary


def _opening(rows: list[dict], counts: dict[str, Any], opts: ExportOptions, pretty: str, title: str,
             unit: str, grouping: str) -> list[str]:
    """YAML header (its configs let `load_dataset(DIR)` find the splits), title, counts and the loading code."""
    present = [s for s in SPLITS if counts["splits"][s]]
    empty = empty_splits({k: r["split"] for k, r in enumerate(rows)}, opts.ratios)
    asked, n_groups = sum(1 for x in opts.ratios if x > 0), len({r["group"] for r in rows})
    # an empty split is only left when there are too few groups; say so rather than leave it silent
    note = [f"**{asked} splits asked, {n_groups} {unit} group(s) ({grouping}, never "
            f"split): {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty.**", ""] if empty else []
    yaml = ["---", f"pretty_name: {pretty}"]
    if unit == "triple":
        yaml += ["task_categories:", "- image-to-video"]
    if present:
        yaml += ["configs:", "- config_name: default", "  data_files:"]
    for s in present:
        yaml += [f"  - split: {s}", f"    path: data/{s}.parquet"]
    yaml.append("---")
    return yaml + ["", f"# {title}", "",
                   f"{counts['selected']} {unit}s (of {counts['candidates']} in the workspace) — "
                   + ", ".join(f"{s}: {counts['splits'][s]}" for s in SPLITS) + ".", "", *note,
                   "## Loading", "", "```python", "from datasets import load_dataset",
                   'ds = load_dataset("parquet", data_files={'
                   + ", ".join(f'"{s}": "data/{s}.parquet"' for s in present) + "})",
                   "# or simply: load_dataset(\"path/to/this/folder\")", "```", ""]


def _counts_table(counts: dict[str, Any], grouping: str) -> list[str]:
    L = ["## Counts per split and category", "", "| Category | " + " | ".join(SPLITS) + " | total |",
         "|:--|" + "|".join("--:" for _ in SPLITS) + "|--:|"]
    for c, n in counts["categories"].items():
        L.append(f"| {c} | " + " | ".join(str(n[s]) for s in SPLITS) + f" | {sum(n.values())} |")
    L.append("| **total** | " + " | ".join(str(counts["splits"][s]) for s in SPLITS) + f" | {counts['selected']} |")
    return L + ["", f"Groups ({grouping}) per split: " + ", ".join(f"{s}: {counts['groups'][s]}" for s in SPLITS)
                + ".", ""]


def _dropped(counts: dict[str, Any]) -> list[str]:
    if not counts["dropped"]:
        return []
    return ["Dropped by the filters: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts["dropped"].items()))
            + ".", ""]


def _label_stats(counts: dict[str, Any], all_labels: Counter, rows: list[dict[str, Any]]) -> list[str]:
    """The label statistics both cards open with: labels in the export, in the workspace, the annotators."""
    annot = Counter(x["annotator"] for r in rows for x in r["labels"])
    return ["## Label statistics", "",
            "In the export: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts["labels"].items())) + ".",
            "In the workspace (candidates): " + ", ".join(f"{k}: {v}" for k, v in sorted(all_labels.items())) + ".",
            f"Annotators in the export: {len(annot)}" + (" (" + ", ".join(f"{a}: {n} labels" for a, n in
                                                          annot.most_common(10)) + ")" if annot else "") + "."]

def dataset_card(rows: list[dict], counts: dict[str, Any], opts: ExportOptions, shards: dict[str, list[str]],
                 records: list[dict]) -> str:
    L = _opening(rows, counts, opts, "Ad-VFX curated image-to-video triples", "Ad-VFX curated split export",
                 "triple", "source image / video / near-duplicate")
    L += ["Media paths (`image`, `video`) are relative to this folder. "
          "WebDataset shards: `wds/{split}-NNNNNN.tar` "
          "(per sample KEY.<image ext>, KEY.txt prompt, KEY.mp4 video, KEY.json metadata). "
          "`manifest.jsonl` holds every row with its split; `csv/` the flat tables.", "",
          "## Filters and thresholds", "",
          f"- label state: `{opts.label_state}`"
          + {"accepted": " (only triples designers accepted)",
             "not_rejected": " (accepted or not yet labelled)", "any": " (labels ignored)"}[opts.label_state],
          "- a rule's labels (`calibrate --apply`, annotator `rule:<id>`, only where no designer labelled): "
          + {"use": "used as the triple's decision", "ignore": "ignored (such a triple counts as not labelled)"}[
              opts.rule_labels],
          f"- triples whose source image is labelled bad: {'excluded' if opts.exclude_bad_images else 'kept'}",
          "- metric minimums: " + (", ".join(f"{marked(m, DISPLAY[m])} >= {v:g}"
                                             for m, v in opts.metric_min.items()) or "none")
          + (f" (a thresholded metric without a value: {opts.missing_metric}; n/a passes)"
             if opts.metric_min else ""),
          f"- classifier score minimum: {opts.classifier_min if opts.classifier_min is not None else 'none'}",
          f"- benchmark set: {opts.benchmark_set if opts.benchmark_set is not None else 'all triples'}",
          f"- split ratios train/val/test: {'/'.join(f'{x:.3g}' for x in opts.ratios)}, seed {opts.seed}; "
          "stratified by category; all triples of one source image, one video and one near-duplicate "
          "group stay in one split", ""]
    L += _dropped(counts) + _counts_table(counts, "source image / video / near-duplicate")
    all_labels = Counter({1: "accepted", 0: "rejected"}.get(r["decision"], "unlabelled") for r in records)
    L += _label_stats(counts, all_labels, rows) + [
          "A triple's label is the majority of its annotators' current accept/reject labels (on the triple or "
          "its video; a tie goes to the latest).", "",
          "## Metric distributions (%, ok values)", "",
          "| Metric | split | n | mean | std | p10 | median | p90 | not ok | versions |",
          "|:--|:--|--:|--:|--:|--:|--:|--:|--:|:--|"]
    for m in METRIC_NAMES:
        versions = sorted({r["metrics"][m]["version"] for r in rows if r["metrics"][m]["version"]})
        for s in SPLITS:
            vals = [100.0 * r["metrics"][m]["value"] for r in rows
                    if r["split"] == s and r["metrics"][m]["value"] is not None]
            st = _summary(vals)
            notok = Counter(r["metrics"][m]["status"] for r in rows if r["split"] == s
                            and r["metrics"][m]["status"] != "ok")
            cells = ([f"{st[k]:.1f}" for k in ("mean", "std", "p10", "median", "p90")] if st["n"]
                     else ["—"] * 5)
            L.append(f"| {marked(m, DISPLAY[m])} | {s} | {st['n']} | " + " | ".join(cells) + " | "
                     + (", ".join(f"{k}: {v}" for k, v in sorted(notok.items())) or "0") + " | "
                     + (", ".join(versions) or "—") + " |")
    extras = [m for m in METRIC_NAMES if not is_paper(m)]
    if extras:
        L += ["", f"\\{EXTRA_MARK} {EXTRA_NOTE}; in its own column ("      # escaped: a paragraph, not a list item
              + ", ".join(f"`{m}`" for m in extras) + ")."]
    L += ["", "## Files", ""]
    for s in SPLITS:
        if shards[s]:
            L.append(f"- {s}: {len(shards[s])} WebDataset shard(s)")
    L.append("- SHA256SUMS lists the hash of every table, shard and this card; media are named by their SHA-256.")
    return "\n".join(L) + "\n"


def image_card(rows: list[dict], counts: dict[str, Any], opts: ExportOptions, shards: dict[str, list[str]],
               records: list[dict]) -> str:
    """The card of an image set (`--kind images`): selection, counts, labels, classifier scores, filters."""
    run = sorted({r["classifier_run"] for r in rows if r["classifier_run"] is not None})
    L = _opening(rows, counts, opts, "Ad-VFX curated product images", "Ad-VFX curated image set", "image",
                 "near-duplicate images")
    L += ["An image set: one row per curated product image with its category, product, heuristic filter "
          "values, classifier score, designer labels and the motion prompts written for it or used by its "
          "triples (`prompts`, empty when none). Image paths (`image`) are relative to this folder. "
          "WebDataset shards: `wds/{split}-NNNNNN.tar` (per sample KEY.<image ext>, KEY.txt its prompts one per "
          "line, KEY.json metadata). `manifest.jsonl` holds every row with its split; `csv/` the flat tables.", "",
          "## Selection", "",
          "- current label: " + {"accepted": "good (only images designers labelled good)",
                                 "not_rejected": "good or not yet labelled", "any": "ignored"}[opts.label_state],
          f"- images labelled bad: {'excluded' if opts.exclude_bad_images or opts.label_state != 'any' else 'kept'}",
          "- classifier score minimum: " + (f"{opts.classifier_min:g} (latest run; a designer's good / bad "
                                            "label counts as 1 / 0)" if opts.classifier_min is not None else "none"),
          "- heuristic filters: " + ("every filter that ran passed (images no filter ran on are dropped)"
                                     if opts.passed_filters else "not required (values and verdicts are listed)"),
          f"- split ratios train/val/test: {'/'.join(f'{x:.3g}' for x in opts.ratios)}, seed {opts.seed}; "
          "stratified by category; near-duplicate images (one `dup_group`) stay in one split", ""]
    L += _dropped(counts) + _counts_table(counts, "near-duplicate images")
    all_labels = Counter(r["label"] or "unlabelled" for r in records)
    L += _label_stats(counts, all_labels, rows) + [
          "An image's label is the majority of its annotators' current good/bad labels (a tie goes to the "
          "latest); `label_annotator` / `label_at` name the newest vote counted, `label_history` counts every "
          "label event on the image (undone ones and undos included).", "",
          "## Classifier score", "",
          ("Latest classifier run: " + ", ".join(str(x) for x in run) + "." if run else "No classifier scores."), "",
          "| split | n | mean | p10 | median | p90 |", "|:--|--:|--:|--:|--:|--:|"]
    for s in SPLITS:
        st = _summary([r["classifier_score"] for r in rows if r["split"] == s and r["classifier_score"] is not None])
        L.append(f"| {s} | {st['n']} | " + (" | ".join(f"{st[k]:.3f}" for k in ("mean", "p10", "median", "p90"))
                                           if st["n"] else "— | — | — | —") + " |")
    L += ["", "## Heuristic filters (in the export)", "", "| Filter | passed | failed | could not run | not run |",
          "|:--|--:|--:|--:|--:|"]
    for f in (rows[0]["filters"] if rows else {}):
        n = Counter(r["filters"][f]["status"] for r in rows)
        L.append(f"| {f} | {n['passed']} | {n['failed']} | {n['could not run']} | {n['not run']} |")
    L += ["", "## Files", ""]
    L += [f"- {s}: {len(shards[s])} WebDataset shard(s)" for s in SPLITS if shards[s]]
    L.append("- SHA256SUMS lists the hash of every table, shard and this card; images are named by their SHA-256.")
    return "\n".join(L) + "\n"
