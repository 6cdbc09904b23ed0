"""The motion-energy curve of a MotionX trace, drawn for people: the series read from the trace
(`motion_series`) and an SVG of E_t, the smoothed E~_t, the threshold tau and the active runs (`motion_svg`)."""
from __future__ import annotations

from typing import Any

import numpy as np


def motion_series(trace: dict[str, Any] | None) -> dict[str, Any] | None:
    """E_t, smoothed E~_t, tau and the active mask from a MotionX trace (tolerant of key spellings)."""
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
    active = pick("active", "active_mask")
    times = pick("times", "t")
    e = [float(x) for x in (e or [])]
    es = [float(x) for x in (es or [])]
    if "E_smooth_norm" in trace and e and es and max(e) > 0:
        # E~ is normalized by the video's 95th percentile (and tau with it): draw E_t on the same scale
        k = max(es) / max(e) if max(es) > 0 else 1.0
        e = [x * k for x in e]
    return {"E": e, "E_smooth": es,
            "tau": float(tau) if tau is not None else None,
            "active": [bool(x) for x in (active or [])], "times": times,
            "R": pick("R", "activation_ratio"), "A": pick("A", "amplitude"), "S": pick("S", "smoothness")}


def motion_svg(series: dict[str, Any], n_frames: int, width: int = 720, height: int = 190) -> str:
    """The motion-energy curve as an SVG: E_t, E~_t, tau and shaded active runs. Each x unit is one frame
    pair (t -> t+1); clicking a point selects frame t."""
    e, es, act = series["E"], series["E_smooth"], series["active"]
    n = max(len(e), len(es), 1)
    pad_l, pad_r, pad_t, pad_b = 40, 10, 12, 26
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    vals = [v for v in (e + es + ([series["tau"]] if series["tau"] is not None else [])) if np.isfinite(v)]
    top = max(vals) if vals else 1.0
    top = top if top > 0 else 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (i / max(n - 1, 1)) * pw
        y = pad_t + ph - (v / top) * ph
        return x, y

    parts = [f'<svg class="motion-svg" viewBox="0 0 {width} {height}" data-n="{n}" data-frames="{n_frames}" '
             f'data-padl="{pad_l}" data-pw="{pw}" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    # active runs
    i = 0
    while i < len(act):
        if act[i]:
            j = i
            while j + 1 < len(act) and act[j + 1]:
                j += 1
            x0, _ = xy(i, 0)
            x1, _ = xy(j, 0)
            parts.append(f'<rect class="active-run" x="{x0:.1f}" y="{pad_t}" width="{max(x1 - x0, 2):.1f}" '
                         f'height="{ph}" fill="#34c38f" opacity="0.18"/>')
            i = j + 1
        else:
            i += 1
    if e:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in enumerate(e)))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#9aa5b1" stroke-width="1.2"/>')
    if es:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, v) for k, v in enumerate(es)))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#3b5bdb" stroke-width="2"/>')
        for k, v in enumerate(es):
            x, y = xy(k, v)
            parts.append(f'<circle class="pt" data-frame="{k}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#3b5bdb">'
                         f'<title>frame {k + 1}: E~={v:.3g}</title></circle>')
    if series["tau"] is not None:
        _, ty = xy(0, series["tau"])
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e8590c" '
                     f'stroke-dasharray="5,4" stroke-width="1.5"/>'
                     f'<text x="{pad_l + pw - 4}" y="{ty - 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#e8590c">τ = {series["tau"]:.3g}</text>')
    parts.append(f'<text x="{pad_l}" y="{height - 6}" font-size="11" fill="#666">frame 1</text>'
                 f'<text x="{pad_l + pw}" y="{height - 6}" text-anchor="end" font-size="11" fill="#666">'
                 f'frame {n_frames}</text>'
                 f'<text x="4" y="{pad_t + 10}" font-size="11" fill="#666">{top:.2g}</text>'
                 f'<text x="4" y="{pad_t + ph}" font-size="11" fill="#666">0</text>')
    parts.append('<line class="cursor" x1="-10" x2="-10" y1="12" y2="{}" stroke="#c92a2a" stroke-width="2"/>'
                 .format(pad_t + ph))
    parts.append("</svg>")
    return "".join(parts)
