"""Embedding cache: one vector per (content hash, model id), written in bulk through Arrow."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .db import Workspace


def put_embeddings(ws: Workspace, model_id: str, shas: list[str], vectors: np.ndarray) -> int:
    """Store vectors (N, D) for these hashes; existing (hash, model) rows are kept. Returns rows added."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(shas) != len(vectors):
        raise ValueError(f"{len(shas)} hashes but {len(vectors)} vectors")
    if not shas:
        return 0
    n, d = vectors.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    table = pa.table({"item_sha256": pa.array(shas, pa.string()),
                      "model_id": pa.array([model_id] * n, pa.string()),
                      "dim": pa.array([d] * n, pa.int32()),
                      "vector": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)))})
    with ws.transaction() as cur:
        before = cur.execute("SELECT count(*) FROM embeddings WHERE model_id = ?", [model_id]).fetchall()[0][0]
        cur.register("_new_embeddings", table)
        try:
            cur.execute("INSERT INTO embeddings (item_sha256, model_id, dim, vector) "
                        "SELECT item_sha256, model_id, dim, vector FROM _new_embeddings ON CONFLICT DO NOTHING")
        finally:
            cur.unregister("_new_embeddings")
        after = cur.execute("SELECT count(*) FROM embeddings WHERE model_id = ?", [model_id]).fetchall()[0][0]
    return after - before


def get_embeddings(ws: Workspace, model_id: str, shas: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(hashes, matrix) for this model; only those in `shas` when given, in the stored order."""
    if shas is None:
        tbl = ws._cursor().sql("SELECT item_sha256, vector FROM embeddings WHERE model_id = ? "
                               "ORDER BY item_sha256", params=[model_id]).to_arrow_table()
    else:
        cur = ws._cursor()
        cur.register("_want", pa.table({"sha": pa.array(list(shas), pa.string())}))
        try:
            tbl = cur.sql("SELECT e.item_sha256, e.vector FROM embeddings e JOIN _want w ON w.sha = e.item_sha256 "
                          "WHERE e.model_id = ? ORDER BY e.item_sha256", params=[model_id]).to_arrow_table()
        finally:
            cur.unregister("_want")
    keys = tbl.column("item_sha256").to_pylist()
    if not keys:
        return [], np.zeros((0, 0), np.float32)
    vec = tbl.column("vector").combine_chunks()
    mat = vec.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(keys), -1)
    return keys, mat


def models_covering_images(ws: Workspace) -> list[tuple[str, int]]:
    """(model id, how many catalogue images it has a vector for), per embedding model, unordered."""
    return ws.query("SELECT model_id, count(*) FROM embeddings WHERE item_sha256 IN (SELECT sha256 FROM images) "
                    "GROUP BY model_id")


def models_covering(ws: Workspace, shas: list[str]) -> list[tuple[str, int]]:
    """(model id, how many of these hashes it has a vector for), most covering first."""
    return ws.query("SELECT model_id, count(*) FROM embeddings WHERE item_sha256 IN (SELECT unnest(?)) "
                    "GROUP BY model_id ORDER BY count(*) DESC", [shas])


def dim_of(ws: Workspace, model_id: str) -> int | None:
    """The vector length stored for this model (None before any vector)."""
    row = ws.query_one("SELECT any_value(dim) FROM embeddings WHERE model_id = ?", [model_id])
    return int(row[0]) if row and row[0] is not None else None
