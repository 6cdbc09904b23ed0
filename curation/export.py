"""Curated split export: `python -m curation export --workspace W --out DIR` → `export_splits(ws, out_dir, options)`.

Selects items (accepted triples by default; label state, metric thresholds and the classifier score are
configurable — see curation.splits.ExportOptions; `kind="images"` exports curated images instead, see
curation.export_images), splits them into train / val / test (stratified by
category, group-aware, deterministic by seed) and writes, under an allowed export root:

    README.md                 dataset card (YAML header: `datasets.load_dataset(DIR)` finds the Parquet splits)
    data/{split}.parquet      one row per triple or image (Hugging Face `load_dataset("parquet", data_files=...)`)
    manifest.jsonl            the same rows, one JSON object per line, with a "split" field
    csv/{split}.csv           flat rows (metric value / status / version columns; labels as JSON)
    wds/{split}-NNNNNN.tar    WebDataset shards: KEY.{png,jpg,...} image, KEY.txt prompt, KEY.mp4 video,
                              KEY.json metadata, per sample
    media/images/SHA.EXT, media/videos/SHA.EXT   hard links (or copies) of the media, named by content hash
    SHA256SUMS                hashes of every file above
    .advfx-export.json        marker: what wrote the folder, options, counts, file list

Re-running with the same workspace state and options into the same folder rewrites identical files (no
timestamps inside the data) and removes files a previous run wrote that are no longer part of the export.
`verify_export(DIR)` (curation.export_verify) re-reads everything: counts per split in Parquet/JSONL/CSV/
WebDataset against the marker, every file against SHA256SUMS, and every media file and tar member against its
content hash. Rows, tables, media and shards are written by curation.export_files, the card by
curation.export_card.
"""
from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from storage import Workspace, exports, report_store

from .export_card import dataset_card, image_card
from .export_files import (CSV_FIELDS, MARKER, arrow_schema, csv_row, media_bytes, place_media, read_marker,
                           write_atomic, write_shard, build_row)
from .export_images import IMAGE_CSV_FIELDS, image_csv_row, image_records, image_row, image_schema, select_images
from .export_verify import verify_export
from .jobs import Progress, check, quiet
from .splits import SPLITS, ExportOptions, assign_splits, empty_splits, group_ids, select
from .stats import triple_records

FORMAT_VERSION = 1
ENV_ROOT = "ADVFX_EXPORT_ROOT"
# per kind: row builder, Parquet schema, CSV columns, CSV row, dataset card; every other writer is shared
_WRITERS = {"triples": (build_row, arrow_schema, CSV_FIELDS, csv_row, dataset_card),
            "images": (image_row, image_schema, IMAGE_CSV_FIELDS, image_csv_row, image_card)}


class ExportError(Exception):
    """An export that is refused or cannot be written; the message says why."""


# -- where an export may go ------------------------------------------------------------------------------
def allowed_roots(ws: Workspace, extra: str | None = None) -> list[Path]:
    roots = [str(ws.path("exports"))]
    if extra:
        roots.append(extra)
    env = os.environ.get(ENV_ROOT, "")
    roots += [r for r in env.split(os.pathsep) if r.strip()]
    out = []
    for r in roots:
        p = Path(os.path.realpath(os.path.expanduser(r)))
        if p not in out:
            out.append(p)
    return out


