"""The heuristic filters (filters.py) over a workspace. Results are stored per image in `filter_results`
under a hash of (filter, version, parameters, backend names): a changed threshold or a new backend
recomputes, anything else is skipped.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from media.files import MediaError, load_image
from storage import curation_store as cs

from .filters import FILTER_NAMES, FILTER_VERSION, FILTERS, NEEDS, Backends, evaluate_image, params_for
from .jobs import Cancelled, Progress


def params_hash(name: str, params: dict[str, float], backend_names: dict[str, str]) -> str:
    key = {"filter": name, "version": FILTER_VERSION, "params": params,
           "backends": {k: backend_names.get(k) for k in NEEDS[name]}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def run_filters(ws, *, names: tuple[str, ...] = FILTER_NAMES, params: dict | None = None, force: bool = False,
                backends: Backends | None = None, progress: Progress | None = None,
                cancel: threading.Event | None = None, batch: int = 16,
                image_ids: list[int] | None = None) -> dict[str, Any]:
    """Run the filters over every image of the workspace (or the `image_ids` among them), skipping results
    cached under the same params hash. Returns a summary: computed / cached / errors and per-filter pass/fail
    counts."""


    unknown = [n for n in names if n not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter(s) {unknown}; filters are {', '.join(FILTER_NAMES)}")
    p = params_for(params)
    backends = backends or Backends()
    need_backends = any(NEEDS[n] for n in names)
    bnames = backends.names() if need_backends else {}
    hashes = {n: params_hash(n, p[n], bnames) for n in names}
    images = cs.all_images(ws)
    if image_ids is not None:
        wanted = set(image_ids)
        unknown_ids = wanted - {im["id"] for im in images}
        if unknown_ids:
            raise ValueError(f"no image with id {', '.join(map(str, sorted(unknown_ids)))} in this workspace")
        images = [im for im in images if im["id"] in wanted]
    todo: list[tuple[dict, list[str]]] = []
    cached = 0
    done_sets = {n: (set() if force else cs.cached_filter_keys(ws, n, hashes[n])) for n in names}
    for im in images:
        missing = [n for n in names if im["id"] not in done_sets[n]]
        cached += len(names) - len(missing)
        if missing:
            todo.append((im, missing))
    errors: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    computed = 0
    t0 = time.perf_counter()
    for k, (im, missing) in enumerate(todo):
        if cancel is not None and cancel.is_set():
            cs.put_filter_results(ws, rows)
            raise Cancelled(f"cancelled after {k} of {len(todo)} images")
        try:
            arr = load_image(im["path"], keep_alpha=True)
        except (MediaError, OSError) as exc:
            errors.append({"image_id": im["id"], "path": im["path"], "error": str(exc)})
            continue
        alpha = arr[..., 3] if arr.ndim == 3 and arr.shape[2] == 4 else None
        res = evaluate_image(arr[..., :3], names=tuple(missing), params=p, backends=backends, alpha=alpha,
                             product=im.get("product"))
        for n, r in res.items():
            rows.append({"image_id": im["id"], "filter": n, "params_hash": hashes[n], "value": r.value,
                         "passed": r.passed, "reason": r.reason, "details": r.details})
            computed += 1
        if len(rows) >= batch * len(names):
            cs.put_filter_results(ws, rows)
            rows = []
        if progress is not None:
            progress((k + 1) / len(todo), f"[{k + 1}/{len(todo)}] {im['path']}")
    cs.put_filter_results(ws, rows)
    return {"images": len(images), "computed": computed, "cached": cached, "errors": errors,
            "params_hash": hashes, "backends": bnames, "seconds": round(time.perf_counter() - t0, 2),
            "summary": cs.filter_summary(ws)}
