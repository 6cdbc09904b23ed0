"""Curated split export: `python -m curation export --workspace W --out DIR` → `export_splits(ws, out_dir, options)`.

Selects items (accepted triples by default; label state, metric thresholds and the classifier score are
configurable — see curation.splits.ExportOptions), splits them into train / val / test (stratified by
category, group-aware, deterministic by seed) and writes, under an allowed export root:

    README.md                 dataset card (YAML header: `datasets.load_dataset(DIR)` finds the Parquet splits)
    data/{split}.parquet      one row per triple (Hugging Face `load_dataset("parquet", data_files=...)`)
    manifest.jsonl            the same rows, one JSON object per line, with a "split" field
    csv/{split}.csv           flat rows (metric value / status / version columns; labels as JSON)
    wds/{split}-NNNNNN.tar    WebDataset shards: KEY.{png,jpg,...} image, KEY.txt prompt, KEY.mp4 video,
                              KEY.json metadata, per sample
    media/images/SHA.EXT, media/videos/SHA.EXT   hard links (or copies) of the media, named by content hash
    SHA256SUMS                hashes of every file above
    .advfx-export.json        marker: what wrote the folder, options, counts, file list

Re-running with the same workspace state and options into the same folder rewrites identical files (no
timestamps inside the data) and removes files a previous run wrote that are no longer part of the export.
`verify_export(DIR)` re-reads everything: counts per split in Parquet/JSONL/CSV/WebDataset against the
marker, every file against SHA256SUMS, and every media file and tar member against its content hash.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from storage import Workspace, exports, report_store

from .jobs import Progress, check, quiet
from .splits import SPLITS, ExportOptions, assign_splits, group_ids, select
from .stats import DISPLAY, METRIC_NAMES, _summary, triple_records

MARKER = ".advfx-export.json"
FORMAT_VERSION = 1
ENV_ROOT = "ADVFX_EXPORT_ROOT"


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


# -- rows --------------------------------------------------------------------------------------------------
def _ext(path: str | None, fallback: str) -> str:
    e = Path(path or "").suffix.lower()
    return e if e and len(e) <= 6 else fallback


def _media_rel(kind: str, sha: str | None, path: str | None, fallback: str) -> str | None:
    if not sha or not path:
        return None
    return f"media/{kind}/{sha}{_ext(path, fallback)}"


def build_row(r: dict[str, Any], split: str, group: str) -> dict[str, Any]:
    lab = r.get("label") or {}
    ilab = r.get("image_label") or {}
    metrics = {}
    for m in METRIC_NAMES:
        res = r["metrics"].get(m)
        metrics[m] = {"value": None if res is None or res["status"] != "ok" else res["value"],
                      "status": res["status"] if res else "missing",
                      "version": res["version"] if res else None,
                      "reason": res["reason"] if res else None,
                      "backend": res["backend"] if res else None}
    return {
        "id": f"t{int(r['triple_id']):08d}", "triple_id": int(r["triple_id"]), "split": split, "group": group,
        "image": _media_rel("images", r["image_sha256"], r["image_path"], ".png"),
        "video": _media_rel("videos", r["video_sha256"], r["video_path"], ".mp4"),
        "image_sha256": r["image_sha256"], "video_sha256": r["video_sha256"],
        "prompt": r["prompt"], "caption": r["caption"], "product": r["product"], "category": r["category"],
        "domain": r["domain"], "model": r["model"] or None, "benchmark_set": r["benchmark_set"] or None,
        "video_width": r["video_width"], "video_height": r["video_height"], "fps": r["fps"],
        "frame_count": r["frame_count"], "duration": r["duration"],
        "image_width": r["image_width"], "image_height": r["image_height"],
        "label": {1: "accept", 0: "reject"}.get(r["decision"]),
        "image_label": {1: "good", 0: "bad"}.get(r.get("image_decision")),
        "labels": [{"annotator": x["annotator"], "value": x["value"], "kind": x.get("kind", "video"),
                    "reasons": list(x.get("reasons") or []), "note": x.get("note")}
                   for x in (lab.get("labels") or [])]
                  + [{"annotator": x["annotator"], "value": x["value"], "kind": "image",
                      "reasons": list(x.get("reasons") or []), "note": x.get("note")}
                     for x in (ilab.get("labels") or [])],
        "metrics": metrics,
    }


def _arrow_schema():
    import pyarrow as pa

    metric = pa.struct([("value", pa.float64()), ("status", pa.string()), ("version", pa.string()),
                        ("reason", pa.string()), ("backend", pa.string())])
    label = pa.struct([("annotator", pa.string()), ("value", pa.string()), ("kind", pa.string()),
                       ("reasons", pa.list_(pa.string())), ("note", pa.string())])
    s, i, f = pa.string(), pa.int64(), pa.float64()
    return pa.schema([
        ("id", s), ("triple_id", i), ("split", s), ("group", s), ("image", s), ("video", s),
        ("image_sha256", s), ("video_sha256", s), ("prompt", s), ("caption", s), ("product", s),
        ("category", s), ("domain", s), ("model", s), ("benchmark_set", s),
        ("video_width", i), ("video_height", i), ("fps", f), ("frame_count", i), ("duration", f),
        ("image_width", i), ("image_height", i), ("label", s), ("image_label", s),
        ("labels", pa.list_(label)), ("metrics", pa.struct([(m, metric) for m in METRIC_NAMES])),
    ])


CSV_FIELDS = (["id", "triple_id", "split", "group", "image", "video", "image_sha256", "video_sha256", "prompt",
               "caption", "product", "category", "domain", "model", "benchmark_set", "video_width", "video_height",
               "fps", "frame_count", "duration", "image_width", "image_height", "label", "image_label"]
              + [f"{m}{suf}" for m in METRIC_NAMES for suf in ("", "_status", "_version")] + ["labels"])


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in CSV_FIELDS if k in row and k != "labels"}
    for m in METRIC_NAMES:
        out[m] = row["metrics"][m]["value"]
        out[f"{m}_status"] = row["metrics"][m]["status"]
        out[f"{m}_version"] = row["metrics"][m]["version"]
    out["labels"] = json.dumps(row["labels"], ensure_ascii=False)
    return out


# -- file helpers ----------------------------------------------------------------------------------------
def _sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def _place_media(src: Path, dst: Path, mode: str) -> str:
    """Hard-link (or copy) src to dst unless dst already holds it. Returns 'linked' | 'copied' | 'kept'."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        try:
            if os.path.samefile(src, dst):
                return "kept"
        except OSError:
            pass
        if mode == "copy" and dst.stat().st_size == src.stat().st_size:
            return "kept"  # content is checked by verify_export (named by hash)
        dst.unlink()
    if mode == "link":
        try:
            os.link(src, dst)
            return "linked"
        except OSError:
            pass  # another file system, or links not allowed: copy
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return "copied"


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o644, 0, 0, "", ""
    return ti


