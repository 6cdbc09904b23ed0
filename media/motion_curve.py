"""The motion curve of a MotionX trace, drawn for people: the series read from the trace (`motion_series`) and
an SVG (`motion_svg`) of how fast the picture moves, on an absolute scale (% of the frame's long side per
second) with MotionX's noise floor drawn, and the stretches that count as motion shaded."""
from __future__ import annotations

from typing import Any

import numpy as np

# The scale never zooms in further than this many noise floors: a near-static video then draws as a flat
# line well under the floor instead of being stretched to fill the plot (its noise looked like motion).
MIN_TOP_FLOORS = 2.5


def motion_series(trace: dict[str, Any] | None) -> dict[str, Any] | None:
    """The curve's data from a MotionX trace (tolerant of older traces' key spellings): per pair of analysis
    samples the mean speed and the smoothed speed of the fastest-moving tenth of the picture (fractions of
    the long side per second; absent from traces before the noise floor), the relative energy E~ and its
    threshold tau, the active mask, the time steps and the source frame of each pair."""
    if not isinstance(trace, dict):
        return None

    def pick(*names: str) -> Any:
        for n in names:
            if n in trace and trace[n] is not None:
                return trace[n]
        return None

    e = pick("E", "energy", "E_t", "e")
    es = pick("E_smooth_norm", "E_smooth", "E_tilde", "smoothed", "E_s", "e_smooth")
    if e is None and es is None:
        return None
    tau = pick("tau", "threshold")
    e = [float(x) for x in (e or [])]
    es = [float(x) for x in (es or [])]
    if "E_smooth_norm" in trace and e and es and max(e) > 0:
        # E~ is normalized by the video's 95th percentile (and tau with it): draw E_t on the same scale
        k = max(es) / max(e) if max(es) > 0 else 1.0
        e = [x * k for x in e]

    def floats(name: str) -> list[float] | None:
        v = trace.get(name)
        return [float(x) for x in v] if isinstance(v, list) and all(x is not None for x in v) else None

    floor = trace.get("noise_floor")
    return {"E": e, "E_smooth": es, "tau": float(tau) if tau is not None else None,
            "active": [bool(x) for x in (pick("active", "active_mask") or [])], "times": pick("times", "t"),
            "R": pick("R", "activation_ratio"), "A": pick("A", "amplitude"), "S": pick("S", "smoothness"),
            "speed": floats("speed"), "floor_speed": floats("q90_speed"),
            "noise_floor": float(floor) if floor is not None else None, "dt": floats("dt"),
            "index": [int(x) for x in trace["index"]] if isinstance(trace.get("index"), list) else None}


def absolute(series: dict[str, Any]) -> bool:
    """Whether the series can be drawn on the absolute scale (a trace with speeds and the noise floor)."""
    return bool(series.get("floor_speed")) and series.get("noise_floor") is not None


def motion_svg(series: dict[str, Any], n_frames: int, width: int = 720, height: int = 190) -> str:
    """The curve as an SVG. Absolute (current traces): the fastest-moving tenth's smoothed speed (blue; what
    the noise floor is compared with), the whole picture's mean speed (grey) and the noise floor (dashed),
    in % of the frame per second. Older traces: E_t, E~_t and tau on the video's own relative scale. Each x
    unit is one pair of analysis samples; a point's data-frame (and the svg's data-index) is the source frame
    it shows."""
    act = series["active"]
    if absolute(series):
        main, faint = series["floor_speed"], series.get("speed") or []
        level, unit = series["noise_floor"], "%/s"
        level_label = f"noise floor {100 * level:.0f}%/s"
    else:
        main, faint, level, unit = series["E_smooth"], series["E"], series["tau"], ""
        level_label = "" if level is None else f"τ = {level:.3g}"
    n = max(len(main), len(faint), 1)
    pad_l, pad_r, pad_t, pad_b = 44, 10, 12, 26
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    vals = [v for v in main + faint if np.isfinite(v)]
    if absolute(series):
        top = max(max(vals, default=0.0) * 1.1, MIN_TOP_FLOORS * level)
    else:
        top = max(vals + ([level] if level is not None else []), default=1.0)
    top = top if top > 0 else 1.0
    index = series.get("index") if series.get("index") and len(series["index"]) >= n else None

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad_l + (i / max(n - 1, 1)) * pw, pad_t + ph - (v / top) * ph

    def fmt(v: float) -> str:
        return f"{100 * v:.3g}{unit}" if unit else f"{v:.3g}"

    idx_attr = f' data-index="{",".join(str(i) for i in index[:n])}"' if index else ""
    parts = [f'<svg class="motion-svg" viewBox="0 0 {width} {height}" data-n="{n}" data-frames="{n_frames}" '
             f'data-padl="{pad_l}" data-pw="{pw}" data-scale="{"absolute" if unit else "relative"}"{idx_attr} '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    i = 0
    while i < len(act):          # the stretches that count as motion
        if act[i]:
            j = i
            while j + 1 < len(act) and act[j + 1]:
                j += 1
            x0, x1 = xy(i, 0)[0], xy(j, 0)[0]
            parts.append(f'<rect class="active-run" x="{x0:.1f}" y="{pad_t}" width="{max(x1 - x0, 2):.1f}" '
                         f'height="{ph}" fill="#34c38f" opacity="0.18"/>')
            i = j + 1
        else:
            i += 1
    if faint:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in enumerate(faint)))
        parts.append(f'<polyline class="faint" points="{pts}" fill="none" stroke="#9aa5b1" stroke-width="1.2"/>')
    if main:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in enumerate(main)))
        parts.append(f'<polyline class="main" points="{pts}" fill="none" stroke="#3b5bdb" stroke-width="2"/>')
        for k, v in enumerate(main):
            x, y = xy(k, v)
            f = index[k] if index else k
            parts.append(f'<circle class="pt" data-frame="{f}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#3b5bdb">'
                         f'<title>frame {f + 1}: {fmt(v)}</title></circle>')
    if level is not None:
        ly = xy(0, level)[1]
        parts.append(f'<line class="level" x1="{pad_l}" x2="{pad_l + pw}" y1="{ly:.1f}" y2="{ly:.1f}" '
                     f'stroke="#e8590c" stroke-dasharray="5,4" stroke-width="1.5"/>'
                     f'<text x="{pad_l + pw - 4}" y="{ly - 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#e8590c">{level_label}</text>')
    parts.append(f'<text x="{pad_l}" y="{height - 6}" font-size="11" fill="#666">frame 1</text>'
                 f'<text x="{pad_l + pw}" y="{height - 6}" text-anchor="end" font-size="11" fill="#666">'
                 f'frame {n_frames}</text>'
                 f'<text x="4" y="{pad_t + 10}" font-size="11" fill="#666">{fmt(top)}</text>'
                 f'<text x="4" y="{pad_t + ph}" font-size="11" fill="#666">0</text>')
    parts.append(f'<line class="cursor" x1="-10" x2="-10" y1="12" y2="{pad_t + ph}" stroke="#c92a2a" '
                 'stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)
