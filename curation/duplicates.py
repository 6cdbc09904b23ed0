"""Near-duplicate images: perceptual hash (64-bit DCT pHash, Hamming distance) and embedding cosine,
joined into groups by union-find. Every image gets `images.dup_group` = the smallest image id of its
group (an image without copies is its own group), so an export split by dup_group never puts two
copies on both sides of train/test.

    python -m curation dedup --workspace W [--hamming 6] [--cosine 0.97] [--json]
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import cv2
import numpy as np

from media.files import MediaError, load_image
from storage import Workspace, embeddings
from storage import curation_store as cs

from .features import embedding_matrix
from .jobs import Cancelled, Progress
from .union_find import UnionFind

HAMMING_MAX = 6          # pHash bits that may differ (of 64) for a near-copy
COLOUR_MAX = 4.0         # ... and mean |difference| of the 4x4 CIELAB colour grids (pHash is colour-blind)
COSINE_MIN = 0.96        # CLIP / DINO embedding cosine for a near-copy. Not used with the classical
                         # descriptor alone: on fieldmedia and the demo, distinct same-style images reach
                         # 0.997 while a half-size JPEG copy scores 0.976 -- it cannot separate copies.
_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def phash(img: np.ndarray) -> int:
    """64-bit DCT perceptual hash: grey 32x32, DCT, top-left 8x8 without DC vs their median."""
    g = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
    g = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    d = cv2.dct(g)[:8, :8].reshape(-1)
    med = np.median(d[1:])
    bits = (d > med).astype(np.uint8)
    bits[0] = 0
    return int(np.packbits(bits).view(">u8")[0])


def colour_signature(img: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour of a 4x4 grid (48 floats, L in 0..100, a/b around 0)."""
    rgb = np.ascontiguousarray(img[..., :3]) if img.ndim == 3 else np.repeat(img[..., None], 3, 2)
    small = cv2.resize(rgb, (4, 4), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1).astype(np.float32)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    x = np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))
    return _POP8[np.ascontiguousarray(x).view(np.uint8).reshape(*np.shape(x), 8)].sum(axis=-1)


def phash_pairs(hashes: np.ndarray, max_dist: int = HAMMING_MAX) -> list[tuple[int, int]]:
    """Index pairs within max_dist bits. Multi-index hashing: with max_dist <= 7 two near hashes share
    at least one of their 8 bytes exactly, so only items sharing a byte value are compared."""
    n = len(hashes)
    if n < 2:
        return []
    hashes = np.asarray(hashes, np.uint64)
    if max_dist > 7:      # pigeonhole no longer holds for bytes: compare all (fine for small sets)
        pairs = []
        for i in range(n - 1):
            d = hamming(hashes[i], hashes[i + 1:])
            pairs += [(i, i + 1 + j) for j in np.flatnonzero(d <= max_dist)]
        return pairs
    b = hashes.view(np.uint8).reshape(n, 8)
    found: set[tuple[int, int]] = set()
    for pos in range(8):
        order = np.argsort(b[:, pos], kind="stable")
        vals = b[order, pos]
        cuts = np.flatnonzero(np.diff(vals)) + 1
        for grp in np.split(order, cuts):
            if len(grp) < 2:
                continue
            h = hashes[grp]
            for k in range(len(grp) - 1):
                d = hamming(h[k], h[k + 1:])
                for j in np.flatnonzero(d <= max_dist):
                    i1, i2 = int(grp[k]), int(grp[k + 1 + j])
                    found.add((min(i1, i2), max(i1, i2)))
    return sorted(found)


def cosine_pairs(vectors: np.ndarray, min_cos: float = COSINE_MIN, block: int = 2048) -> list[tuple[int, int]]:
    """Index pairs with cosine >= min_cos (blockwise exact search over L2-normalized rows)."""
    n = len(vectors)
    if n < 2:
        return []
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    v = v.astype(np.float32)
    valid = np.any(vectors != 0, axis=1)
    pairs = []
    for s in range(0, n, block):
        sims = v[s:s + block] @ v.T
        rows, cols = np.nonzero(sims >= min_cos)
        for r, c in zip(rows, cols):
            i = s + int(r)
            if int(c) > i and valid[i] and valid[c]:
                pairs.append((i, int(c)))
    return pairs


