"""Bulk import and export of labels.

Import (CSV or JSONL): one row per label with `path` or `sha256`, `label` (good / bad for images,
accept / reject for videos; either pair is accepted for both and mapped to the item's kind), and
optional `annotator`, `reasons` (list, or a string split on ';' / ','), `note`. Each good row is
appended as a label event exactly like the UI does (storage.labels.append_event) with a client key
derived from the file's content and the row number, so importing the same file twice adds nothing.
Bad rows are reported one by one with their line number and reason; good rows still land.

Export writes the label event log (CSV or JSONL by extension), with each item's path and sha256.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import Workspace, images, label_log, videos
from storage.labels import append_event

POSITIVE = {"good", "accept", "accepted", "keep", "yes", "1", "true", "pass"}
NEGATIVE = {"bad", "reject", "rejected", "drop", "no", "0", "false", "fail"}
EXPORT_FIELDS = ("id", "item_kind", "item_id", "sha256", "path", "value", "reasons", "note", "annotator",
                 "session", "undoes", "payload", "client_key", "created_at")


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "added": self.added, "duplicates": self.duplicates, "errors": self.errors}


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    """(line number, row dict or an error string) for every data row."""
    text = path.read_text(encoding="utf-8-sig")
    out: list[tuple[int, dict[str, Any] | str]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((n, f"not valid JSON: {exc.msg}"))
                continue
            out.append((n, obj if isinstance(obj, dict) else "a JSONL row must be an object"))
        return out
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise ValueError(f"{path}: unsupported label file type {path.suffix!r} (use .csv or .jsonl)")
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delim)
    names = {f.strip().lower() for f in reader.fieldnames or []}
    if not names & {"label", "value"} or not names & {"path", "sha256"}:
        raise ValueError(f"{path}: the header must name a 'label' column and a 'path' or 'sha256' column "
                         f"(found {reader.fieldnames})")
    for row in reader:
        out.append((reader.line_num, {(k or "").strip().lower(): v for k, v in row.items()}))
    return out


def _reasons(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return [str(x).strip() for x in v if str(x).strip()]
    s = str(v).strip()
    if s.startswith("["):
        try:
            return _reasons(json.loads(s))
        except json.JSONDecodeError:
            pass
    sep = ";" if ";" in s else ","
    return [x.strip() for x in s.split(sep) if x.strip()]


class _Resolver:
    def __init__(self, ws: Workspace, base: Path) -> None:
        self.base = base
        self.by_sha: dict[str, tuple[str, int, str]] = {}
        self.by_path: dict[str, tuple[str, int, str]] = {}
        for kind, entity in (("image", images), ("video", videos)):
            for i, sha, p in entity.hashes_and_paths(ws):
                self.by_sha.setdefault(sha.lower(), (kind, i, p))
                self.by_path.setdefault(p, (kind, i, p))
                self.by_path.setdefault(os.path.realpath(p), (kind, i, p))

    def resolve(self, row: dict[str, Any]) -> tuple[str, int, str] | str:
        sha = str(row.get("sha256") or "").strip().lower()
        path = str(row.get("path") or "").strip()
        if sha:
            hit = self.by_sha.get(sha)
            if hit:
                return hit
            if not path:
                return f"no image or video with sha256 {sha[:16]}… in this workspace"
        if not path:
            return "row has neither 'path' nor 'sha256'"
        cands = [path] if os.path.isabs(path) else [str(self.base / path), os.path.abspath(path), path]
        for c in cands:
            for key in (c, os.path.abspath(c), os.path.realpath(c)):
                hit = self.by_path.get(key)
                if hit:
                    return hit
        for c in cands:
            if os.path.isfile(c):
                from media.files import sha256_file
                hit = self.by_sha.get(sha256_file(c))
                if hit:
                    return hit
                return f"file {path} exists but is not in this workspace (ingest it first)"
        return f"no image or video with path {path} in this workspace"


def import_labels(ws: Workspace, file: str | Path, *, annotator: str = "import",
                  session: str | None = None) -> ImportReport:
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    file_key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    rows = _read_rows(path)
    rep = ImportReport(rows=len(rows))
    resolver = _Resolver(ws, path.resolve().parent)
    for line, row in rows:
        if isinstance(row, str):
            rep.errors.append({"line": line, "error": row})
            continue
        label = str(row.get("label") or row.get("value") or "").strip().lower()
        if label not in POSITIVE and label not in NEGATIVE:
            rep.errors.append({"line": line, "error": f"label {row.get('label')!r} is not good/bad or accept/reject"})
            continue
        hit = resolver.resolve(row)
        if isinstance(hit, str):
            rep.errors.append({"line": line, "error": hit})
            continue
        kind, item_id, _ = hit
        value = ("good" if label in POSITIVE else "bad") if kind == "image" else \
                ("accept" if label in POSITIVE else "reject")
        who = str(row.get("annotator") or "").strip() or annotator
        note = row.get("note")
        try:
            ev = append_event(ws, item_kind=kind, item_id=item_id, value=value, annotator=who,
                              reasons=_reasons(row.get("reasons")), note=str(note) if note not in (None, "") else None,
                              session=session or f"import:{path.name}", client_key=f"import:{file_key}:{line}")
        except Exception as exc:  # a storage error on one row must not lose the others
            rep.errors.append({"line": line, "error": f"could not store: {exc}"})
            continue
        if ev.get("duplicate"):
            rep.duplicates += 1
        else:
            rep.added += 1
    return rep


def export_labels(ws: Workspace, file: str | Path, *, item_kind: str | None = None) -> int:
    """Write the label event log (every event, undo events included) to CSV or JSONL."""
    path = Path(file)
    rows = label_log.event_log(ws, item_kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                if isinstance(r.get("payload"), str):
                    r["payload"] = json.loads(r["payload"])
                f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    else:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=EXPORT_FIELDS)
            w.writeheader()
            for r in rows:
                r["reasons"] = ";".join(r.get("reasons") or [])
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in EXPORT_FIELDS})
    tmp.replace(path)
    return len(rows)
