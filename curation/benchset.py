"""Benchmark-set definitions: a JSON file of cases (ad image, product name, category, prompt), the
generator models' videos for them, and the model-type map the leaderboard groups by.

```json
{
  "name": "innoads-bench",
  "description": "4 cases per subcategory (176 = 44 x 4)",
  "type_order": ["Open-source", "Commercial"],
  "model_types": {"Wan2.2-I2V-A14B": "Open-source", "Veo 3": "Commercial"},
  "cases": [{"id": "c001", "image": "images/ad_001.png", "product": "Nova X phone",
             "category": "Electronics & Mobility / Smartphones", "prompt": "The phone turns slowly ..."}],
  "videos": [{"case": "c001", "model": "Veo 3", "video": "videos/veo3/c001.mp4"}],
  "manifests": ["more_videos.jsonl"]
}
```
Relative paths resolve against the set file's folder (a manifest's rows against the manifest's folder).
`videos` rows name a case; `manifests` are ordinary triples manifests (image, prompt, video, model, category,
product; a `case` column may stand for image+prompt+category+product). Everything is ingested through the
triples-manifest path with `benchmark_set` = the set's name, so a set in the workspace is exactly the triples
whose benchmark_set is that name. The definition itself is kept in the `benchmark_sets` table.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from storage import Workspace, benchmark_sets, images, prompts, report_store, taxonomy

from .ingest import ingest, read_manifest

PER_CATEGORY = 4  # the paper: 4 cases per subcategory, 176 = 44 x 4


class BenchSetError(ValueError):
    pass


def load_set_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchSetError(f"benchmark-set file {p} does not exist") from None
    except json.JSONDecodeError as exc:
        raise BenchSetError(f"benchmark-set file {p} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise BenchSetError(f"benchmark-set file {p} must hold a JSON object")
    name = str(data.get("name") or "").strip()
    if not name:
        raise BenchSetError(f"benchmark-set file {p} needs a non-empty \"name\"")
    cases = data.get("cases") or []
    if not isinstance(cases, list):
        raise BenchSetError("\"cases\" must be a list")
    ids = [str(c.get("id", "")) for c in cases]
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        raise BenchSetError("every case needs a unique \"id\"")
    for key in ("model_types",):
        if key in data and not isinstance(data[key], dict):
            raise BenchSetError(f"\"{key}\" must map model names to types")
    return data


def _abs(base: Path, value: str) -> str:
    p = Path(value)
    return os.path.normpath(p if p.is_absolute() else base / p)


def import_set(ws: Workspace, path: str | Path) -> dict[str, Any]:
    """Ingest a set file's cases and videos (benchmark_set = its name) and store its definition."""
    path = Path(path).absolute()
    data = load_set_file(path)
    name = data["name"].strip()
    base = path.parent
    cases = {str(c["id"]): c for c in data.get("cases") or []}
    rows: list[dict[str, Any]] = []
    problems: list[str] = []

    def case_fields(cid: str) -> dict[str, Any] | None:
        c = cases.get(cid)
        if c is None:
            problems.append(f"video row names unknown case {cid!r}")
            return None
        return {"image": _abs(base, c["image"]) if c.get("image") else "", "prompt": c.get("prompt") or "",
                "category": c.get("category") or "", "product": c.get("product") or ""}

    for c in cases.values():  # the cases themselves: image + prompt land even before any video exists
        if c.get("image"):
            rows.append({"image": _abs(base, c["image"]), "prompt": c.get("prompt") or "", "video": "",
                         "category": c.get("category") or "", "product": c.get("product") or ""})
    for v in data.get("videos") or []:
        f = case_fields(str(v.get("case", "")))
        if f is None:
            continue
        rows.append({**f, "video": _abs(base, v["video"]) if v.get("video") else "", "model": v.get("model") or "",
                     "benchmark_set": name})
    for m in data.get("manifests") or []:
        mpath = Path(_abs(base, m))
        try:
            for _, row in read_manifest(mpath):
                if "__error__" in row:
                    problems.append(f"{mpath}: {row['__error__']}")
                    continue
                if row.get("case"):
                    f = case_fields(str(row["case"]))
                    if f is None:
                        continue
                    row = {**f, **{k: v for k, v in row.items() if v}}
                for k in ("image", "video"):
                    if row.get(k):
                        row[k] = _abs(mpath.parent, row[k])
                row["benchmark_set"] = name
                rows.append(row)
        except OSError as exc:
            problems.append(f"cannot read manifest {mpath}: {exc}")
    folder = ws.path("runs", "benchsets")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / f"{_safe(name)}.manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({k: v for k, v in row.items() if k != "case"}, ensure_ascii=False) + "\n")
    report = ingest(ws, [manifest], source=f"benchset:{name}")
    definition = {k: v for k, v in data.items() if k not in ("videos", "manifests")}
    definition["cases"] = [{**c, "image": _abs(base, c["image"]) if c.get("image") else None}
                           for c in cases.values()]
    benchmark_sets.put_benchmark_set(ws, name, definition, str(path))
    return {"name": name, "cases": len(cases), "rows": len(rows), "ingest": report.as_dict(), "problems": problems}


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "set"


