"""Ingest folders of images or videos and triples manifests into a workspace.

Idempotent by content hash. Every bad file becomes one entry in the report's `failed` list with a
reason; every good file in the same batch still lands.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from storage import Workspace, catalog, images, prompts, taxonomy, triples, videos

from media.files import (IMAGE_EXTS, VIDEO_EXTS, MediaError, check_readable_file, frame_count_of_image, probe_animated,
                    probe_image, probe_video, sha256_file)

MANIFEST_EXTS = {".csv", ".jsonl", ".ndjson"}
MANIFEST_FIELDS = ("image", "prompt", "video", "model", "category", "product")
MAX_PROMPT_CHARS = 1_000_000  # a 100 kB prompt is kept whole; a runaway 1 MB one is refused


@dataclass
class IngestReport:
    added: dict[str, int] = field(default_factory=lambda: {"images": 0, "videos": 0, "triples": 0})
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    attempted: int = 0

    def fail(self, path: Any, error: str) -> None:
        self.failed.append({"path": _show(path), "error": error})

    def warn(self, path: Any, message: str) -> None:
        self.warnings.append({"path": _show(path), "warning": message})

    @property
    def exit_code(self) -> int:
        failed_files = {f["path"] for f in self.failed}
        return 1 if self.attempted > 0 and len(failed_files) >= self.attempted else 0

    def as_dict(self) -> dict[str, Any]:
        return {"added": dict(self.added), "skipped": self.skipped, "failed": list(self.failed),
                "warnings": list(self.warnings)}


def _show(path: Any) -> str:
    s = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


_MAGIC = [
    (b"\xff\xd8\xff", "image"), (b"\x89PNG\r\n\x1a\n", "image"), (b"GIF8", "gif"), (b"BM", "image"),
    (b"II*\x00", "image"), (b"MM\x00*", "image"), (b"\x1aE\xdf\xa3", "video"),
]


def sniff(path: Path) -> str | None:
    """'image' | 'video' | 'animated' | None, from the file's first bytes (not its extension)."""
    with open(path, "rb") as f:
        head = f.read(32)
    kind = None
    for magic, k in _MAGIC:
        if head.startswith(magic):
            kind = k
            break
    if kind is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "gif"  # WebP may be animated, like GIF
    elif kind is None and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        kind = "video"
    elif kind is None and head[4:8] == b"ftyp":
        brand = head[8:12]
        kind = "image" if brand in (b"avif", b"heic", b"heix", b"mif1") else "video"
    if kind == "gif":
        try:
            kind = "animated" if frame_count_of_image(path) > 1 else "image"
        except MediaError:
            kind = "image"  # let the image probe report the real problem
    return kind


