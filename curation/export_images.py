"""The image set of `python -m curation export --kind images` (ExportOptions(kind="images")): one row per
curated product image, split and written by curation.export with the same writers, verifier and layout as the
triple export (the WebDataset sample holds the image, its prompts as KEY.txt and KEY.json; no video).

Selection, in this order (each drop is counted under its reason):
- label: the image's current label by the one label rule (storage.labels `resolved_labels`: majority of the
  annotators' latest labels, a tie to the most recent) — `accepted` means good (the default), `not_rejected`
  good or unlabelled, `any` ignores it; a bad label drops the image unless `exclude_bad_images` is off;
- `classifier_min`: the latest classifier run's score, a designer's good / bad label counting as 1 / 0 (the
  triple export's rule, curation.splits);
- `passed_filters`: no heuristic filter's newest verdict failed, and at least one filter ran (a filter that
  could not run, e.g. without its OCR backend, neither passes nor fails).
Splitting reuses curation.splits.assign_splits: each image is one item (its id under "triple_id", the
splitter's key) grouped by its near-duplicate group, so near-duplicates never straddle two splits.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from storage import Workspace, classifier_runs, curation_store, images, labels, prompts

from .export_files import _media_rel, arrow_schema
from .filters import FILTER_NAMES
from .splits import ExportOptions, _image_score

_SCALARS = ["id", "image_id", "split", "group", "image", "image_sha256", "image_format", "image_width",
            "image_height", "product", "category", "domain", "label", "label_annotator", "label_at",
            "label_history", "classifier_score", "classifier_run", "filters_passed"]
IMAGE_CSV_FIELDS = (_SCALARS + [f"{f}{suf}" for f in FILTER_NAMES for suf in ("", "_status")]
                    + ["prompts", "labels"])


def image_records(ws: Workspace) -> list[dict[str, Any]]:
    """Every image with its label decision and votes, classifier score, newest filter results and prompts."""
    recs = images.export_rows(ws)
    resolved = labels.resolved_labels(ws, "image")
    votes: dict[int, list[dict]] = defaultdict(list)
    for v in labels.label_votes(ws, "image"):
        votes[int(v["item_id"])].append(v)
    history = Counter(int(e["item_id"]) for e in labels.events(ws, item_kind="image"))
    run = classifier_runs.latest_run_id(ws)
    scores = classifier_runs.predictions(ws, run) if run is not None else {}
    filt: dict[int, dict[str, dict]] = defaultdict(dict)
    for f in curation_store.latest_filter_table(ws):
        filt[int(f["image_id"])][f["filter"]] = f
    texts = prompts.texts_by_image(ws)
    for r in recs:
        iid = int(r["image_id"])
        res = resolved.get(iid)
        r["triple_id"] = iid          # the splitter's item key; an image is its own item
        r["image_decision"] = None if res is None else int(res["decision"])
        r["label"] = None if res is None else res["label"]
        r["votes"] = votes[iid]
        r["last_vote"] = next((v for v in votes[iid] if res and v["event_id"] == res["last_event"]), None)
        r["label_history"] = history[iid]
        r["classifier_score"] = scores.get(iid)
        r["classifier_run"] = run if iid in scores else None
        r["filters"] = filt[iid]
        r["prompts"] = texts.get(iid, [])
    return recs


def _filters_passed(filters: dict[str, dict]) -> bool | None:
    """True when no newest verdict failed and one ran; None when none ran (a filter whose backend was missing
    stored passed = None: it says nothing about the image)."""
    ran = [f["passed"] for f in filters.values() if f["passed"] is not None]
    return all(ran) if ran else None


def select_images(records: list[dict[str, Any]], opts: ExportOptions) -> tuple[list[dict], dict[str, int]]:
    """The images that pass the selection (module docstring), and how many each step dropped."""
    scores = {int(r["image_id"]): r["classifier_score"] for r in records if r["classifier_score"] is not None}
    dropped: Counter = Counter()
    kept = []
    for r in records:
        d = r["image_decision"]
        if opts.label_state == "accepted" and d != 1:
            dropped["not labelled" if d is None else "labelled bad"] += 1
            continue
        if d == 0 and (opts.label_state == "not_rejected" or opts.exclude_bad_images):
            dropped["labelled bad"] += 1
            continue
        if opts.classifier_min is not None:
            s = _image_score(r, scores)
            if s is None or s < opts.classifier_min:
                dropped["classifier score below minimum" if s is not None else "no classifier score"] += 1
                continue
        if opts.passed_filters:
            ok = _filters_passed(r["filters"])
            if not ok:
                dropped["no filter ran" if ok is None else "failed a filter"] += 1
                continue
        kept.append(r)
    return kept, dict(dropped)


def _filter_cell(f: dict | None) -> dict[str, Any]:
    if f is None:
        return {"value": None, "passed": None, "reason": None, "status": "not run"}
    status = {True: "passed", False: "failed"}.get(f["passed"], "could not run")
    return {"value": f["value"], "passed": f["passed"], "reason": f["reason"], "status": status}


def image_row(r: dict[str, Any], split: str, group: str) -> dict[str, Any]:
    last = r["last_vote"]
    at = last["created_at"] if last else None
    return {
        "id": f"i{int(r['image_id']):08d}", "image_id": int(r["image_id"]), "split": split, "group": group,
        "image": _media_rel("images", r["image_sha256"], r["image_path"], ".png"),
        "image_sha256": r["image_sha256"], "image_format": r["image_format"], "image_width": r["image_width"],
        "image_height": r["image_height"], "product": r["product"], "category": r["category"],
        "domain": r["domain"], "label": r["label"], "label_annotator": last["annotator"] if last else None,
        "label_at": at.isoformat(timespec="seconds") if hasattr(at, "isoformat") else at,
        "label_history": int(r["label_history"]),
        "labels": [{"annotator": v["annotator"], "value": v["value"], "kind": "image",
                    "reasons": list(v["reasons"] or []), "note": v["note"]} for v in r["votes"]],
        "classifier_score": r["classifier_score"], "classifier_run": r["classifier_run"],
        "filters_passed": _filters_passed(r["filters"]),
        "filters": {f: _filter_cell(r["filters"].get(f)) for f in FILTER_NAMES},
        "prompts": list(r["prompts"]),
    }


def image_schema():
    import pyarrow as pa

    s, i, f = pa.string(), pa.int64(), pa.float64()
    cell = pa.struct([("value", f), ("passed", pa.bool_()), ("reason", s), ("status", s)])
    types = {"image_id": i, "image_width": i, "image_height": i, "label_history": i, "classifier_score": f,
             "classifier_run": i, "filters_passed": pa.bool_()}
    return pa.schema([(k, types.get(k, s)) for k in _SCALARS]
                     + [("labels", arrow_schema().field("labels").type),       # the triple rows' label type
                        ("filters", pa.struct([(n, cell) for n in FILTER_NAMES])), ("prompts", pa.list_(s))])


def image_csv_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in _SCALARS}
    for f in FILTER_NAMES:
        out[f] = row["filters"][f]["value"]
        out[f"{f}_status"] = row["filters"][f]["status"]
    out["prompts"] = json.dumps(row["prompts"], ensure_ascii=False)
    out["labels"] = json.dumps(row["labels"], ensure_ascii=False)
    return out
