"""SQL the review app needs that the other storage modules lack: item cards, the video queue, progress lines,
pair scheduling.

Labels are read through the label-rule views (storage.labels), the classifier's scores through
storage.classifier_runs; every write goes through `storage.labels`.
"""
from __future__ import annotations

import json
import time
from typing import Any

from . import calibrations, labels, metric_results
from .classifier_runs import image_score
from .classifier_runs import kept_count as kept_at_threshold  # noqa: F401  (the Classifier tab's slider)
from .classifier_runs import list_runs as classifier_runs  # noqa: F401  (the Classifier tab's history)
from .db import Workspace

_COUNT_SQL = {"image": "SELECT count(*) FROM images", "video": "SELECT count(*) FROM videos"}


def image_card(ws: Workspace, image_id: int) -> dict[str, Any] | None:
    """Everything the Images view shows about one image (besides overlays)."""
    rows = ws.query_dicts(
        "SELECT i.id, i.sha256, i.path, i.width, i.height, i.format, i.bytes, i.product, i.source, i.dup_group, "
        "c.name AS category, d.name AS domain FROM images i LEFT JOIN categories c ON c.id = i.category_id "
        "LEFT JOIN domains d ON d.id = c.domain_id WHERE i.id = ?", [int(image_id)])
    if not rows:
        return None
    card = rows[0]
    newest: dict[str, dict[str, Any]] = {}
    for f in ws.query_dicts("SELECT filter, value, passed, reason FROM filter_results WHERE image_id = ? "
                            "ORDER BY computed_at", [int(image_id)]):
        newest[f["filter"]] = f
    card["filters"] = [newest[k] for k in sorted(newest)]
    card["score"] = image_score(ws, int(image_id))
    card["labels"] = labels.item_labels(ws, "image", int(image_id))
    card["label"] = labels.resolved_label(ws, "image", int(image_id))
    return card


