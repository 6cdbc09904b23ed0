"""Shared pieces of every metric: the frozen-config hash, the result record, the status values.

A metric is a pure function ``compute(inputs, cfg) -> MetricOutput``. Its cache key in the store is
``(name, VERSION, params_hash(cfg), video_id, triple_id)``: bumping a module's ``VERSION`` or changing any
field of its config dataclass re-scores; everything else is served from the store.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, NA, UNAVAILABLE, ERROR = "ok", "n/a", "unavailable", "error"
STATUSES = (OK, NA, UNAVAILABLE, ERROR)


def params_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON data (tuples -> lists), field order preserved."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=_jsonable))


def params_hash(cfg: Any, *extra: Any) -> str:
    """12 hex chars of sha256 over the config's canonical JSON (+ anything else the result depends on,
    e.g. the embedding backend's model id)."""
    payload = json.dumps([type(cfg).__name__, params_dict(cfg), list(extra)], sort_keys=True,
                         separators=(",", ":"), default=_jsonable)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def clean(o: Any, ndigits: int = 5) -> Any:
    """Traces as compact JSON: numpy -> Python, floats rounded, NaN/inf -> None."""
    if isinstance(o, dict):
        return {str(k): clean(v, ndigits) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v, ndigits) for v in o]
    if isinstance(o, np.ndarray):
        return clean(o.tolist(), ndigits)
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return round(f, ndigits) if math.isfinite(f) else None
    return o


@dataclass
class MetricOutput:
    """What a metric returns. ``value`` is in [0, 1] when status is ok, else None (with a reason)."""
    value: float | None
    status: str = OK
    reason: str | None = None
    backend: str | None = None
    trace: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.status != OK:
            self.value = None
        elif self.value is None or not math.isfinite(float(self.value)):
            raise ValueError("an ok result needs a finite value")
        else:
            self.value = float(min(1.0, max(0.0, float(self.value))))

    @classmethod
    def na(cls, reason: str, **kw: Any) -> "MetricOutput":
        return cls(None, NA, reason, **kw)

    @classmethod
    def unavailable(cls, reason: str, **kw: Any) -> "MetricOutput":
        return cls(None, UNAVAILABLE, reason, **kw)

    @classmethod
    def error(cls, reason: str, **kw: Any) -> "MetricOutput":
        return cls(None, ERROR, reason, **kw)


def stamp_frames(out: MetricOutput, sampled: Any) -> MetricOutput:
    """Give each per-frame trace entry the source frame index and time of the sample it came from, so the
    overlays can seek to it (the metric itself only sees the sampled frames)."""
    if out.trace and "frames" in out.trace:
        for fr, idx, t in zip(out.trace["frames"], sampled.indices.tolist(), sampled.times.tolist()):
            fr["index"], fr["t"] = idx, round(t, 4)
    return out