def model_types(ws: Workspace, set_name: str | None, override: dict[str, str] | None = None) -> tuple[dict, list]:
    """(model -> type, type order) from the stored set definition, updated by `override`."""
    types: dict[str, str] = {}
    order: list[str] = []
    if set_name is not None:
        d = benchmark_sets.get_benchmark_set(ws, set_name)
        if d:
            types.update(d.get("model_types") or {})
            order = list(d.get("type_order") or [])
    if override:
        types.update(override)
    for t in types.values():
        if t not in order:
            order.append(t)
    return types, order


def parse_model_types(text: str | None) -> dict[str, str]:
    """'A=Open-source,B=Commercial' or a JSON file {"model": "type"} or {"model_types": {...}}."""
    if not text:
        return {}
    p = Path(text)
    if p.suffix.lower() == ".json" and p.exists():
        data = json.loads(p.read_text(encoding="utf-8"))
        data = data.get("model_types", data)
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise BenchSetError(f"--model-types entries look like MODEL=TYPE, got {part!r}")
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip()
    return out


def make_set(ws: Workspace, out_file: str | Path, *, name: str = "innoads-bench", per_category: int = PER_CATEGORY,
             seed: int = 0) -> dict[str, Any]:
    """Draft a set file from the workspace: up to `per_category` ad images per subcategory (images labelled
    good first, then by classifier score, never images labelled bad, at most one per near-duplicate group),
    each with the newest prompt written for it. Writes out_file and returns a summary."""
    from .stats import image_decisions

    decisions = image_decisions(ws)
    scores = report_store.classifier_scores(ws)
    newest_prompt = prompts.newest_by_image(ws)
    tax = taxonomy.report_taxonomy(ws)
    rng = random.Random(seed)
    by_cat: dict[int, list[dict]] = {}
    for im in images.image_rows(ws):
        if im["category_id"] is None or (decisions.get(im["id"]) or {}).get("decision") == 0:
            continue
        by_cat.setdefault(im["category_id"], []).append(im)
    cases, short = [], []
    for c in tax:
        pool = by_cat.get(c["category_id"], [])
        rng.shuffle(pool)
        pool.sort(key=lambda im: (-(1 if (decisions.get(im["id"]) or {}).get("decision") == 1 else 0),
                                  -scores.get(im["id"], 0.0)))
        chosen, groups = [], set()
        for im in pool:
            g = im["dup_group"]
            if g is not None and g in groups:
                continue
            groups.add(g)
            chosen.append(im)
            if len(chosen) == per_category:
                break
        if len(chosen) < per_category:
            short.append({"category": f"{c['domain']} / {c['category']}", "have": len(chosen)})
        for im in chosen:
            cases.append({"id": f"c{len(cases) + 1:03d}", "image": im["path"], "product": im["product"] or "",
                          "category": f"{c['domain']} / {c['category']}", "prompt": newest_prompt.get(im["id"], "")})
    data = {"name": name, "description": f"{per_category} cases per subcategory drafted from {ws.root} "
                                         f"(seed {seed}); add each model's videos under \"videos\"",
            "type_order": ["Open-source", "Commercial"], "model_types": {}, "cases": cases, "videos": []}
    Path(out_file).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"file": str(out_file), "cases": len(cases), "categories_short": short,
            "target": per_category * len(tax)}