def failed_filter_names(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT DISTINCT filter FROM filter_results ORDER BY 1")]


def annotators(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT DISTINCT annotator FROM label_events ORDER BY 1")]


def category_choices(ws: Workspace) -> list[tuple[str, int]]:
    """(label, id) of categories that hold images, with counts."""
    rows = ws.query("SELECT c.id, d.name, c.name, count(*) FROM images i JOIN categories c ON c.id = i.category_id "
                    "JOIN domains d ON d.id = c.domain_id GROUP BY ALL ORDER BY d.name, c.name")
    return [(f"{d} / {c} ({n})", int(cid)) for cid, d, c, n in rows]


def label_progress_cached(ws: Workspace, item_kind: str = "image", ttl: float = 1.0) -> dict[str, int]:
    """label_progress, recomputed only when the event log grew, and then at most every `ttl` seconds (a header
    line: at 100,000 items the full count costs tens of ms, too much for every key press of every annotator)."""
    key = ("progress_cached", item_kind)
    now = time.monotonic()
    hit = ws.derived.get(key)
    n = labels.last_event_id(ws)
    if hit and (hit[1] == n or now - hit[0] < ttl):
        return hit[2]
    val = label_progress(ws, item_kind)
    ws.derived[key] = (now, n, val)
    return val


def label_progress_live(ws: Workspace, item_kind: str = "image", full_every: float = 30.0) -> dict[str, int]:
    """label_progress kept up to date incrementally: after the first full count only the items touched by
    events newer than the last call are re-read (a few ms instead of tens at 100,000 items), with a full
    recount every `full_every` seconds as a safety net. Writes are serialized in one process (the workspace's
    write lock, and one writer process), so event ids become visible in order."""
    out: dict[str, int] = {"total": int(ws.query_one(_COUNT_SQL[item_kind])[0])}
    live = ws.derived.setdefault("progress_live", {})
    with ws.derived_lock:                                                         # handlers run in threads
        decided = _progress_update(ws, live, item_kind, full_every, time.monotonic())["labels"]
        for v in decided.values():
            out[v] = out.get(v, 0) + 1
        out["labelled"] = len(decided)
    return out


def _progress_update(ws: Workspace, live: dict, item_kind: str, full_every: float, now: float) -> dict:
    n = labels.last_event_id(ws)
    st = live.get(item_kind)
    if st is None or now - st["at"] > full_every:
        decided = {i: d["label"] for i, d in labels.resolved_labels(ws, item_kind).items()}
        st = live[item_kind] = {"at": now, "last": n, "labels": decided}
    elif n != st["last"]:
        touched = labels.touched_items(ws, item_kind, st["last"], n)
        if touched:
            fresh = labels.resolved_labels(ws, item_kind, touched)
            for t in touched:
                st["labels"].pop(t, None)
            st["labels"].update({i: d["label"] for i, d in fresh.items()})
        st["last"] = n
    return st


def label_progress(ws: Workspace, item_kind: str = "image") -> dict[str, int]:
    """{"total": items, "labelled": items with a decision, and one count per decided label}."""
    counts = labels.label_counts(ws, item_kind)
    return {"total": int(ws.query_one(_COUNT_SQL[item_kind])[0]), **counts, "labelled": sum(counts.values())}


# -- videos -----------------------------------------------------------------------------------
_LATEST_OK = ("SELECT video_id, metric, avg(value) AS value FROM (SELECT video_id, metric, value, status, "
              "row_number() OVER (PARTITION BY video_id, triple_id, metric ORDER BY id DESC) AS rn "
              "FROM metric_results WHERE {where}) WHERE rn = 1 AND status = 'ok' GROUP BY video_id, metric")
_QUEUE_ORDER = {"id": "v.id", "newest": "v.added_at DESC, v.id DESC", "metric": "f.value ASC NULLS LAST, v.id",
                # metric vs designer: an accept the newest calibration gives a low P(accept), a reject a high one,
                # first; a decision made by a rule's label is no designer's, so it orders last with the unscored
                "disagreement": "CASE WHEN l.by_rule THEN NULL WHEN l.label = 'accept' THEN 1 - s.p_accept "
                                "WHEN l.label = 'reject' THEN s.p_accept END DESC NULLS LAST, v.id"}
_CAL_SCORES = f"SELECT video_id, p_accept FROM calibration_scores WHERE calibration_id = {calibrations.SCORED}"


def video_queue(ws: Workspace, *, label_state: str = "unlabelled", model: str | None = None,
                metric: str | None = None, metric_min: float | None = None, metric_max: float | None = None,
                order: str = "id", limit: int = 50, offset: int = 0,
                ids: list[int] | None = None, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Videos with their metric values (key -> mean over triples of each metric's newest ok result), filtered.

    metric_min/max are fractions 0-1; a video without an ok value of `metric` is excluded by a range filter.
    label_state: unlabelled | labelled | any | accept | reject. order: id | newest | metric (needs `metric`) |
    disagreement (metric vs designer: by the newest calibration's P(accept), storage.calibrations; each row then
    has "p_accept", None where that calibration scored no value).
    ids: only these videos (the few rows a list shows). keys: the current "metric|version|params_hash" keys
    (curation.current); only results under them are shown and filtered on (all results when None).
    """
    cur = "true" if keys is None else metric_results.CURRENT
    kp = [] if keys is None else [list(keys)]
    where, params = [], kp + [metric]
    if ids is not None:
        where.append("list_contains(?::BIGINT[], v.id)")
        params.append([int(i) for i in ids])
    if model:
        where.append("v.model = ?")
        params.append(model)
    if metric and metric_min is not None:
        where.append("f.value >= ?")
        params.append(float(metric_min))
    if metric and metric_max is not None:
        where.append("f.value <= ?")
        params.append(float(metric_max))
    if label_state == "unlabelled":
        where.append("l.label IS NULL")
    elif label_state == "labelled":
        where.append("l.label IS NOT NULL")
    elif label_state in ("accept", "reject"):
        where.append("l.label = ?")
        params.append(label_state)
    order_sql = _QUEUE_ORDER.get(order if metric or order != "metric" else "id", "v.id")
    scored = order == "disagreement"        # the scores are joined only for the order that needs them
    sql = ("WITH l AS (SELECT item_id, label, by_rule FROM resolved_labels WHERE item_kind = 'video'), "
           f"f AS ({_LATEST_OK.format(where=cur + ' AND metric = ?')})"
           + (f", s AS ({_CAL_SCORES}) " if scored else " ")
           + "SELECT v.id, v.path, v.sha256, v.model, v.fps, v.frame_count, v.width, v.height, l.label"
           + (", s.p_accept " if scored else " ")
           + "FROM videos v LEFT JOIN l ON l.item_id = v.id LEFT JOIN f ON f.video_id = v.id "
           + ("LEFT JOIN s ON s.video_id = v.id " if scored else "")
           + (("WHERE " + " AND ".join(where)) if where else "")
           + f" ORDER BY {order_sql} LIMIT ? OFFSET ?")
    rows = ws.query_dicts(sql, params + [int(limit), int(offset)])
    means: dict[int, dict[str, float]] = {}
    if rows:
        for vid, m, value in ws.query(_LATEST_OK.format(where=cur + " AND video_id IN (SELECT unnest(?::BIGINT[]))"),
                                      kp + [[int(r["id"]) for r in rows]]):
            means.setdefault(int(vid), {})[m] = float(value)
    for r in rows:
        r["metrics"] = means.get(int(r["id"]), {})
    return rows


def video_models(ws: Workspace) -> list[str]:
    return [r[0] for r in ws.query("SELECT DISTINCT model FROM videos WHERE model IS NOT NULL AND model <> '' "
                                   "ORDER BY 1")]


def video_card(ws: Workspace, video_id: int) -> dict[str, Any] | None:
    rows = ws.query_dicts(
        "SELECT v.*, p.text AS prompt, i.path AS source_image_path, i.sha256 AS source_image_sha256, "
        "i.product AS product, c.name AS category, d.name AS domain FROM videos v "
        "LEFT JOIN prompts p ON p.id = v.prompt_id LEFT JOIN images i ON i.id = v.source_image_id "
        "LEFT JOIN categories c ON c.id = i.category_id LEFT JOIN domains d ON d.id = c.domain_id "
        "WHERE v.id = ?", [int(video_id)])
    if not rows:
        return None
    card = rows[0]
    card["triples"] = ws.query_dicts(
        "SELECT t.id, t.image_id, t.prompt_id, t.model, t.benchmark_set, t.product, p.text AS prompt, "
        "i.path AS image_path FROM triples t LEFT JOIN prompts p ON p.id = t.prompt_id "
        "LEFT JOIN images i ON i.id = t.image_id WHERE t.video_id = ? ORDER BY t.id", [int(video_id)])
    if card.get("product") is None and card["triples"]:
        card["product"] = card["triples"][0].get("product")
    if card.get("prompt") is None and card["triples"]:
        card["prompt"] = card["triples"][0].get("prompt")
    card["labels"] = labels.item_labels(ws, "video", int(video_id))
    card["label"] = labels.resolved_label(ws, "video", int(video_id))
    return card


# -- pairs (Compare tab) ----------------------------------------------------------------------
def pair_cases(ws: Workspace) -> list[dict[str, Any]]:
    """Cases with videos from at least two models: the same source image and prompt (the triples table).

    When no (image, prompt) case has two models, cases fall back to the same source image (the prompts may
    then differ; `same_prompt` says so)."""
    sql = ("SELECT t.image_id, {key} AS prompt_key, list(struct_pack(triple_id := t.id, video_id := t.video_id, "
           "model := t.model) ORDER BY t.id) AS items FROM triples t WHERE t.image_id IS NOT NULL AND t.model <> '' "
           "GROUP BY t.image_id, prompt_key HAVING count(DISTINCT t.model) >= 2 ORDER BY t.image_id, prompt_key")
    rows = ws.query_dicts(sql.format(key="t.prompt_id"))
    same = True
    if not rows:
        rows = ws.query_dicts(sql.format(key="0"))
        same = False
    for r in rows:
        r["same_prompt"] = same
    return rows


def pair_counts(ws: Workspace, annotator: str | None = None) -> dict[tuple[str, str], int]:
    """How many pair judgements each unordered model pair has (optionally by one annotator)."""
    sql = ("SELECT json_extract_string(payload, '$.left_model') AS a, json_extract_string(payload, '$.right_model') "
           "AS b, count(*) FROM live_label_events WHERE item_kind = 'pair'")
    params: list[Any] = []
    if annotator:
        sql += " AND annotator = ?"
        params.append(annotator)
    out: dict[tuple[str, str], int] = {}
    for a, b, n in ws.query(sql + " GROUP BY 1, 2", params):
        key = tuple(sorted((a or "", b or "")))
        out[key] = out.get(key, 0) + int(n)
    return out


def judged_pairs(ws: Workspace, annotator: str) -> set[tuple[int, int]]:
    """(min triple id, max triple id) of pairs this annotator has judged (not undone)."""
    rows = ws.query(
        "SELECT json_extract(payload, '$.left_triple')::BIGINT, json_extract(payload, '$.right_triple')::BIGINT "
        "FROM live_label_events WHERE item_kind = 'pair' AND annotator = ?", [annotator])
    return {(min(a, b), max(a, b)) for a, b in rows if a is not None and b is not None}


def pair_results(ws: Workspace) -> list[dict[str, Any]]:
    """Per model: wins / losses / ties on each criterion over current pair judgements."""
    rows = ws.query_dicts(
        "SELECT payload FROM live_label_events WHERE item_kind = 'pair'")
    stats: dict[str, dict[str, int]] = {}
    for r in rows:
        p = json.loads(r["payload"]) if isinstance(r["payload"], str) else (r["payload"] or {})
        lm, rm = p.get("left_model"), p.get("right_model")
        for crit in ("prompt_following", "ad_quality"):
            choice = p.get(crit)
            for m in (lm, rm):
                stats.setdefault(m, {f"{c}_{k}": 0 for c in ("prompt_following", "ad_quality")
                                     for k in ("win", "loss", "tie")})
            if choice == "tie":
                stats[lm][f"{crit}_tie"] += 1
                stats[rm][f"{crit}_tie"] += 1
            elif choice in ("left", "right"):
                win, lose = (lm, rm) if choice == "left" else (rm, lm)
                stats[win][f"{crit}_win"] += 1
                stats[lose][f"{crit}_loss"] += 1
    return [{"model": m, **s} for m, s in sorted(stats.items())]