class _HashingWriter(io.RawIOBase):
    def __init__(self, f) -> None:
        self.f, self.h = f, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.h.update(b)
        return self.f.write(b)


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
    records = triple_records(ws, benchmark_set=opts.benchmark_set)
    classifier = report_store.classifier_scores(ws) if opts.classifier_min is not None else {}
    selected, dropped = select(records, opts, classifier)
    split_of = assign_splits(selected, opts.ratios, opts.seed)
    groups = group_ids(selected)
    rows = sorted((build_row(r, split_of[int(r["triple_id"])], groups[int(r["triple_id"])]) for r in selected),
                  key=lambda x: (SPLITS.index(x["split"]), x["triple_id"]))
    by_id = {int(r["triple_id"]): r for r in selected}
    check(cancel, "export")

    out.mkdir(parents=True, exist_ok=True)
    previous = _read_marker(out)
    marker = {"tool": "advfx-studio curation.export", "format_version": FORMAT_VERSION, "complete": False,
              "workspace": str(ws.root), "options": opts.as_dict(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_atomic(out / MARKER, json.dumps(marker, indent=2).encode())
    sums: dict[str, str] = {}

    # media
    media_stats: Counter = Counter()
    need: dict[str, Path] = {}
    for row in rows:
        r = by_id[row["triple_id"]]
        if row["image"]:
            need[row["image"]] = Path(r["image_path"])
        need[row["video"]] = Path(r["video_path"])
    missing_media = []
    for k, (rel, src) in enumerate(sorted(need.items())):
        if k % 50 == 0:
            check(cancel, "export")
            say(0.05 + 0.35 * k / max(1, len(need)), f"media {k}/{len(need)}")
        if not src.is_file():
            missing_media.append(str(src))
            continue
        media_stats[_place_media(src, out / rel, opts.media)] += 1
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

        schema = _arrow_schema()
        for s in SPLITS:
            table = pa.Table.from_pylist(per_split[s], schema=schema)
            buf = pa.BufferOutputStream()
            pq.write_table(table, buf, compression="zstd")
            sums[f"data/{s}.parquet"] = _write_atomic(out / "data" / f"{s}.parquet", buf.getvalue().to_pybytes())
    if "jsonl" in opts.formats:
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in rows)
        sums["manifest.jsonl"] = _write_atomic(out / "manifest.jsonl", text.encode("utf-8"))
    if "csv" in opts.formats:
        for s in SPLITS:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
            w.writeheader()
            for r in per_split[s]:
                w.writerow(_csv_row(r))
            sums[f"csv/{s}.csv"] = _write_atomic(out / "csv" / f"{s}.csv", buf.getvalue().encode("utf-8"))
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
                rsize = (out / r["video"]).stat().st_size + ((out / r["image"]).stat().st_size if r["image"] else 0)
                if chunk and (len(chunk) >= opts.shard_size or size + rsize > opts.shard_bytes):
                    chunks.append(chunk)
                    chunk, size = [], 0
                chunk.append(r)
                size += rsize
            if chunk:
                chunks.append(chunk)
            for n, chunk in enumerate(chunks):
                rel = f"wds/{s}-{n:06d}.tar"
                sums[rel] = _write_shard(out / rel, out, chunk, lambda: check(cancel, "export"))
                shards[s].append(rel)
                done += len(chunk)
                say(0.5 + 0.4 * done / max(1, len(rows)), f"shards {done}/{len(rows)}")

    counts = _counts(rows, dropped, len(records))
    counts["media"] = dict(media_stats)
    say(0.92, "dataset card")
    card = dataset_card(rows, counts, opts, shards, records)
    sums["README.md"] = _write_atomic(out / "README.md", card.encode("utf-8"))
    sums_text = "".join(f"{h}  {p}\n" for p, h in sorted(sums.items()) if not p.startswith("media/"))
    _write_atomic(out / "SHA256SUMS", sums_text.encode())

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
    _write_atomic(out / MARKER, json.dumps(marker, indent=2, default=str).encode())
    summary = {"out_dir": str(out), "counts": counts, "shards": shards, "removed_stale": removed,
               "seconds": round(time.perf_counter() - t0, 2), "options": opts.as_dict()}
    if verify:
        say(0.95, "verifying")
        summary["verify"] = verify_export(out)
    summary["export_id"] = exports.record_export(ws, str(out), opts.as_dict(), counts)
    say(1.0, "done")
    return summary


def _write_shard(path: Path, out: Path, rows: list[dict], stop: Callable[[], None]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        return _write_shard_to(tmp, path, out, rows, stop)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_shard_to(tmp: Path, path: Path, out: Path, rows: list[dict], stop: Callable[[], None]) -> str:
    with open(tmp, "wb") as raw:
        hw = _HashingWriter(raw)
        with tarfile.open(fileobj=hw, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            for k, r in enumerate(rows):
                if k % 50 == 0:
                    stop()
                key = r["id"]
                if r["image"]:
                    p = out / r["image"]
                    with open(p, "rb") as f:
                        tar.addfile(_tarinfo(f"{key}{Path(r['image']).suffix}", p.stat().st_size), f)
                prompt = (r["prompt"] or "").encode("utf-8")
                tar.addfile(_tarinfo(f"{key}.txt", len(prompt)), io.BytesIO(prompt))
                p = out / r["video"]
                with open(p, "rb") as f:
                    tar.addfile(_tarinfo(f"{key}{Path(r['video']).suffix}", p.stat().st_size), f)
                meta = json.dumps(r, ensure_ascii=False).encode("utf-8")
                tar.addfile(_tarinfo(f"{key}.json", len(meta)), io.BytesIO(meta))
    os.replace(tmp, path)
    return hw.h.hexdigest()


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
            "labels": dict(labels), "models": dict(Counter(r["model"] or "(none)" for r in rows))}


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
                "- metric minimums: " + (", ".join(f"{DISPLAY[m]} >= {v:g}" for m, v in opts.metric_min.items())
                                         or "none")
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
            L.append(f"| {DISPLAY[m]} | {s} | {st['n']} | " + " | ".join(cells) + " | "
                     + (", ".join(f"{k}: {v}" for k, v in sorted(notok.items())) or "0") + " | "
                     + (", ".join(versions) or "—") + " |")
    L += ["", "## Files", ""]
    for s in SPLITS:
        if shards[s]:
            L.append(f"- {s}: {len(shards[s])} WebDataset shard(s)")
    L.append("- SHA256SUMS lists the hash of every table, shard and this card; media are named by their SHA-256.")
    return "\n".join(L) + "\n"


def _read_marker(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


# -- verification ------------------------------------------------------------------------------------------
def verify_export(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Re-read an export: counts per split in every format against the marker; every listed file against
    SHA256SUMS; every media file and WebDataset member against its content hash."""
    out = Path(out_dir)
    problems: list[str] = []
    marker = _read_marker(out)
    if marker is None:
        return {"ok": False, "problems": [f"{out} has no readable {MARKER}"]}
    if not marker.get("complete"):
        problems.append("the export did not complete (cancelled or failed); run it again")
    want = (marker.get("counts") or {}).get("splits", {})
    opts = marker.get("options") or {}
    formats = opts.get("formats") or []
    seen: dict[str, dict[str, int]] = {}
    # checksums
    sums = {}
    try:
        for line in (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
            h, _, rel = line.partition("  ")
            sums[rel] = h
    except OSError:
        problems.append("SHA256SUMS is missing")
    for rel, h in sums.items():
        p = out / rel
        if not p.is_file():
            problems.append(f"{rel} is missing")
        elif _sha256_file(p) != h:
            problems.append(f"{rel} does not match its SHA256SUMS hash")
    # tables
    rows: list[dict] = []
    if "parquet" in formats:
        import pyarrow.parquet as pq

        seen["parquet"] = {}
        for s in SPLITS:
            try:
                t = pq.read_table(out / "data" / f"{s}.parquet")
            except Exception as exc:  # noqa: BLE001 - a broken file is a finding, not a crash
                problems.append(f"data/{s}.parquet cannot be read: {exc}")
                continue
            seen["parquet"][s] = t.num_rows
            rows += t.to_pylist()
    if "jsonl" in formats:
        jl = []
        try:
            with open(out / "manifest.jsonl", encoding="utf-8") as f:
                for k, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        problems.append(f"manifest.jsonl line {k} is not JSON")
                        continue
                    if not isinstance(row, dict) or row.get("split") not in SPLITS or not row.get("video"):
                        problems.append(f"manifest.jsonl line {k} is not an export row")
                        continue
                    jl.append(row)
        except OSError as exc:
            problems.append(f"manifest.jsonl: {exc}")
        seen["jsonl"] = dict(Counter(r["split"] for r in jl))
        rows = rows or jl
    if "csv" in formats:
        seen["csv"] = {}
        for s in SPLITS:
            try:
                with open(out / "csv" / f"{s}.csv", newline="", encoding="utf-8") as f:
                    seen["csv"][s] = sum(1 for _ in csv.DictReader(f))
            except (OSError, csv.Error) as exc:
                problems.append(f"csv/{s}.csv cannot be read: {exc}")
    # media named by hash
    media: set[str] = set()
    for r in rows:
        for k, hk in (("image", "image_sha256"), ("video", "video_sha256")):
            if r.get(k) and r[k] not in media:
                media.add(r[k])
                p = out / r[k]
                if not p.is_file():
                    problems.append(f"{r[k]} is missing")
                elif _sha256_file(p) != r[hk]:
                    problems.append(f"{r[k]} does not match its content hash")
    # webdataset
    if "webdataset" in formats:
        seen["webdataset"] = {}
        for s in SPLITS:
            n = 0
            for rel in (marker.get("shards") or {}).get(s, []):
                try:
                    n += _verify_shard(out / rel, problems)
                except (OSError, tarfile.TarError) as exc:
                    problems.append(f"{rel}: {exc}")
            seen["webdataset"][s] = n
    for fmt, got in seen.items():
        for s in SPLITS:
            if int(got.get(s, 0)) != int(want.get(s, 0)):
                problems.append(f"{fmt}: {s} has {got.get(s, 0)} rows, the export recorded {want.get(s, 0)}")
    return {"ok": not problems, "problems": problems[:50], "n_problems": len(problems), "counts": seen,
            "files_checked": len(sums), "media_checked": len(media)}


def _verify_shard(path: Path, problems: list[str]) -> int:
    samples: dict[str, dict[str, bytes | str]] = {}
    with tarfile.open(path, "r") as tar:
        for m in tar:
            if not m.isfile():
                continue
            key, _, ext = m.name.partition(".")
            f = tar.extractfile(m)
            data = f.read() if f else b""
            s = samples.setdefault(key, {})
            if ext == "json":
                s["json"] = data
            elif ext == "txt":
                s["txt"] = data
            else:
                s[ext] = hashlib.sha256(data).hexdigest()
    for key, s in samples.items():
        if "json" not in s:
            problems.append(f"{path.name}: sample {key} has no metadata")
            continue
        try:
            meta = json.loads(s["json"])
            meta["video"], meta["video_sha256"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{path.name}: sample {key} metadata is not an export row")
            continue
        vext = Path(meta["video"]).suffix.lstrip(".")
        if s.get(vext) != meta["video_sha256"]:
            problems.append(f"{path.name}: sample {key} video does not match its hash")
        if meta.get("image"):
            iext = Path(meta["image"]).suffix.lstrip(".")
            if s.get(iext) != meta["image_sha256"]:
                problems.append(f"{path.name}: sample {key} image does not match its hash")
        if (s.get("txt") or b"").decode("utf-8") != (meta.get("prompt") or ""):
            problems.append(f"{path.name}: sample {key} prompt differs from its metadata")
    return len(samples)
