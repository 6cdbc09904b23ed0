"""Selection of the items to export and their train / val / test split.

Selection (ExportOptions): by label state (accepted by default; a triple only a rule's label decided counts as
decided that way, or, with rule_labels="ignore", as not labelled), metric thresholds and the classifier score.
`kind="images"` exports images instead of triples (curation.export_images); the same splitter groups them by
near-duplicate group.
Splitting: stratified by category, group-aware and deterministic by seed.

- Groups: all triples of one source image, of one video, and of one near-duplicate group (images.dup_group)
  are joined (union-find), so none of them straddles two splits.
- Sizes: the number of triples per split is decided over the whole selection first (largest-remainder
  apportionment to the ratios, `split_sizes`); every split with a non-zero ratio gets at least one triple,
  and at least one group, whenever there are as many groups as such splits. With fewer, the smallest
  ratios stay empty (`empty_splits` names them; the export card says so).
- Stratification: each category's triples are apportioned the same way, then single triples of target
  move between categories until the totals match (each where the giving split is most above its quota and
  the receiving one most below; ties in the seeded category order), so every category is within about one
  triple of its quota per split. Within a category, groups are shuffled with the seed, sorted largest first
  (a stable sort, so equal sizes keep the seeded order), and each goes to the split furthest below its
  target; large groups can overshoot by at most their size minus one. A group whose triples span
  categories counts under its most common category.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .union_find import UnionFind

SPLITS = ("train", "val", "test")
LABEL_STATES = ("accepted", "not_rejected", "any")
RULE_LABELS = ("use", "ignore")
KINDS = ("triples", "images")


@dataclass
class ExportOptions:
    kind: str = "triples"                      # triples | images (one row per image; accepted means "good")
    label_state: str = "accepted"              # accepted | not_rejected (accepted or unlabelled) | any
    exclude_bad_images: bool = True            # drop triples whose source image is labelled bad
    # a triple decided by a rule's label (`calibrate --apply`; only where no person labelled it): use that decision
    # as the label rule gives it, or ignore it (the triple counts as not labelled)
    rule_labels: str = "use"
    metric_min: dict[str, float] = field(default_factory=dict)   # metric -> minimum value (0-1)
    missing_metric: str = "fail"               # a thresholded metric without an ok value: fail | pass (n/a passes)
    classifier_min: float | None = None        # minimum classifier score of the source image
    passed_filters: bool = False               # images only: no heuristic filter failed (and one ran)
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    benchmark_set: str | None = None           # only the triples of this set (None: all)
    formats: tuple[str, ...] = ("parquet", "jsonl", "csv", "webdataset")
    media: str = "link"                        # link (hard link, copy across file systems) | copy
    shard_size: int = 1000                     # WebDataset samples per shard
    shard_bytes: int = 1 << 30                 # ... and at most this many bytes per shard
    export_root: str | None = None             # an extra allowed root besides the workspace's exports/

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "images" and (self.metric_min or self.benchmark_set is not None):
            raise ValueError("metric thresholds and benchmark sets select triples, not images")
        if self.passed_filters and self.kind != "images":
            raise ValueError("passed_filters selects images; use it with kind='images'")
        if self.label_state not in LABEL_STATES:
            raise ValueError(f"label_state must be one of {LABEL_STATES}, got {self.label_state!r}")
        if self.rule_labels not in RULE_LABELS:
            raise ValueError(f"rule_labels must be one of {RULE_LABELS}, got {self.rule_labels!r}")
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
        d = None if opts.rule_labels == "ignore" and r.get("decided_by_rule") else r["decision"]
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
    """triple id -> group key: triples sharing a source image, a video or a near-duplicate group are joined.
    An image export passes its images as records without a video (triple_id = image id)."""
    uf = UnionFind(key=repr)
    for r in records:
        t = ("t", int(r["triple_id"]))
        uf.find(t)
        if r.get("video_id") is not None:
            uf.union(t, ("v", int(r["video_id"])))
        if r["image_id"] is not None:
            uf.union(t, ("i", int(r["image_id"])))
        if r.get("dup_group") is not None:
            uf.union(t, ("d", int(r["dup_group"])))
    return {int(r["triple_id"]): "%s%d" % uf.find(("t", int(r["triple_id"]))) for r in records}


def _apportion(n: int, ratios: tuple[float, ...]) -> list[int]:
    """Largest-remainder (Hamilton) apportionment of n to the ratios; ties go to the larger ratio."""
    quota = [round(r * n, 9) for r in ratios]   # rounded so 0.8 * 1000 is not 799.99...
    count = [int(q) for q in quota]
    order = sorted(range(len(ratios)), key=lambda i: (count[i] - quota[i], -ratios[i], i))
    for i in order[:n - sum(count)]:
        count[i] += 1
    return count


def _firsts(ratios: tuple[float, ...], n: int) -> list[int]:
    """The splits with a non-zero ratio, larger ratio first, as many as n can give one each."""
    return sorted((i for i in range(len(ratios)) if ratios[i] > 0), key=lambda i: (-ratios[i], i))[:n]


def split_sizes(n: int, ratios: tuple[float, float, float]) -> list[int]:
    """Target triples per split over the whole selection: Hamilton apportionment, then every split with a
    non-zero ratio gets at least one (the larger ratios first when n is too small for all): rounding alone
    can leave val and test at 0."""
    count = _apportion(n, ratios)
    need = _firsts(ratios, n)
    for i in need:
        if count[i] == 0:
            # from the split most above its quota among those that can spare one
            donor = max((j for j in range(3) if count[j] > (j in need)),
                        key=lambda j: (count[j] - ratios[j] * n, -j))
            count[donor] -= 1
            count[i] = 1
    return count


def empty_splits(split_of: dict[int, str], ratios: tuple[float, float, float]) -> list[str]:
    """The splits asked for (non-zero ratio) that got no triple. assign_splits leaves one empty only when
    there are fewer groups than such splits; the export says so in its card."""
    used = set(split_of.values())
    return [s for s, r in zip(SPLITS, ratios) if r > 0 and s not in used]


def assign_splits(records: list[dict[str, Any]], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> dict[int, str]:
    """triple id -> 'train' | 'val' | 'test' (see the module docstring)."""
    total = float(sum(ratios))
    ratios = tuple(x / total for x in ratios)
    gid = group_ids(records)
    members: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        members[gid[int(r["triple_id"])]].append(r)
    size = {g: len(rs) for g, rs in members.items()}
    by_cat: dict[Any, list[str]] = defaultdict(list)
    for g, rs in members.items():
        cat = Counter(r["category_id"] if r["category_id"] is not None else -1 for r in rs).most_common()
        cat = sorted(cat, key=lambda x: (-x[1], x[0]))[0][0]
        by_cat[cat].append(g)
    rng = random.Random(seed)
    cats = sorted(by_cat)
    rng.shuffle(cats)       # the seeded order breaks ties between categories below
    n_cat = {c: sum(size[g] for g in by_cat[c]) for c in cats}
    want = split_sizes(len(records), ratios)
    target = {c: _apportion(n_cat[c], ratios) for c in cats}
    while True:
        have = [sum(target[c][i] for c in cats) for i in range(3)]
        if have == want:
            break
        src = max(range(3), key=lambda i: have[i] - want[i])
        dst = max(range(3), key=lambda i: want[i] - have[i])

        def gain(c: Any) -> tuple:
            # where src is most above its quota and dst most below; then a move that does not empty src
            # (keeps each category in train when possible)
            n, t = n_cat[c], target[c]
            return round((t[src] - ratios[src] * n) - (t[dst] - ratios[dst] * n), 9), t[src] > 1

        c = max((c for c in cats if target[c][src]), key=gain)
        target[c][src] -= 1
        target[c][dst] += 1
    asked = [i for i in range(3) if ratios[i] > 0]
    where: dict[str, int] = {}
    got = [0, 0, 0]
    for cat in sorted(cats):
        groups = sorted(by_cat[cat])
        rng.shuffle(groups)
        groups.sort(key=lambda g: -size[g])
        count = [0, 0, 0]
        for g in groups:
            # the split furthest below its target in this category; ties → furthest below overall
            best = max(asked, key=lambda i: (target[cat][i] - count[i], want[i] - got[i], ratios[i], -i))
            count[best] += size[g]
            got[best] += size[g]
            where[g] = best
    # a large group can fill a small split's target in another one's place: every asked split still gets
    # a group when there are enough (larger ratios first when not), from the split holding the most
    need = _firsts(ratios, len(where))
    for i in need:
        held = Counter(where.values())
        if not held[i]:
            donor = max((j for j in range(3) if held[j] > (j in need)), key=lambda j: held[j])
            where[min((g for g in where if where[g] == donor), key=lambda g: (size[g], g))] = i
    return {int(r["triple_id"]): SPLITS[where[g]] for g, rs in members.items() for r in rs}
