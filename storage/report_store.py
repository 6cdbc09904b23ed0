"""The label and classifier-run reads of the benchmark runner, the dataset statistics and the split export.

The rest of what the reports read lives with its entity (triples, metric_results, taxonomy, prompts, images,
benchmark_sets, exports); the names re-exported below are the ones curation/stats.py still calls here.
"""
from __future__ import annotations

import json
from typing import Any

from .classifier_runs import predictions
from .db import Workspace
from .metric_results import latest_metric_results  # noqa: F401
from .prompts import prompt_texts  # noqa: F401
from .taxonomy import category_counts, uncategorised_counts  # noqa: F401
from .triples import triples_with_media as triples  # noqa: F401


def pair_judgements(ws: Workspace) -> list[dict[str, Any]]:
    """Current Compare-tab judgements (item_kind 'pair') with their payloads decoded."""
    rows = ws.query_dicts(
        "SELECT c.item_id, c.annotator, c.value, c.event_id, e.payload FROM current_labels c "
        "JOIN label_events e ON e.id = c.event_id WHERE c.item_kind = 'pair' ORDER BY c.event_id")
    out = []
    for r in rows:
        payload = r.pop("payload")
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except json.JSONDecodeError:
                payload = None
        if isinstance(payload, dict):
            r.update(payload)
            out.append(r)
    return out


def classifier_scores(ws: Workspace) -> dict[int, float]:
    """Image id -> score of the latest classifier run (storage.classifier_runs; empty before any run)."""
    return predictions(ws)
