"""Selection of the items to export and their train / val / test split.

Selection (ExportOptions): by label state (accepted by default), metric thresholds and the classifier score.
Splitting: stratified by category, group-aware and deterministic by seed.

- Groups: all triples of one source image, of one video, and of one near-duplicate group (images.dup_group)
  are joined (union-find), so none of them straddles two splits.
- Stratification: within each category, groups are shuffled with the seed, sorted largest first (a stable
  sort, so equal sizes keep the seeded order), and each goes to the split whose count is furthest below its
  target (ratio x category size; ties go to the split with the larger ratio). With groups of one item this
  lands every split within one item of its target per category; large groups can overshoot by at most their
  size minus one. Ties between splits go to the one furthest below its target over all categories, so
  small categories do not all favour the same split. A group whose triples span categories counts under its
  most common category.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .union_find import UnionFind

SPLITS = ("train", "val", "test")
LABEL_STATES = ("accepted", "not_rejected", "any")


@dataclass
class ExportOptions:
    label_state: str = "accepted"              # accepted | not_rejected (accepted or unlabelled) | any
    exclude_bad_images: bool = True            # drop triples whose source image is labelled bad
    metric_min: dict[str, float] = field(default_factory=dict)   # metric -> minimum value (0-1)
    missing_metric: str = "fail"               # a thresholded metric without an ok value: fail | pass (n/a passes)
    classifier_min: float | None = None        # minimum classifier score of the source image
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    benchmark_set: str | None = None           # only the triples of this set (None: all)
    formats: tuple[str, ...] = ("parquet", "jsonl", "csv", "webdataset")
    media: str = "link"                        # link (hard link, copy across file systems) | copy
    shard_size: int = 1000                     # WebDataset samples per shard
    shard_bytes: int = 1 << 30                 # ... and at most this many bytes per shard
    export_root: str | None = None             # an extra allowed root besides the workspace's exports/

    def validate(self) -> None:
        if self.label_state not in LABEL_STATES:
            raise ValueError(f"label_state must be one of {LABEL_STATES}, got {self.label_state!r}")
        if self.missing_metric not in ("fail", "pass"):
            raise ValueError("missing_metric must be 'fail' or 'pass'")
        r = tuple(float(x) for x in self.ratios)
        if len(r) != 3 or any(x < 0 for x in r) or sum(r) <= 0:
            raise ValueError(f"ratios must be three non-negative numbers, got {self.ratios}")
        self.ratios = tuple(x / sum(r) for x in r)  # type: ignore[assignment]
        from .stats import METRIC_NAMES

        bad = [m for m in self.metric_min if m not in METRIC_NAMES]
        if bad:
            raise ValueError(f"unknown metrics in thresholds: {bad}; choose from {', '.join(METRIC_NAMES)}")
        unknown = [f for f in self.formats if f not in ("parquet", "jsonl", "csv", "webdataset")]
        if unknown:
            raise ValueError(f"unknown formats {unknown}")
        if self.media not in ("link", "copy"):
            raise ValueError("media must be 'link' or 'copy'")

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def select(records: list[dict[str, Any]], opts: ExportOptions,
           classifier: dict[int, float] | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records that pass the filters, and how many each filter dropped (in the order applied)."""
    dropped: Counter = Counter()
    kept = []
    for r in records:
        d = r["decision"]
        if opts.label_state == "accepted" and d != 1:
            dropped["not accepted" if d is None else "rejected"] += 1
            continue
        if opts.label_state == "not_rejected" and d == 0:
            dropped["rejected"] += 1
            continue
        if opts.exclude_bad_images and r.get("image_decision") == 0:
            dropped["image labelled bad"] += 1
            continue
        fail = None
        for m, lo in opts.metric_min.items():
            res = r["metrics"].get(m)
            if res is not None and res["status"] == "n/a":
                continue
            if res is None or res["status"] != "ok" or res["value"] is None:
                if opts.missing_metric == "fail":
                    fail = f"{m} missing"
                    break
                continue
            if float(res["value"]) < lo:
                fail = f"{m} < {lo:g}"
                break
        if fail:
            dropped[fail] += 1
            continue
        if opts.classifier_min is not None:
            s = _image_score(r, classifier or {})
            if s is None or s < opts.classifier_min:
                dropped["classifier score below minimum" if s is not None else "no classifier score"] += 1
                continue
        kept.append(r)
    return kept, dict(dropped)


def _image_score(r: dict[str, Any], classifier: dict[int, float]) -> float | None:
    """A designer's image label outranks the classifier: good = 1, bad = 0; else the newest prediction."""
    if r.get("image_decision") == 1:
        return 1.0
    if r.get("image_decision") == 0:
        return 0.0
    if r["image_id"] is None:
        return None
    return classifier.get(int(r["image_id"]))


def group_ids(records: list[dict[str, Any]]) -> dict[int, str]:
    """triple id -> group key: triples sharing a source image, a video or a near-duplicate group are joined."""
    uf = UnionFind(key=repr)
    for r in records:
        t = ("t", int(r["triple_id"]))
        uf.find(t)
        uf.union(t, ("v", int(r["video_id"])))
        if r["image_id"] is not None:
            uf.union(t, ("i", int(r["image_id"])))
        if r.get("dup_group") is not None:
            uf.union(t, ("d", int(r["dup_group"])))
    return {int(r["triple_id"]): "%s%d" % uf.find(("t", int(r["triple_id"]))) for r in records}


def assign_splits(records: list[dict[str, Any]], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> dict[int, str]:
    """triple id -> 'train' | 'val' | 'test' (see the module docstring)."""
    total = float(sum(ratios))
    ratios = tuple(x / total for x in ratios)
    gid = group_ids(records)
    members: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        members[gid[int(r["triple_id"])]].append(r)
    by_cat: dict[Any, list[str]] = defaultdict(list)
    for g, rs in members.items():
        cat = Counter(r["category_id"] if r["category_id"] is not None else -1 for r in rs).most_common()
        cat = sorted(cat, key=lambda x: (-x[1], x[0]))[0][0]
        by_cat[cat].append(g)
    rng = random.Random(seed)
    out: dict[int, str] = {}
    pref = [i for i in sorted(range(3), key=lambda i: -ratios[i]) if ratios[i] > 0]
    gtarget = [ratios[i] * len(records) for i in range(3)]
    gcount = [0, 0, 0]
    for cat in sorted(by_cat):
        groups = sorted(by_cat[cat])
        rng.shuffle(groups)
        groups.sort(key=lambda g: -len(members[g]))
        n = sum(len(members[g]) for g in groups)
        target = [ratios[i] * n for i in range(3)]
        count = [0, 0, 0]
        for g in groups:
            size = len(members[g])
            # the split furthest below its target in this category; ties → the split furthest below its
            # target over all categories (so small categories do not all favour one split), then larger ratio
            best = max(pref, key=lambda i: (round(target[i] - count[i], 9), gtarget[i] - gcount[i], ratios[i], -i))
            count[best] += size
            gcount[best] += size
            for r in members[g]:
                out[int(r["triple_id"])] = SPLITS[best]
    return out