def _inside(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


def resolve_out_dir(ws: Workspace, out_dir: str | os.PathLike, extra_root: str | None = None) -> Path:
    """The real path to export to, or ExportError. A relative path is taken from the current folder when
    that lands inside an allowed root, else relative to the workspace's exports/ folder. `..` and symlinks
    are resolved before the check, so neither can leave the root."""
    raw = os.fspath(out_dir)
    if not str(raw).strip():
        raise ExportError("no output folder given")
    roots = allowed_roots(ws, extra_root)
    expanded = os.path.expanduser(raw)
    if os.path.isabs(expanded):
        cand = Path(os.path.realpath(expanded))
    else:
        cand = Path(os.path.realpath(expanded))
        if not any(_inside(cand, r) for r in roots):
            cand = Path(os.path.realpath(ws.path("exports") / expanded))
    if not any(_inside(cand, r) for r in roots):
        raise ExportError(f"refusing to export to {cand}: it is outside the allowed export roots "
                          f"({', '.join(str(r) for r in roots)}); pass --export-root DIR or set {ENV_ROOT}")
    if cand in roots:
        raise ExportError(f"refusing to export into the export root {cand} itself; name a subfolder of it")
    if cand.exists():
        if not cand.is_dir():
            raise ExportError(f"refusing to export to {cand}: it exists and is not a folder")
        if any(cand.iterdir()) and not (cand / MARKER).is_file():
            raise ExportError(f"refusing to export to {cand}: it exists, is not empty and is not an export "
                              f"folder (no {MARKER}); choose a new or empty folder")
    return cand


# -- the export ------------------------------------------------------------------------------------------
def export_splits(ws: Workspace, out_dir: str | os.PathLike, options: ExportOptions | dict | None = None, *,
                  progress: Progress | None = None, cancel: threading.Event | None = None,
                  verify: bool = True) -> dict[str, Any]:
    """Select, split and write the export (see the module docstring). Returns a summary with counts per
    split and category, the files written and, with verify=True, the verification result. Raises ExportError
    when the folder is refused, Cancelled when `cancel` is set (files written so far stay; the marker
    says the export is incomplete)."""
    opts = options if isinstance(options, ExportOptions) else ExportOptions(**(options or {}))
    opts.validate()
    say = progress or quiet

    out = resolve_out_dir(ws, out_dir, opts.export_root)
    t0 = time.perf_counter()
    say(0.01, "reading the workspace")
    make_row, schema_of, csv_fields, flat, card_of = _WRITERS[opts.kind]
    if opts.kind == "images":
        records = image_records(ws)
        selected, dropped = select_images(records, opts)
    else:
        records = triple_records(ws, benchmark_set=opts.benchmark_set)
        classifier = report_store.classifier_scores(ws) if opts.classifier_min is not None else {}
        selected, dropped = select(records, opts, classifier)
    # an image record carries its image id as "triple_id": the splitter's item key
    split_of = assign_splits(selected, opts.ratios, opts.seed)
    groups = group_ids(selected)
    selected.sort(key=lambda r: (SPLITS.index(split_of[int(r["triple_id"])]), int(r["triple_id"])))
    rows = [make_row(r, split_of[int(r["triple_id"])], groups[int(r["triple_id"])]) for r in selected]
    check(cancel, "export")

    out.mkdir(parents=True, exist_ok=True)
    previous = read_marker(out)
    marker = {"tool": "advfx-studio curation.export", "format_version": FORMAT_VERSION, "complete": False,
              "workspace": str(ws.root), "options": opts.as_dict(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_atomic(out / MARKER, json.dumps(marker, indent=2).encode())
    sums: dict[str, str] = {}

    # media
    media_stats: Counter = Counter()
    need: dict[str, Path] = {}
    for row, r in zip(rows, selected):
        for k in ("image", "video"):
            if row.get(k):
                need[row[k]] = Path(r[f"{k}_path"])
    missing_media = []
    for k, (rel, src) in enumerate(sorted(need.items())):
        if k % 50 == 0:
            check(cancel, "export")
            say(0.05 + 0.35 * k / max(1, len(need)), f"media {k}/{len(need)}")
        if not src.is_file():
            missing_media.append(str(src))
            continue
        media_stats[place_media(src, out / rel, opts.media)] += 1
        sums[rel] = Path(rel).stem  # named by the content hash recorded at ingest
    if missing_media:
        raise ExportError(f"{len(missing_media)} media file(s) are missing, e.g. {missing_media[0]}; "
                          "re-ingest or restore them before exporting")

    per_split = {s: [r for r in rows if r["split"] == s] for s in SPLITS}
    # parquet + jsonl + csv
    say(0.42, "tables")
    if "parquet" in opts.formats:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = schema_of()
        for s in SPLITS:
            table = pa.Table.from_pylist(per_split[s], schema=schema)
            buf = pa.BufferOutputStream()
            pq.write_table(table, buf, compression="zstd")
            sums[f"data/{s}.parquet"] = write_atomic(out / "data" / f"{s}.parquet", buf.getvalue().to_pybytes())
    if "jsonl" in opts.formats:
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in rows)
        sums["manifest.jsonl"] = write_atomic(out / "manifest.jsonl", text.encode("utf-8"))
    if "csv" in opts.formats:
        for s in SPLITS:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=csv_fields, lineterminator="\n")
            w.writeheader()
            for r in per_split[s]:
                w.writerow(flat(r))
            sums[f"csv/{s}.csv"] = write_atomic(out / "csv" / f"{s}.csv", buf.getvalue().encode("utf-8"))
    check(cancel, "export")

    # webdataset shards
    shards: dict[str, list[str]] = {s: [] for s in SPLITS}
    if "webdataset" in opts.formats:
        done = 0
        for s in SPLITS:
            chunk: list[dict] = []
            size = 0
            chunks: list[list[dict]] = []
            for r in per_split[s]:
                rsize = media_bytes(out, r)
                if chunk and (len(chunk) >= opts.shard_size or size + rsize > opts.shard_bytes):
                    chunks.append(chunk)
                    chunk, size = [], 0
                chunk.append(r)
                size += rsize
            if chunk:
                chunks.append(chunk)
            for n, chunk in enumerate(chunks):
                rel = f"wds/{s}-{n:06d}.tar"
                sums[rel] = write_shard(out / rel, out, chunk, lambda: check(cancel, "export"))
                shards[s].append(rel)
                done += len(chunk)
                say(0.5 + 0.4 * done / max(1, len(rows)), f"shards {done}/{len(rows)}")

    counts = _counts(rows, dropped, len(records))
    counts["media"] = dict(media_stats)
    say(0.92, "dataset card")
    card = card_of(rows, counts, opts, shards, records)
    sums["README.md"] = write_atomic(out / "README.md", card.encode("utf-8"))
    sums_text = "".join(f"{h}  {p}\n" for p, h in sorted(sums.items()) if not p.startswith("media/"))
    write_atomic(out / "SHA256SUMS", sums_text.encode())

    # remove what an earlier run wrote that is no longer part of this export
    removed = []
    for rel in (previous or {}).get("files", []):
        if rel not in sums and rel != "SHA256SUMS":
            p = Path(os.path.normpath(out / rel))
            if _inside(p, out) and p.is_file():
                p.unlink()
                removed.append(rel)
    files = sorted(sums) + ["SHA256SUMS"]
    marker.update({"complete": True, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "counts": counts,
                   "files": files, "shards": shards})
    write_atomic(out / MARKER, json.dumps(marker, indent=2, default=str).encode())
    summary = {"out_dir": str(out), "counts": counts, "shards": shards, "removed_stale": removed,
               "empty_splits": empty_splits(split_of, opts.ratios),
               "seconds": round(time.perf_counter() - t0, 2), "options": opts.as_dict()}
    if verify:
        say(0.95, "verifying")
        summary["verify"] = verify_export(out)
    summary["export_id"] = exports.record_export(ws, str(out), opts.as_dict(), counts)
    say(1.0, "done")
    return summary


def _counts(rows: list[dict], dropped: dict[str, int], candidates: int) -> dict[str, Any]:
    per_split = Counter(r["split"] for r in rows)
    per_cat: dict[str, dict[str, int]] = {}
    for r in rows:
        c = f"{r['domain']} / {r['category']}" if r["category"] else "(no category)"
        per_cat.setdefault(c, {s: 0 for s in SPLITS})[r["split"]] += 1
    labels = Counter(r["label"] or "unlabelled" for r in rows)
    return {"candidates": candidates, "selected": len(rows), "dropped": dropped,
            "splits": {s: per_split.get(s, 0) for s in SPLITS}, "categories": dict(sorted(per_cat.items())),
            "groups": {s: len({r["group"] for r in rows if r["split"] == s}) for s in SPLITS},
            "labels": dict(labels),
            "models": dict(Counter(r["model"] or "(none)" for r in rows if "model" in r))}  # images have none