def group_ids(ids: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """dup_group per item: the smallest id of its connected component."""
    uf = UnionFind()
    for a, b in pairs:
        uf.union(a, b)
    roots = np.array([uf.find(i) for i in range(len(ids))])
    smallest: dict[int, int] = {}
    for i, r in enumerate(roots):
        smallest[r] = min(smallest.get(r, int(ids[i])), int(ids[i]))
    return np.array([smallest[r] for r in roots], np.int64)


def _embedding_model(ws: Workspace) -> str | None:
    """The embedding used for cosine: CLIP, else DINO, else classical, whichever covers most images."""
    rows = embeddings.models_covering_images(ws)
    if not rows:
        return None
    rank = lambda m: 0 if m.startswith("open_clip") else 1 if m.startswith("timm") else 2  # noqa: E731
    return sorted(rows, key=lambda r: (rank(r[0]), -r[1]))[0][0]


def dedup(ws: Workspace, *, hamming_max: int = HAMMING_MAX, colour_max: float | None = COLOUR_MAX,
          cosine_min: float | None = COSINE_MIN, cosine_model: str | None = None, progress: Progress | None = None,
          cancel: threading.Event | None = None) -> dict[str, Any]:
    """Hash (cached in image_hashes), compare, group and store images.dup_group. Returns a report."""

    t0 = time.perf_counter()
    images = cs.all_images(ws)
    ids = np.array([im["id"] for im in images], np.int64)
    have = cs.get_phashes(ws)
    new, errors = [], []
    todo = [im for im in images if have.get(im["id"], ("", 0))[0] != im["sha256"]]
    for k, im in enumerate(todo):
        if cancel is not None and cancel.is_set():
            cs.put_phashes(ws, new)
            raise Cancelled(f"dedup cancelled after hashing {k} of {len(todo)} images")
        try:
            arr = load_image(im["path"])
            new.append((im["id"], im["sha256"], phash(arr), colour_signature(arr)))
        except (MediaError, OSError) as exc:
            errors.append({"image_id": im["id"], "path": im["path"], "error": str(exc)})
        if len(new) >= 512:
            cs.put_phashes(ws, new)
            have.update({r[0]: r[1:] for r in new})
            new = []
        if progress is not None:
            progress((k + 1) / len(todo), f"hashing: {k + 1} of {len(todo)} images")
    cs.put_phashes(ws, new)
    have.update({r[0]: r[1:] for r in new})
    hashed = np.array([i in have for i in ids])
    hv = np.array([have[i][1] if i in have else 0 for i in ids], np.uint64)
    cv_ = np.stack([have[i][2] if i in have else np.zeros(48, np.float32) for i in ids]) if len(ids) else None
    idx_h = np.flatnonzero(hashed)
    p_pairs = []
    for a, b in phash_pairs(hv[idx_h], hamming_max):
        i, j = int(idx_h[a]), int(idx_h[b])
        if colour_max is None or float(np.abs(cv_[i] - cv_[j]).mean()) <= colour_max:
            p_pairs.append((i, j))

    c_pairs: list[tuple[int, int]] = []
    model, cosine_note = None, None
    if cosine_min is not None and len(images) > 1:
        model = cosine_model or _embedding_model(ws)
        if model is None:
            cosine_note = "skipped: no CLIP/DINO embeddings cached (train or embed first); pHash only"
        elif model.startswith("classical") and cosine_model is None:
            cosine_note = (f"skipped: only {model} is cached, which does not separate copies from same-style "
                           "images; pHash only (pass cosine_model to force)")
            model = None
        else:
            mat, present = embedding_matrix(ws, model, [im["sha256"] for im in images])
            c_pairs = cosine_pairs(mat, cosine_min) if mat.size else []
    groups = group_ids(ids, p_pairs + c_pairs)
    cs.set_dup_groups(ws, ids, groups)
    sizes = defaultdict(int)
    for g in groups:
        sizes[int(g)] += 1
    multi = {g: n for g, n in sizes.items() if n > 1}
    return {"images": len(images), "hashed_now": len(todo) - len(errors), "errors": errors,
            "phash_pairs": len(p_pairs), "cosine_pairs": len(c_pairs), "cosine_model": model,
            "cosine_note": cosine_note, "hamming_max": hamming_max, "colour_max": colour_max,
            "cosine_min": cosine_min,
            "groups": len(multi), "images_in_groups": int(sum(multi.values())),
            "largest_group": max(multi.values(), default=1), "seconds": round(time.perf_counter() - t0, 2)}
