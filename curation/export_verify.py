"""`verify_export(DIR)` re-reads a curated split export: counts per split in Parquet/JSONL/CSV/WebDataset
against the marker, every file against SHA256SUMS, and every media file and tar member against its content
hash."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from media.files import sha256_file

from .export_files import MARKER, read_marker, sample_text
from .splits import SPLITS


def verify_export(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Re-read an export: counts per split in every format against the marker; every listed file against
    SHA256SUMS; every media file and WebDataset member against its content hash."""
    out = Path(out_dir)
    problems: list[str] = []
    marker = read_marker(out)
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
        elif sha256_file(p) != h:
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
                    if not isinstance(row, dict) or row.get("split") not in SPLITS or not _media_of(row):
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
                elif sha256_file(p) != r[hk]:
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


def _media_of(row: dict) -> list[str]:
    """The media a row carries: a triple row always a video (its image when it has one), an image row its
    image (the marker's kind says which; a row with neither is not an export row)."""
    return [k for k in ("image", "video") if row.get(k) and row.get(f"{k}_sha256")]


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
            media = _media_of(meta)
        except (ValueError, KeyError, TypeError, AttributeError):
            media = []
        if not media:
            problems.append(f"{path.name}: sample {key} metadata is not an export row")
            continue
        for kind in media:
            ext = Path(meta[kind]).suffix.lstrip(".")
            if s.get(ext) != meta[f"{kind}_sha256"]:
                problems.append(f"{path.name}: sample {key} {kind} does not match its hash")
        if (s.get("txt") or b"").decode("utf-8") != sample_text(meta):
            problems.append(f"{path.name}: sample {key} prompt differs from its metadata")
    return len(samples)
