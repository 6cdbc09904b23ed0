"""Selection and the train/val/test split on a fixture with known labels, groups and near-duplicates."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from curation.splits import ExportOptions, assign_splits, group_ids, select
from curation.stats import triple_records


def _records(fx):
    with fx.open() as ws:
        return triple_records(ws)


def test_default_selection_is_accepted_without_bad_images(fx):
    recs = _records(fx)
    kept, dropped = select(recs, ExportOptions())
    expected = {t["triple_id"] for t in fx.triples
                if t["triple_id"] in fx.accepted and t["image_id"] not in fx.bad_images}
    assert {r["triple_id"] for r in kept} == expected
    assert dropped["rejected"] == len(fx.rejected)
    kept_any, _ = select(recs, ExportOptions(label_state="any", exclude_bad_images=False))
    assert len(kept_any) == len(fx.triples)


def test_metric_thresholds_and_na(fx):
    recs = _records(fx)
    kept, dropped = select(recs, ExportOptions(label_state="any", metric_min={"motionx": 0.6}))
    assert kept and all(r["metrics"]["motionx"]["value"] >= 0.6 for r in kept)
    assert any(k.startswith("motionx <") for k in dropped)
    # n/a passes a threshold; an unavailable metric fails unless missing_metric="pass"
    kept_ts, _ = select(recs, ExportOptions(label_state="any", exclude_bad_images=False, metric_min={"tsscore": 0.0}))
    assert len(kept_ts) == len(recs)
    assert select(recs, ExportOptions(label_state="any", metric_min={"aesscore": 0.1}))[0] == []
    kept_pass, _ = select(recs, ExportOptions(label_state="any", exclude_bad_images=False,
                                              metric_min={"aesscore": 0.1}, missing_metric="pass"))
    assert len(kept_pass) == len(recs)


def test_classifier_threshold(fx):
    recs = _records(fx)
    scores = {r["image_id"]: (0.9 if r["image_id"] % 2 else 0.1) for r in recs}
    kept, dropped = select(recs, ExportOptions(label_state="any", exclude_bad_images=False, classifier_min=0.5),
                           scores)
    assert kept and all(r["image_id"] % 2 == 1 or r["image_decision"] == 1 for r in kept)
    assert sum(dropped.values()) == len(recs) - len(kept)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_is_stratified_group_aware_and_deterministic(fx, seed):
    recs, _ = select(_records(fx), ExportOptions(label_state="any", exclude_bad_images=False))
    ratios = (0.7, 0.15, 0.15)
    split = assign_splits(recs, ratios, seed)
    assert set(split) == {r["triple_id"] for r in recs}
    # no group straddles: same source image, same video, same near-duplicate group -> one split
    for key in ("image_id", "video_id"):
        where = defaultdict(set)
        for r in recs:
            where[r[key]].add(split[r["triple_id"]])
        assert all(len(s) == 1 for s in where.values()), key
    image_split = {r["image_id"]: split[r["triple_id"]] for r in recs}
    for a, b in fx.dup_pairs:
        assert image_split[a] == image_split[b], (a, b)
    # stratified: every category within one item of its target per split (groups are mostly small)
    gid = group_ids(recs)
    per_group_cat = {}
    for r in recs:
        per_group_cat.setdefault(gid[r["triple_id"]], Counter())[r["category_id"]] += 1
    home = {g: c.most_common(1)[0][0] for g, c in per_group_cat.items()}
    by_cat = defaultdict(Counter)
    for r in recs:
        by_cat[home[gid[r["triple_id"]]]][split[r["triple_id"]]] += 1
    for cat, c in by_cat.items():
        n = sum(c.values())
        for s, ratio in zip(("train", "val", "test"), ratios):
            assert abs(c[s] - ratio * n) <= 1.0 + 1e-9, (cat, s, dict(c), n)
    # deterministic by seed
    assert assign_splits(recs, ratios, seed) == split


def test_different_seeds_differ_and_zero_ratio_split_stays_empty(fx):
    recs, _ = select(_records(fx), ExportOptions(label_state="any", exclude_bad_images=False))
    a, b = assign_splits(recs, (0.6, 0.2, 0.2), 0), assign_splits(recs, (0.6, 0.2, 0.2), 1)
    assert a != b
    c = assign_splits(recs, (0.9, 0.1, 0.0), 0)
    assert "test" not in set(c.values())


def test_union_of_groups():
    recs = [{"triple_id": 1, "video_id": 10, "image_id": 100, "dup_group": None, "category_id": 1},
            {"triple_id": 2, "video_id": 11, "image_id": 100, "dup_group": None, "category_id": 1},
            {"triple_id": 3, "video_id": 12, "image_id": 101, "dup_group": 5, "category_id": 1},
            {"triple_id": 4, "video_id": 13, "image_id": 102, "dup_group": 5, "category_id": 2},
            {"triple_id": 5, "video_id": 13, "image_id": 103, "dup_group": None, "category_id": 2},
            {"triple_id": 6, "video_id": 14, "image_id": 104, "dup_group": None, "category_id": 2}]
    g = group_ids(recs)
    assert g[1] == g[2] and g[3] == g[4] == g[5] and len({g[1], g[3], g[6]}) == 3
