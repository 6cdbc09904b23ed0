"""The metrics by name: module, config, cache key, and what a scoring case holds.

The six InnoAds-Bench metrics (PAPER_METRICS), then the extras (EXTRA_METRICS: CLIPScore), which are scored
and reported under their own names and marked wherever they stand beside the six (`EXTRA_MARK`, `EXTRA_NOTE`);
the radar (the paper's Figure 9) and the Figure-3 metric panels draw the six only.

Each metric module declares its own NAME (key), DISPLAY (its name in reports), SHORT, SUMMARY, BACKENDS (the
backend roles that produce it), VERSION, REFERENCE and, for an extra, PAPER = False (default True); everything
else reads them from here."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .config import params_hash

PAPER_METRICS = ("motionx", "tsscore", "productscore", "aesscore", "gmescore", "crscore")   # the paper's six
EXTRA_METRICS = ("clipscore",)      # not one of the six: own name, own column, after them, never in the radar
METRICS = PAPER_METRICS + EXTRA_METRICS
EXTRA_MARK = "*"
EXTRA_NOTE = "not one of InnoAds-Bench's six metrics"
_MODULES = {"motionx": ("motionx", "MotionXConfig"), "tsscore": ("tsscore", "TSConfig"),
            "productscore": ("productscore", "ProductConfig"), "aesscore": ("aesscore", "AesConfig"),
            "gmescore": ("gmescore", "GmeConfig"), "crscore": ("crscore", "CRConfig"),
            "clipscore": ("clipscore", "CLIPScoreConfig")}


@dataclass
class Case:
    """What a reference-dependent metric scores a video against (one triple, or the video alone)."""
    triple_id: int = 0
    image_path: str | None = None
    prompt: str | None = None
    product: str | None = None
    workspace: str | None = None          # workspace root (MLLM config file lives there)
    shared: dict[str, Any] = field(default_factory=dict)   # per-case memo shared by metrics (product masks)
    _rgba: Any = None

    def _load(self) -> np.ndarray | None:
        if self._rgba is None and self.image_path:
            from media.files import load_image
            self._rgba = load_image(self.image_path, keep_alpha=True)
        return self._rgba

    @property
    def image(self) -> np.ndarray | None:
        """The reference image as RGB uint8 (alpha composited onto white when present), or None."""
        im = self._load()
        if im is None:
            return None
        if im.shape[2] == 4:
            a = im[..., 3:4].astype(np.float32) / 255.0
            return (im[..., :3].astype(np.float32) * a + 255.0 * (1 - a)).round().astype(np.uint8)
        return im

    @property
    def alpha(self) -> np.ndarray | None:
        im = self._load()
        if im is None or im.shape[2] != 4:
            return None
        a = im[..., 3]
        return a if (a < 250).any() else None


@dataclass(frozen=True)
class MetricSpec:
    name: str
    module: ModuleType
    config: Any

    @property
    def version(self) -> str:
        return self.module.VERSION

    @property
    def display(self) -> str:
        return self.module.DISPLAY

    @property
    def short(self) -> str:
        return self.module.SHORT

    @property
    def summary(self) -> str:
        return self.module.SUMMARY

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(self.module.BACKENDS)

    @property
    def paper(self) -> bool:
        """One of InnoAds-Bench's six metrics (a module without PAPER is)."""
        return bool(getattr(self.module, "PAPER", True))

    @property
    def per_triple(self) -> bool:
        return bool(self.module.REFERENCE)

    def requests(self) -> list:
        return self.module.requests(self.config)

    def sinks(self) -> dict:
        """Frame sinks the decoder streams into (metrics that consume every frame in order); fresh per video."""
        make = getattr(self.module, "stream", None)
        return make(self.config) if make else {}

    def params_hash(self, backend_key: str = "") -> str:
        return params_hash(self.config, backend_key)

    def run(self, video, case: Case):
        return self.module.run(video, case, self.config)


def get_spec(name: str, config: Any = None) -> MetricSpec:
    if name not in _MODULES:
        raise KeyError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    mod_name, cfg_name = _MODULES[name]
    mod = importlib.import_module(f"{__package__}.{mod_name}")
    return MetricSpec(name, mod, config if config is not None else getattr(mod, cfg_name)())


def display_names() -> dict[str, str]:
    """metric key -> its name in reports (the paper's for the six), in the benchmark's order, extras last."""
    return {m: get_spec(m).display for m in METRICS}


def short_names() -> dict[str, str]:
    """metric key -> the short name scorecards and charts use, in the benchmark's order, extras last."""
    return {m: get_spec(m).short for m in METRICS}


def is_paper(name: str) -> bool:
    """Whether the metric is one of InnoAds-Bench's six (CLIPScore is not)."""
    return name in PAPER_METRICS


def marked(name: str, label: str) -> str:
    """A metric's label as it stands beside the six: extras carry EXTRA_MARK ("CLIPScore*")."""
    return label if is_paper(name) else f"{label}{EXTRA_MARK}"


def summaries() -> dict[str, str]:
    return {m: get_spec(m).summary for m in METRICS}


def parse_metrics(text: str | None) -> list[str]:
    if not text:
        return list(METRICS)
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in _MODULES]
    if bad:
        raise ValueError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def backend_keys(workspace: Any = None) -> dict[str, str]:
    """Which backend each metric would use now, from the cheap status records (no model is loaded).
    Part of the cache key: installing weights (a different backend) re-scores."""
    try:
        from .backends import backend_status
        recs = backend_status(workspace)
    except Exception as exc:  # backends package broken: metrics report it themselves
        return {m: f"status-error:{type(exc).__name__}" for m in METRICS}
    by = {r["backend"]: r for r in recs}

    def name(key: str) -> str:
        r = by.get(key)
        return f"{r['name']}:{r.get('version')}" if r and r.get("available") else "unavailable"

    def role(r: str, spec: MetricSpec) -> str:
        if r == "embedder":           # ProductScore's embedder: the first available in its preference order
            from .productscore import calibration_key
            return next((name(k) for k in ("text_video", "dino:vit_small_patch14_dinov2", "clip:ViT-B-32")
                         if by.get(k, {}).get("available")), name("classical")) + f"; {calibration_key()}"
        if r == "text_image":         # CLIPScore: the CLIP embedder of its configured architecture
            return name(f"clip:{spec.config.arch}")
        return name(r) if r in by else r    # a library rather than a loadable backend (OpenCV's flow)

    specs = {m: get_spec(m) for m in METRICS}
    return {m: "|".join(role(r, s) for r in s.backends) for m, s in specs.items()}
