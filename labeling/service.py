"""The label service the app's handlers call. Handlers stay thin; everything durable happens here.

Writes: one short serialized transaction per action (storage.labels.append_event), acknowledged only after
COMMIT; a client_key per action makes a retried request add nothing.
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from curation.current import current_keys, key_list
from curation.overlays import OverlayWorker
from curation.queue import image_queue
from metrics.registry import METRICS
from storage import Workspace, labels, metric_results, triples
from storage import review_store as rs
from storage import bestof

KEYS_TTL = 2.0                     # seconds a derivation of the current result keys is reused
IMAGE_VALUES = ("good", "bad", "skip")
VIDEO_VALUES = ("accept", "reject", "skip")
PAIR_CHOICES = ("left", "right", "tie")
IMAGE_REASONS = ["blurry", "collage", "text clutter", "product not salient", "text over product", "other"]
VIDEO_REASONS = ["insufficient motion", "unstable or illegible text", "product distorted or changed",
                 "low visual quality", "irrational effect", "other"]
CRITERIA = ("prompt_following", "ad_quality")
NO_ANNOTATOR = "Type your name in Annotator first: every label records who made it."


class LabelError(ValueError):
    """A label request that cannot be honoured; the message is shown to the user."""


def require_annotator(annotator: str | None) -> str:
    """The annotator name, stripped; every labelling action (label, undo, pair judgement) asks here, so a blank
    name is refused the same way everywhere, before anything is written."""
    name = (annotator or "").strip()
    if not name:
        raise LabelError(NO_ANNOTATOR)
    return name


class ReviewService:
    def __init__(self, ws: Workspace, *, seed: int | None = None) -> None:
        self.ws = ws
        self.root = Path(ws.root)
        self.worker = OverlayWorker()
        self._rng_lock = threading.Lock()
        self._rng = random.Random(seed)  # unseeded in the app; tests pass a seed
        self._keys: tuple[float, list[str]] | None = None

    # -- labels --------------------------------------------------------------------------------
    def label(self, *, item_kind: str, item_id: int, value: str, annotator: str, reasons: list[str] | None = None,
              note: str | None = None, client_key: str | None = None, session: str | None = None,
              payload: dict | None = None) -> dict[str, Any]:
        """Append one label event; durable (committed) when this returns."""
        annotator = require_annotator(annotator)
        allowed = {"image": IMAGE_VALUES, "video": VIDEO_VALUES, "triple": VIDEO_VALUES}.get(item_kind)
        if allowed is not None and value not in allowed:
            raise LabelError(f"{item_kind} label must be one of {', '.join(allowed)}, got {value!r}")
        if item_id is None:
            raise LabelError("no item selected")
        try:
            ev = labels.append_event(self.ws, item_kind=item_kind, item_id=int(item_id), value=value,
                                     annotator=annotator, reasons=[r for r in (reasons or []) if r],
                                     note=(note or None), session=session, payload=payload,
                                     client_key=(client_key or None))
        except ValueError as exc:  # an unknown item id: say so, store nothing
            raise LabelError(str(exc)) from None
        return {"event_id": int(ev["id"]), "duplicate": bool(ev["duplicate"]), "item_kind": item_kind,
                "item_id": int(item_id), "value": value, "annotator": annotator}

    def label_many(self, *, item_ids: list[int], value: str, annotator: str, reasons: list[str] | None = None,
                   note: str | None = None, item_kind: str = "image", client_key: str | None = None) -> dict[str, Any]:
        """Label many items in one action (the Images grid, scripts): one event per item, committed together as
        one batch, which one undo takes back whole. Returns {"labelled", "duplicate", "value", "item_ids",
        "batch"}; a retried request (same client_key) adds nothing."""
        annotator = require_annotator(annotator)
        allowed = {"image": IMAGE_VALUES, "video": VIDEO_VALUES, "triple": VIDEO_VALUES}.get(item_kind)
        if allowed is None:
            raise LabelError(f"many items at once are images, videos or triples, not {item_kind!r}")
        if value not in allowed:
            raise LabelError(f"{item_kind} label must be one of {', '.join(allowed)}, got {value!r}")
        try:
            ids = list(dict.fromkeys(int(i) for i in (item_ids or [])))
        except (TypeError, ValueError):
            raise LabelError(f"item ids must be whole numbers, got {item_ids!r}") from None
        if not ids:
            raise LabelError(f"no {item_kind} selected")
        try:
            res = labels.append_many(self.ws, item_kind=item_kind, item_ids=ids, value=value, annotator=annotator,
                                     reasons=[r for r in (reasons or []) if r], note=note or None,
                                     client_key=client_key or None)
        except ValueError as exc:  # an unknown item id: say so, store nothing
            raise LabelError(str(exc)) from None
        return {"labelled": res["n"], "duplicate": res["duplicate"], "value": value, "item_kind": item_kind,
                "item_ids": ids, "annotator": annotator, "batch": res["session"]}

    def undo(self, *, annotator: str, item_kinds: tuple[str, ...] = ("image",), client_key: str | None = None,
             session: str | None = None) -> dict[str, Any] | None:
        """Undo the annotator's latest label (of these kinds): appends an 'undo' event pointing at it. When that
        label came from a batch (label_many), every still-live event of the batch is undone with it, in one
        transaction: "n" and "item_ids" say which."""
        annotator = require_annotator(annotator)
        if client_key:
            prior = labels.event_by_client_key(self.ws, client_key)
            if prior:
                return {"undone_event": prior["undoes"], "item_kind": prior["item_kind"],
                        "item_id": int(prior["item_id"]), "duplicate": True}
        target = labels.last_undoable(self.ws, annotator, tuple(item_kinds))
        if target is None:
            return None
        batch = labels.batch_session(self.ws, int(target["id"]))
        if batch is not None:
            done = labels.undo_session(self.ws, batch, annotator=annotator, client_key=client_key or None)
            return {"undone_event": int(target["id"]), "item_kind": target["item_kind"],
                    "item_id": int(target["item_id"]), "value": target["value"], "duplicate": False,
                    "batch": batch, "n": len(done), "item_ids": [d["item_id"] for d in done]}
        ev = labels.append_event(self.ws, item_kind=target["item_kind"], item_id=int(target["item_id"]),
                                 value="undo", annotator=annotator, undoes=int(target["id"]), session=session,
                                 client_key=client_key or None)
        return {"undone_event": int(target["id"]), "event_id": int(ev["id"]), "item_kind": target["item_kind"],
                "item_id": int(target["item_id"]), "value": target["value"], "duplicate": bool(ev["duplicate"])}

    # -- queues --------------------------------------------------------------------------------
    def image_queue(self, **kw: Any) -> list[dict[str, Any]]:
        """The Images tab's queue, every order and label state through one query (curation.queue), so the
        labels it shows follow the label rule whichever order is chosen."""
        rows = image_queue(self.ws, **kw)
        for r in rows:
            r.setdefault("id", r.get("image_id"))
        return rows

    def video_results(self, video_id: int) -> list[dict[str, Any]]:
        """The video's newest result per (metric, triple), with traces; each marked "stale" when it is not
        under the metric's current key (curation.current): the scorecard shows it as such, not as a score."""
        keys = set(self.current_keys())
        rows = metric_results.results_for_video(self.ws, int(video_id), with_trace=True)
        for r in rows:
            r["stale"] = metric_results.result_key(r["metric"], r["metric_version"], r["params_hash"]) not in keys
        return rows

    def current_keys(self) -> list[str]:
        """The current result keys (curation.current), re-derived at most every KEYS_TTL seconds: a view asks
        up to three times and each derivation reads the backends' status and the store; the keys change only
        when weights are installed or removed."""
        now = time.monotonic()
        if self._keys is None or now - self._keys[0] > KEYS_TTL:
            self._keys = (now, key_list(current_keys(self.ws)))
        return self._keys[1]

    def video_queue(self, **kw: Any) -> list[dict[str, Any]]:
        """The Videos tab's queue; each row's "metrics" maps metric key -> mean of its newest ok results."""
        if kw.get("metric") and kw["metric"] not in METRICS:
            raise ValueError(f"unknown metric {kw['metric']!r}; one of {', '.join(METRICS)}")
        return rs.video_queue(self.ws, keys=self.current_keys(), **kw)

    # -- pairs ---------------------------------------------------------------------------------
    def next_pair(self, annotator: str, exclude: set[tuple[int, int]] | None = None) -> dict[str, Any] | None:
        """The next pair for this annotator: the least-judged model pair first (so every model meets every
        other evenly), a case this annotator has not judged for it, left/right order randomised."""
        cases = rs.pair_cases(self.ws)
        if not cases:
            return None
        counts = rs.pair_counts(self.ws)
        done = rs.judged_pairs(self.ws, annotator) | set(exclude or ())
        options = []
        for case in cases:
            items = case["items"]
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    x, y = items[a], items[b]
                    if x["model"] == y["model"]:
                        continue
                    key = (min(x["triple_id"], y["triple_id"]), max(x["triple_id"], y["triple_id"]))
                    if key in done:
                        continue
                    mp = tuple(sorted((x["model"], y["model"])))
                    options.append((counts.get(mp, 0), mp, case, x, y))
        if not options:
            return None
        with self._rng_lock:
            least = min(o[0] for o in options)
            pool = [o for o in options if o[0] == least]
            n, mp, case, x, y = self._rng.choice(pool)
            if self._rng.random() < 0.5:
                x, y = y, x
        return {"image_id": case["image_id"], "same_prompt": case["same_prompt"], "model_pair": list(mp),
                "left": self._triple(x["triple_id"]), "right": self._triple(y["triple_id"]), "pair_count": n}

    def _triple(self, triple_id: int) -> dict[str, Any]:
        card = triples.pair_side(self.ws, triple_id)
        if card is None:
            raise LabelError(f"no triple with id {triple_id} in this workspace")
        return card

    def judge_pair(self, *, left_triple: int, right_triple: int, prompt_following: str, ad_quality: str,
                   annotator: str, client_key: str | None = None, session: str | None = None) -> dict[str, Any]:
        annotator = require_annotator(annotator)
        for name, v in (("prompt following", prompt_following), ("ad quality", ad_quality)):
            if v not in PAIR_CHOICES:
                raise LabelError(f"choose left, right or tie for {name} (got {v!r})")
        lt, rt = self._triple(left_triple), self._triple(right_triple)
        payload = {"left_triple": int(left_triple), "right_triple": int(right_triple),
                   "left_model": lt["model"], "right_model": rt["model"],
                   "left_video": int(lt["video_id"]), "right_video": int(rt["video_id"]),
                   "prompt_following": prompt_following, "ad_quality": ad_quality}
        # item_id: the smaller triple id, so a pair is one item whichever side it was shown on
        return self.label(item_kind="pair", item_id=min(int(left_triple), int(right_triple)),
                          value=f"{prompt_following}/{ad_quality}", annotator=annotator, payload=payload,
                          client_key=client_key, session=session)

    # -- best of N (labeling/ui_bestof.py, the bestof_* endpoints) ----------------------------------
    def bestof_cases(self, **kw: Any) -> list[dict[str, Any]]:
        """The Best-of-N cases (storage.bestof.cases: search, model, open_only, order, limit, offset)."""
        return bestof.cases(self.ws, **kw)

    def bestof_case(self, case_id: str) -> dict[str, Any] | None:
        """One case with its candidates, each with the label rule's decision on its triple ("decided") and the
        six metrics' current value or status ("metrics": key -> {"status", "value"}); None for no such case."""
        try:
            image_id, prompt_id = bestof.parse_case_id(case_id)
        except ValueError as exc:
            raise LabelError(str(exc)) from None
        head = bestof.case_head(self.ws, image_id, prompt_id)
        if head is None:
            return None
        cands = bestof.candidates(self.ws, image_id, prompt_id)
        decided = labels.resolved_labels(self.ws, "triple", [c["triple_id"] for c in cands])
        scores = self._candidate_metrics(cands)
        for c in cands:
            c["decided"] = decided.get(int(c["triple_id"]))
            c["metrics"] = scores.get(int(c["triple_id"]), {})
        return {**head, "candidates": cands}

    def _candidate_metrics(self, cands: list[dict[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
        """triple id -> metric -> {"status", "value"}, as the Videos tab's scorecard reads a result: the mean of
        the current ok results of the triple (and of its video, triple 0); else the status of the current ones;
        "stale" when only results under another key exist; "none" when never scored."""
        vids = sorted({int(c["video_id"]) for c in cands})
        if not vids:
            return {}
        current = metric_results.latest_metric_results(self.ws, vids, keys=self.current_keys())
        anykey = metric_results.latest_metric_results(self.ws, vids)
        out: dict[int, dict[str, dict[str, Any]]] = {}
        for c in cands:
            mine = (int(c["video_id"]), {0, int(c["triple_id"])})
            cur = [r for r in current if r["video_id"] == mine[0] and r["triple_id"] in mine[1]]
            old = {r["metric"] for r in anykey if r["video_id"] == mine[0] and r["triple_id"] in mine[1]}
            per: dict[str, dict[str, Any]] = {}
            for m in METRICS:
                rs_m = [r for r in cur if r["metric"] == m]
                oks = [r["value"] for r in rs_m if r["status"] == "ok" and r.get("value") is not None]
                if oks:
                    per[m] = {"status": "ok", "value": sum(oks) / len(oks)}
                elif rs_m:
                    per[m] = {"status": next((s for s in ("unavailable", "n/a", "error")
                                              if any(r["status"] == s for r in rs_m)), rs_m[0]["status"])}
                else:
                    per[m] = {"status": "stale" if m in old else "none"}
            out[int(c["triple_id"])] = per
        return out

    def decide_case(self, *, accepted: list[int], annotator: str, case_id: str | None = None,
                    triple_ids: list[int] | None = None, client_key: str | None = None) -> dict[str, Any]:
        """Accept these candidates of a case and reject the rest, as one action: one triple label event each,
        written as one batch (storage.labels.append_values), which one undo takes back whole. The case is named
        by its id (every candidate) or by its triple ids. Returns {"labelled", "accepted", "rejected",
        "item_ids", "case_id", "batch", "duplicate", "annotator"}."""
        annotator = require_annotator(annotator)
        try:
            acc = list(dict.fromkeys(int(i) for i in (accepted or [])))
            given = list(dict.fromkeys(int(i) for i in (triple_ids or [])))
        except (TypeError, ValueError):
            raise LabelError(f"triple ids must be whole numbers, got {accepted!r} / {triple_ids!r}") from None
        if case_id:
            try:
                image_id, prompt_id = bestof.parse_case_id(case_id)
            except ValueError as exc:
                raise LabelError(str(exc)) from None
            ids = [int(c["triple_id"]) for c in bestof.candidates(self.ws, image_id, prompt_id)]
            if not ids:
                raise LabelError(f"no case {case_id} in this workspace")
            stray = [i for i in given if i not in ids]
            if stray:
                raise LabelError(f"triple {stray[0]} is not a candidate of case {case_id}")
        elif given:
            ids = given
            where = bestof.case_of_triple(self.ws, ids[0])
            case_id = bestof.case_id(*where) if where else None
        else:
            raise LabelError("name the case (its id) or its candidates (their triple ids)")
        stray = [i for i in acc if i not in ids]
        if stray:
            raise LabelError(f"triple {stray[0]} is not one of the case's candidates")
        values = {i: ("accept" if i in acc else "reject") for i in ids}
        try:
            res = labels.append_values(self.ws, item_kind="triple", values=values, annotator=annotator,
                                       client_key=client_key or None)
        except ValueError as exc:  # an unknown triple id: say so, store nothing
            raise LabelError(str(exc)) from None
        return {"labelled": res["n"], "duplicate": res["duplicate"], "accepted": [i for i in ids if i in acc],
                "rejected": [i for i in ids if i not in acc], "item_ids": ids, "case_id": case_id,
                "annotator": annotator, "batch": res["session"]}
