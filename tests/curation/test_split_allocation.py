"""Split sizes decided over the whole selection (largest remainder, at least one per asked split), then
spread across categories; small sets no longer land all in train, and an unavoidable empty split is named."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from curation.export_card import dataset_card
from curation.splits import SPLITS, ExportOptions, assign_splits, empty_splits, split_sizes
from curation.stats import METRIC_NAMES


def _records(category_sizes, dup_of=lambda t: None):
    """One triple per image and video (groups of one unless dup_of joins them), categories as given."""
    recs, t = [], 0
    for cat, n in enumerate(category_sizes):
        for _ in range(n):
            recs.append({"triple_id": t, "video_id": 1000 + t, "image_id": 5000 + t, "dup_group": dup_of(t),
                         "category_id": cat})
            t += 1
    return recs


def _per_split(split):
    c = Counter(split.values())
    return [c[s] for s in SPLITS]


def test_split_sizes_by_hand():
    # 12 x (0.8, 0.1, 0.1) = 9.6 / 1.2 / 1.2: floors 9/1/1, the remaining one to the largest remainder (train)
    assert split_sizes(12, (0.8, 0.1, 0.1)) == [10, 1, 1]
    assert split_sizes(1000, (0.8, 0.1, 0.1)) == [800, 100, 100]
    # 5 -> 4/0.5/0.5: floors 4/0/0, the remaining one to val (tie, first); test takes one from train
    assert split_sizes(5, (0.8, 0.1, 0.1)) == [3, 1, 1]
    assert split_sizes(2, (0.8, 0.1, 0.1)) == [1, 1, 0]       # too few: the smallest ratio stays empty
    assert split_sizes(3, (0.9, 0.1, 0.0)) == [2, 1, 0]       # a zero ratio gets nothing
    assert split_sizes(0, (0.8, 0.1, 0.1)) == [0, 0, 0]


@pytest.mark.parametrize("seed", range(5))
def test_twelve_items_in_three_categories(seed):
    split = assign_splits(_records([4, 4, 4]), (0.8, 0.1, 0.1), seed)
    assert _per_split(split) == [10, 1, 1]
    by_cat = defaultdict(set)
    for r in _records([4, 4, 4]):
        by_cat[r["category_id"]].add(split[r["triple_id"]])
    assert all("train" in s for s in by_cat.values())


@pytest.mark.parametrize("sizes", [[1] * 12, [6, 3, 2, 1], [5, 5, 1, 1]])
def test_small_uneven_categories_all_in_train(sizes):
    for seed in range(10):
        recs = _records(sizes)
        split = assign_splits(recs, (0.8, 0.1, 0.1), seed)
        assert _per_split(split) == [10, 1, 1], (sizes, seed)
        if len(sizes) < 12:       # 12 categories of one: two of them must give up train
            assert {r["category_id"] for r in recs if split[r["triple_id"]] == "train"} == set(range(len(sizes)))


def test_thousand_items_exact_and_stratified():
    sizes = [400, 250, 150, 100, 60, 30, 10]
    recs = _records(sizes)
    split = assign_splits(recs, (0.8, 0.1, 0.1), 3)
    assert _per_split(split) == [800, 100, 100]
    per_cat = defaultdict(Counter)
    for r in recs:
        per_cat[r["category_id"]][split[r["triple_id"]]] += 1
    for cat, n in enumerate(sizes):
        for s, ratio in zip(SPLITS, (0.8, 0.1, 0.1)):
            assert abs(per_cat[cat][s] - ratio * n) < 1, (cat, s, dict(per_cat[cat]))


def test_near_duplicate_groups_never_split():
    # 60 triples in 20 near-duplicate groups of three, spread over two categories
    recs = _records([30, 30], dup_of=lambda t: t // 3)
    for seed in range(5):
        split = assign_splits(recs, (0.7, 0.15, 0.15), seed)
        where = defaultdict(set)
        for r in recs:
            where[r["dup_group"]].add(split[r["triple_id"]])
        assert all(len(s) == 1 for s in where.values())
        assert all(_per_split(split))
    # three groups of four: each split gets one group, although 0.1 x 12 rounds to less than a group
    split = assign_splits(_records([12], dup_of=lambda t: t // 4), (0.8, 0.1, 0.1), 0)
    assert _per_split(split) == [4, 4, 4]


def test_seed_reproducible_and_matters():
    recs = _records([80, 60, 40, 20])
    assert assign_splits(recs, (0.8, 0.1, 0.1), 5) == assign_splits(recs, (0.8, 0.1, 0.1), 5)
    assert assign_splits(recs, (0.8, 0.1, 0.1), 5) != assign_splits(recs, (0.8, 0.1, 0.1), 6)


def test_too_few_items_leave_named_splits_empty():
    split = assign_splits(_records([1, 1]), (0.8, 0.1, 0.1), 0)
    assert _per_split(split) == [1, 1, 0]
    assert empty_splits(split, (0.8, 0.1, 0.1)) == ["test"]
    assert empty_splits(assign_splits(_records([1]), (0.8, 0.1, 0.1), 0), (0.8, 0.1, 0.1)) == ["val", "test"]
    assert empty_splits(assign_splits(_records([1]), (0.9, 0.1, 0.0), 0), (0.9, 0.1, 0.0)) == ["val"]
    assert empty_splits(assign_splits(_records([2, 1]), (0.8, 0.1, 0.1), 0), (0.8, 0.1, 0.1)) == []


def _card(split: dict[int, str]) -> str:
    rows = [{"triple_id": t, "split": s, "group": f"g{t}", "labels": [],
             "metrics": {m: {"value": None, "status": "missing", "version": None} for m in METRIC_NAMES}}
            for t, s in sorted(split.items())]
    per = Counter(split.values())
    counts = {"selected": len(rows), "candidates": len(rows), "dropped": {}, "categories": {},
              "splits": {s: per[s] for s in SPLITS}, "groups": {s: per[s] for s in SPLITS},
              "labels": {"unlabelled": len(rows)}}
    opts = ExportOptions()
    opts.validate()
    return dataset_card(rows, counts, opts, {s: [] for s in SPLITS}, [{"decision": None} for _ in rows])


def test_card_names_the_empty_split():
    card = _card(assign_splits(_records([1, 1]), (0.8, 0.1, 0.1), 0))
    assert "3 splits asked, 2 triple group(s)" in card and "test is empty" in card
    assert "splits asked" not in _card(assign_splits(_records([2, 1]), (0.8, 0.1, 0.1), 0))
