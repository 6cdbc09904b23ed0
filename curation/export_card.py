"""The dataset card (README.md) of a curated split export. It holds no timestamp, so a re-run with the same
state gives the same bytes."""
from __future__ import annotations

from collections import Counter
from typing import Any

from metrics.registry import EXTRA_MARK, EXTRA_NOTE, is_paper, marked

from .splits import SPLITS, ExportOptions
from .stats import DISPLAY, METRIC_NAMES, _summary


def dataset_card(rows: list[dict], counts: dict[str, Any], opts: ExportOptions, shards: dict[str, list[str]],
                 records: list[dict]) -> str:
    present = [s for s in SPLITS if counts["splits"][s]]
    yaml = ["---", "pretty_name: Ad-VFX curated image-to-video triples", "task_categories:", "- image-to-video"]
    if present:
        yaml += ["configs:", "- config_name: default", "  data_files:"]
    for s in present:
        yaml += [f"  - split: {s}", f"    path: data/{s}.parquet"]
    yaml.append("---")
    L = yaml + ["", "# Ad-VFX curated split export", "",
                f"{counts['selected']} triples (of {counts['candidates']} in the workspace) — "
                + ", ".join(f"{s}: {counts['splits'][s]}" for s in SPLITS) + ".", "",
                "## Loading", "", "```python", "from datasets import load_dataset",
                'ds = load_dataset("parquet", data_files={'
                + ", ".join(f'"{s}": "data/{s}.parquet"' for s in present) + "})",
                "# or simply: load_dataset(\"path/to/this/folder\")", "```", "",
                "Media paths (`image`, `video`) are relative to this folder. "
                "WebDataset shards: `wds/{split}-NNNNNN.tar` "
                "(per sample KEY.<image ext>, KEY.txt prompt, KEY.mp4 video, KEY.json metadata). "
                "`manifest.jsonl` holds every row with its split; `csv/` the flat tables.", "",
                "## Filters and thresholds", "",
                f"- label state: `{opts.label_state}`"
                + {"accepted": " (only triples designers accepted)",
                   "not_rejected": " (accepted or not yet labelled)", "any": " (labels ignored)"}[opts.label_state],
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
    if counts["dropped"]:
        L += ["Dropped by the filters: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts["dropped"].items()))
              + ".", ""]
    L += ["## Counts per split and category", "", "| Category | " + " | ".join(SPLITS) + " | total |",
          "|:--|" + "|".join("--:" for _ in SPLITS) + "|--:|"]
    for c, n in counts["categories"].items():
        L.append(f"| {c} | " + " | ".join(str(n[s]) for s in SPLITS) + f" | {sum(n.values())} |")
    L.append("| **total** | " + " | ".join(str(counts["splits"][s]) for s in SPLITS) + f" | {counts['selected']} |")
    L += ["", "Groups (source image / video / near-duplicate) per split: "
          + ", ".join(f"{s}: {counts['groups'][s]}" for s in SPLITS) + ".", ""]
    all_labels = Counter({1: "accepted", 0: "rejected"}.get(r["decision"], "unlabelled") for r in records)
    annot = Counter(x["annotator"] for r in rows for x in r["labels"])
    L += ["## Label statistics", "",
          "In the export: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts["labels"].items())) + ".",
          "In the workspace (candidates): " + ", ".join(f"{k}: {v}" for k, v in sorted(all_labels.items())) + ".",
          f"Annotators in the export: {len(annot)}" + (" (" + ", ".join(f"{a}: {n} labels" for a, n in
                                                        annot.most_common(10)) + ")" if annot else "") + ".",
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
