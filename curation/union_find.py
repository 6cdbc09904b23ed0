"""Disjoint sets (union-find) for grouping: near-duplicate images (curation.duplicates), triples that share
a source image, a video or a duplicate group (curation.splits)."""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any


class UnionFind:
    """Sets of hashable items, each named by its root: the smallest of its items by `key` (the items
    themselves when None), so the name of a set does not depend on the order of the unions."""

    def __init__(self, key: Callable[[Any], Any] | None = None) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.key = key

    def find(self, x: Hashable) -> Hashable:
        """The root of x's set (x alone is a set of its own), compressing the path to it."""
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb), key=self.key)
            self.parent[hi] = lo
