"""python -m curation export --workspace W --out DIR [--kind triples|images|generation]
[--labels accepted|not_rejected|any] [--rule-labels use|ignore] [--min METRIC=X ...] [--classifier-min X | --min-score X] [--passed-filters]
[--ratios 0.8,0.1,0.1] [--seed N] [--formats parquet,jsonl,csv,webdataset] [--media link|copy] [--export-root DIR]
|   ... export verify DIR"""
from __future__ import annotations

import argparse
import os
import sys
import time

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="curated train/val/test export (Parquet, JSONL, CSV, WebDataset)",
                       description="Export selected triples (or, with --kind images, curated images) into "
                                   "train/val/test, or `export verify DIR`.")
    p.add_argument("action", nargs="?", choices=("run", "verify"), default="run")
    p.add_argument("dir", nargs="?", help="export folder for `verify`")
    add_workspace_arg(p)
    p.add_argument("--out", "-o", help="export folder inside an allowed root (default: the workspace's "
                                       "exports/export-YYYYmmdd-HHMMSS); a relative name lands under exports/")
    p.add_argument("--export-root", help="another folder exports may be written under (also: ADVFX_EXPORT_ROOT)")
    p.add_argument("--kind", choices=("triples", "images", "generation"), default="triples",
                   help="triples (default: image, prompt, video), images (one row per curated image with its "
                        "category, product, filter values, classifier score, labels and prompts) or generation "
                        "(the curated images with their prompts as an ingest manifest with an empty video column: "
                        "fill it with the generated videos and `ingest` the manifest back as triples)")
    p.add_argument("--labels", dest="label_state", choices=("accepted", "not_rejected", "any"),
                   help="which items by their current label: accepted (images: good), accepted or unlabelled, or "
                        "any. Default accepted; for images selected by --min-score or --passed-filters, "
                        "not_rejected (the score and filters select instead; a bad label still drops the image)")
    p.add_argument("--rule-labels", choices=("use", "ignore"), default="use",
                   help="triples only a rule decided (calibrate --apply, annotator rule:<id>): use its decision "
                        "(default) or ignore it (such a triple counts as not labelled)")
    p.add_argument("--keep-bad-images", action="store_true",
                   help="keep triples whose source image (images: the image) is labelled bad")
    p.add_argument("--min", action="append", default=[], metavar="METRIC=X",
                   help="minimum metric value in 0-1 (repeatable), e.g. --min motionx=0.3")
    p.add_argument("--missing-metric", choices=("fail", "pass"), default="fail",
                   help="a thresholded metric without a value fails (default) or passes; n/a always passes")
    p.add_argument("--classifier-min", "--min-score", dest="classifier_min", type=float, metavar="X",
                   help="minimum score of the latest classifier run for the (source) image, 0-1; a designer's "
                        "good / bad image label counts as 1 / 0")
    p.add_argument("--passed-filters", action="store_true",
                   help="images only: keep images on which no heuristic filter failed (and at least one ran)")
    p.add_argument("--set", dest="benchmark_set", help="only the triples of this benchmark set")
    p.add_argument("--ratios", default="0.8,0.1,0.1", help="train,val,test ratios (default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--formats", default="parquet,jsonl,csv,webdataset")
    p.add_argument("--media", choices=("link", "copy"), default="link", help="hard-link (default) or copy media")
    p.add_argument("--shard-size", type=int, default=1000, help="WebDataset samples per shard")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--json", action="store_true")
    return p


def _human(s: dict) -> str:
    c = s["counts"]
    lines = [f"exported {c['selected']} of {c['candidates']} {s['options']['kind']} to {s['out_dir']}: "
             + ", ".join(f"{k} {v}" for k, v in c["splits"].items()) + f" ({s['seconds']} s)"]
    if c["dropped"]:
        lines.append("  dropped: " + ", ".join(f"{k}: {v}" for k, v in sorted(c["dropped"].items())))
    if "verify" in s:
        v = s["verify"]
        lines.append("  verify: " + ("ok" if v["ok"] else f"{v['n_problems']} problem(s)"))
        lines += [f"    {p}" for p in v["problems"][:10]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..export import ExportError, export_splits
    from ..export_verify import verify_export
    from ..jobs import Cancelled, to_stderr
    from ..splits import ExportOptions

    if args.action == "verify":
        target = args.dir or args.out
        if not target:
            print("error: export verify needs the export folder", file=sys.stderr)
            return 2
        v = verify_export(target)
        emit(args, v, lambda v: "ok" if v["ok"] else "\n".join(["FAILED"] + v["problems"]))
        return 0 if v["ok"] else 1
    try:
        metric_min = {}
        for item in args.min:
            k, sep, v = item.partition("=")
            if not sep:
                raise ValueError(f"--min takes METRIC=X, got {item!r}")
            metric_min[k.strip()] = float(v)
        ratios = tuple(float(x) for x in args.ratios.split(","))
        images_like = args.kind in ("images", "generation")      # the hand-off selects images as --kind images
        label_state = args.label_state or (
            "not_rejected" if images_like and (args.classifier_min is not None or args.passed_filters)
            else "accepted")
        opts = ExportOptions(kind="images" if images_like else args.kind, label_state=label_state,
                             exclude_bad_images=not args.keep_bad_images, rule_labels=args.rule_labels,
                             metric_min=metric_min, missing_metric=args.missing_metric,
                             classifier_min=args.classifier_min, passed_filters=args.passed_filters,
                             ratios=ratios, seed=args.seed,
                             benchmark_set=args.benchmark_set,
                             formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
                             media=args.media, shard_size=args.shard_size, export_root=args.export_root)
        out = args.out or os.path.join(os.path.abspath(args.workspace), "exports",
                                       time.strftime("export-%Y%m%d-%H%M%S"))

        with Workspace.open(args.workspace, create=False) as ws:
            if args.kind == "generation":
                from ..export_generation import export_generation

                g = export_generation(ws, out, opts)
                emit(args, g, lambda g: f"wrote {g['rows']} rows for {g['images']} images "
                                        f"({g['without_prompt']} without a prompt) to {g['manifest']}; fill the "
                                        "video column and ingest it back")
                return 0
            s = export_splits(ws, out, opts, progress=to_stderr, verify=not args.no_verify)
    except (ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130
    emit(args, s, _human)
    return 0 if s.get("verify", {"ok": True})["ok"] else 1
