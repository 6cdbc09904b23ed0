"""The generation hand-off, `python -m curation export --kind generation`: the curated images with their prompts
as a manifest in the triples-manifest shape (curation.ingest.MANIFEST_FIELDS) with an empty `video` column. A
generation team fills `video` (and `model`) with the files its image-to-video model made; the same folder then
ingests back as triples with one `python -m curation ingest --workspace W DIR/manifest.csv`.

One row per (image, prompt); an image without a prompt gets one row with an empty prompt (the team writes one or
the generator runs unprompted). Images are selected as `--kind images` selects them (by default: current label
good) and placed under DIR/images/ named by content hash, so the manifest's relative paths stay inside its
folder, which ingest requires. `case_id` = "<image id>:<row of that image>" keys a row for the team's tracking.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from storage import Workspace

from .export import resolve_out_dir
from .export_files import _ext, place_media
from .export_images import image_records, select_images
from .ingest import MANIFEST_FIELDS
from .splits import ExportOptions

FIELDS = MANIFEST_FIELDS + ("case_id", "image_id")


def _category(r: dict[str, Any]) -> str:
    # "Domain / Subcategory": the form ingest resolves back to the same category (taxonomy.resolve_category)
    if r.get("category") and r.get("domain"):
        return f"{r['domain']} / {r['category']}"
    return r.get("category") or ""


def generation_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        name = f"images/{r['image_sha256']}{_ext(r['image_path'], '.png')}"
        for k, prompt in enumerate(r["prompts"] or [""]):
            rows.append({"image": name, "prompt": prompt, "video": "", "model": "", "category": _category(r),
                         "product": r.get("product") or "", "case_id": f"{r['image_id']}:{k}",
                         "image_id": r["image_id"]})
    return rows


def export_generation(ws: Workspace, out_dir: str | Path, opts: ExportOptions) -> dict[str, Any]:
    """Write DIR/manifest.csv, DIR/manifest.jsonl and DIR/images/; returns a summary."""
    t0 = time.perf_counter()
    out = resolve_out_dir(ws, out_dir, opts.export_root)      # inside the allowed export roots, as every export
    records = image_records(ws)
    selected, dropped = select_images(records, opts)
    rows = generation_rows(selected)
    for r in selected:
        place_media(Path(r["image_path"]), out / f"images/{r['image_sha256']}{_ext(r['image_path'], '.png')}",
                    opts.media)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(FIELDS))
        w.writeheader()
        w.writerows(rows)
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"out_dir": str(out), "images": len(selected), "rows": len(rows),
            "without_prompt": sum(1 for r in selected if not r["prompts"]), "candidates": len(records),
            "dropped": dict(dropped), "manifest": str(out / "manifest.csv"),
            "seconds": round(time.perf_counter() - t0, 2)}