def _within(path: Path, root: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False


class Ingester:
    def __init__(self, ws: Workspace, *, source: str | None = None) -> None:
        self.ws = ws
        self.report = IngestReport()
        self.source = source
        self._seen: dict[str, tuple[str, int]] = {}  # abs path -> (kind, id), within this batch

    # -- entry point ------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path]) -> IngestReport:
        for raw in paths:
            p = Path(raw)
            if not p.exists() and not p.is_symlink():
                self.report.attempted += 1
                self.report.fail(raw, "path does not exist")
            elif p.is_dir():
                root = p.absolute()
                catalog.add_media_root(self.ws, os.path.realpath(root))
                self._ingest_folder(root)
            elif p.suffix.lower() in MANIFEST_EXTS:
                self._ingest_manifest(p.absolute())
            else:
                catalog.add_media_root(self.ws, os.path.realpath(p.absolute().parent))
                self.media_file(p.absolute(), root=p.absolute().parent)
        return self.report

    def _ingest_folder(self, root: Path) -> None:
        files = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
        if not files:
            self.report.warn(root, "folder holds no files")
        for f in files:
            if f.suffix.lower() in MANIFEST_EXTS | {".tsv", ".txt", ".md", ".json"}:
                continue  # sidecar documents in a media folder are not media
            self.media_file(f, root=root)

    # -- one media file -----------------------------------------------------------------------
    def media_file(self, path: Path, *, root: Path) -> tuple[str, int] | None:
        """Ingest one image or video file. Returns (kind, id) or None when it failed."""
        key = os.path.abspath(path)
        if key in self._seen:
            return self._seen[key]
        self.report.attempted += 1
        try:
            try:
                os.fsencode(key).decode("utf-8")
            except UnicodeDecodeError:
                raise MediaError("file name is not valid UTF-8; rename the file") from None
            if path.is_symlink() and not _within(path, root):
                raise MediaError(f"symlink points outside the media root {root} (to {os.path.realpath(path)})")
            if path.exists() and path.is_dir():
                raise MediaError("is a folder, not a file")
            check_readable_file(path)
            kind = sniff(path)
            ext = path.suffix.lower()
            if kind is None:
                if ext in IMAGE_EXTS | VIDEO_EXTS:
                    raise MediaError(f"content is not a recognised image or video despite the {ext} extension")
                raise MediaError(f"unsupported file type {ext or '(no extension)'}")
            is_video = kind in ("video", "animated")
            if ext and ((is_video and ext not in VIDEO_EXTS) or (not is_video and ext not in IMAGE_EXTS)):
                self.report.warn(path, f"extension {ext} does not match its content; ingested as "
                                       f"{'video' if is_video else 'image'}")
            result = self._add_video(path, animated=(kind == "animated")) if is_video else self._add_image(path)
        except MediaError as exc:
            self.report.fail(path, str(exc))
            return None
        except OSError as exc:
            self.report.fail(path, f"cannot read: {exc.strerror or exc}")
            return None
        self._seen[key] = result
        return result

    def _add_image(self, path: Path) -> tuple[str, int]:
        rec = probe_image(path)
        rec.update(sha256=sha256_file(path), path=os.path.abspath(path), source=self.source)
        image_id, created = images.add_image(self.ws, rec)
        self._count("images", created)
        return "image", image_id

    def _add_video(self, path: Path, *, animated: bool = False) -> tuple[str, int]:
        rec = probe_animated(path) if animated else probe_video(path)
        if rec["frame_count"] < 1:
            raise MediaError("video has no frames")
        rec.update(sha256=sha256_file(path), path=os.path.abspath(path))
        video_id, created = videos.add_video(self.ws, rec)
        self._count("videos", created)
        return "video", video_id

    def _count(self, what: str, created: bool) -> None:
        if created:
            self.report.added[what] += 1
        else:
            self.report.skipped += 1

    # -- manifests --------------------------------------------------------------------------
    def _ingest_manifest(self, manifest: Path) -> None:
        root = manifest.parent
        catalog.add_media_root(self.ws, os.path.realpath(root))
        try:
            rows = list(read_manifest(manifest))
        except (OSError, ValueError) as exc:
            self.report.attempted += 1
            self.report.fail(manifest, f"cannot read manifest: {exc}")
            return
        if not rows:
            self.report.warn(manifest, "manifest has no rows")
        for lineno, row in rows:
            self._manifest_row(manifest, root, lineno, row)

    def _resolve(self, manifest: Path, root: Path, lineno: int, value: str) -> Path | None:
        p = Path(value)
        if not p.is_absolute():
            p = root / p
            if not _within(Path(os.path.normpath(p)), root):
                self.report.attempted += 1
                self.report.fail(f"{manifest}:{lineno}", f"path {value!r} escapes the manifest's folder {root}")
                return None
        else:
            catalog.add_media_root(self.ws, os.path.realpath(p.parent))
        return Path(os.path.normpath(p))

    def _row_media(self, manifest: Path, root: Path, lineno: int, ref: str, column: str) -> int | None:
        p = self._resolve(manifest, root, lineno, ref)
        got = self.media_file(p, root=root) if p else None
        if got is None:
            return None
        if got[0] != column:
            self.report.fail(f"{manifest}:{lineno}", f"the {column} column names {ref!r}, which is not a {column} but a {got[0]}")
            return None
        return got[1]

    def _manifest_row(self, manifest: Path, root: Path, lineno: int, row: dict[str, Any]) -> None:
        where = f"{manifest}:{lineno}"
        if "__error__" in row:
            self.report.attempted += 1
            self.report.fail(where, row["__error__"])
            return
        video_ref = (row.get("video") or "").strip()
        image_ref = (row.get("image") or "").strip()
        prompt = row.get("prompt")
        prompt = prompt.strip() if isinstance(prompt, str) else None
        if not video_ref and not image_ref:
            self.report.attempted += 1
            self.report.fail(where, "row names neither an image nor a video")
            return
        if prompt and len(prompt) > MAX_PROMPT_CHARS:
            self.report.attempted += 1
            self.report.fail(where, f"prompt of {len(prompt):,} characters is over the {MAX_PROMPT_CHARS:,} limit")
            return
        category_text = (row.get("category") or "").strip()
        category_id = taxonomy.resolve_category(self.ws, category_text)
        if category_text and category_id is None:
            self.report.warn(where, f"unknown category {category_text!r}; left unassigned "
                                    "(use a subcategory name or 'Domain / Subcategory')")
        product = (row.get("product") or "").strip() or None
        model = (row.get("model") or "").strip()
        image_id = self._row_media(manifest, root, lineno, image_ref, "image") if image_ref else None
        if image_id is not None:
            images.fill_missing(self.ws, image_id, {"category_id": category_id, "product": product})
        video_id = self._row_media(manifest, root, lineno, video_ref, "video") if video_ref else None
        if video_ref and video_id is None:
            return  # the video's own failure is already reported; no triple without a video
        prompt_id = prompts.add_prompt(self.ws, prompt, image_id=image_id)[0] if prompt else None
        if video_id is None:
            return
        videos.fill_missing(self.ws, video_id,
                             {"model": model or None, "source_image_id": image_id, "prompt_id": prompt_id})
        _, created = triples.add_triple(self.ws, video_id=video_id, image_id=image_id, prompt_id=prompt_id,
                                        model=model, benchmark_set=(row.get("benchmark_set") or "").strip(),
                                        category_id=category_id, product=product)
        if created:
            self.report.added["triples"] += 1


def read_manifest(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """Rows of a CSV (header row) or JSONL manifest as (line number, dict)."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("video", "image") if c not in (reader.fieldnames or [])]
            if len(missing) == 2:
                raise ValueError(f"CSV header must name 'image' and/or 'video' columns, got {reader.fieldnames}")
            for i, row in enumerate(reader, start=2):
                yield i, {k.strip().lower(): v for k, v in row.items() if k}
    else:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield i, {"__error__": f"invalid JSON: {exc.msg}"}
                    continue
                if not isinstance(row, dict):
                    yield i, {"__error__": "line is not a JSON object"}
                    continue
                yield i, {str(k).lower(): (v if isinstance(v, str) or v is None else str(v)) for k, v in row.items()}


def ingest(ws: Workspace, paths: Iterable[str | Path], *, source: str | None = None) -> IngestReport:
    return Ingester(ws, source=source).ingest(paths)
