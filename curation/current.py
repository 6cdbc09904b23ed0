"""Which stored metric results are current: the one rule every report, leaderboard, export, statistic and
queue filter reads, so no column mixes metric versions or backends.

A result is current when its (metric version, params hash) is the one this machine would write now; the
params hash covers the config and the backend id (metrics.registry.backend_keys). A metric that cannot be
computed here (its weights or endpoint are missing) keeps the key of its newest stored ok result of the
current metric version, so a workspace scored on a GPU machine still shows its GmeScore on a laptop; still
only one key per metric.
Results under any other key are stale: counted and shown as such, and `score` / `bench` re-score them.
"""
from __future__ import annotations

from typing import Any

from metrics.registry import METRICS, backend_keys, get_spec
from storage import Workspace, metric_results


def current_keys(ws: Workspace, configs: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """metric -> {"version", "params_hash", "backend_key", "key", "source": "this machine" | "stored"}."""
    here = backend_keys(ws.root)
    out: dict[str, dict[str, Any]] = {}
    for m in METRICS:
        spec = get_spec(m, (configs or {}).get(m))
        rec = {"version": spec.version, "params_hash": spec.params_hash(here.get(m, "")),
               "backend_key": here.get(m, ""), "source": "this machine"}
        if "unavailable" in rec["backend_key"].split("|"):
            stored = metric_results.newest_ok_key(ws, m, spec.version)
            if stored is not None:
                rec.update(version=stored["metric_version"], params_hash=stored["params_hash"],
                           backend_key=stored["backend"] or "", source="stored")
        rec["key"] = metric_results.result_key(m, rec["version"], rec["params_hash"])
        out[m] = rec
    return out


def key_list(current: dict[str, dict[str, Any]]) -> list[str]:
    return [c["key"] for c in current.values()]


def stale_counts(ws: Workspace, current: dict[str, dict[str, Any]] | None = None) -> dict[str, int]:
    """metric -> (video, triple) pairs whose results are all stale (an older version, config or backend)."""
    return metric_results.stale_counts(ws, key_list(current or current_keys(ws)))


__all__ = ["current_keys", "key_list", "stale_counts"]
