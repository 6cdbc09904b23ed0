"""The files of a curated split export: the rows and their table schemas (Parquet, CSV), the media placement,
WebDataset shards and the marker. Every writer here is deterministic (no timestamps, fixed tar headers) so a
re-run with the same state rewrites identical bytes; see curation.export for the layout."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any, Callable

from .stats import METRIC_NAMES

MARKER = ".advfx-export.json"


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


def arrow_schema():
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


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in CSV_FIELDS if k in row and k != "labels"}
    for m in METRIC_NAMES:
        out[m] = row["metrics"][m]["value"]
        out[f"{m}_status"] = row["metrics"][m]["status"]
        out[f"{m}_version"] = row["metrics"][m]["version"]
    out["labels"] = json.dumps(row["labels"], ensure_ascii=False)
    return out


# -- file helpers ----------------------------------------------------------------------------------------
def write_atomic(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def place_media(src: Path, dst: Path, mode: str) -> str:
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


# -- WebDataset shards -------------------------------------------------------------------------------------
def sample_text(row: dict[str, Any]) -> str:
    """A sample's KEY.txt: a triple's prompt, or an image's prompts one per line (image rows have no "prompt")."""
    return (row["prompt"] or "") if "prompt" in row else "\n".join(row.get("prompts") or [])


def media_bytes(out: Path, row: dict[str, Any]) -> int:
    return sum((out / row[k]).stat().st_size for k in ("image", "video") if row.get(k))


def write_shard(path: Path, out: Path, rows: list[dict], stop: Callable[[], None]) -> str:
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
                prompt = sample_text(r).encode("utf-8")
                tar.addfile(_tarinfo(f"{key}.txt", len(prompt)), io.BytesIO(prompt))
                if r.get("video"):
                    p = out / r["video"]
                    with open(p, "rb") as f:
                        tar.addfile(_tarinfo(f"{key}{Path(r['video']).suffix}", p.stat().st_size), f)
                meta = json.dumps(r, ensure_ascii=False).encode("utf-8")
                tar.addfile(_tarinfo(f"{key}.json", len(meta)), io.BytesIO(meta))
    os.replace(tmp, path)
    return hw.h.hexdigest()


# -- the marker -------------------------------------------------------------------------------------------
def read_marker(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None

