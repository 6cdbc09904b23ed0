"""MotionXScore on controlled synthetic videos with known answers, and on real generated videos."""
from __future__ import annotations

import numpy as np
import pytest

from metrics import motionx
from media.decode import FrameRequest, decode_video

from .conftest import pan_frames, texture, write_video

CFG = motionx.MotionXConfig()
FPS = 16


def score(path, cfg=CFG):
    v = decode_video(path, motionx.requests(cfg))
    return motionx.compute(v.get(cfg.request()), cfg)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("mx")
    rng = np.random.default_rng(1)
    still = texture(256, 3)
    static = [np.clip(still.astype(np.int16) + rng.integers(-2, 3, still.shape), 0, 255).astype(np.uint8)
              for _ in range(48)]
    jitter = []
    base = texture(384, 5)
    for t in range(48):   # back-and-forth shake (4 Hz, seen at the 8 fps analysis rate): no smoothness
        dx = 2.0 if (t // 2) % 2 else -2.0
        m = np.float32([[1, 0, 64 + dx], [0, 1, 64]])
        import cv2
        jitter.append(cv2.warpAffine(base, m, (256, 256), borderMode=cv2.BORDER_REFLECT))
    return {
        "h2": write_video(d / "h2.mp4", pan_frames(48, 2.0, 0.0), FPS),
        "h4": write_video(d / "h4.mp4", pan_frames(48, 4.0, 0.0), FPS),
        "diag": write_video(d / "diag.mp4", pan_frames(48, 2.0, -2.0), FPS),
        "static": write_video(d / "static.mp4", static, FPS),
        "jitter": write_video(d / "jitter.mp4", jitter, FPS),
    }


def test_known_pan_speed_gives_expected_amplitude(videos):
    # 256 px frames, flow at 256 px: A = speed (px/frame) * fps / 256 (fraction of the frame per second)
    for key, speed in (("h2", 2.0), ("h4", 4.0), ("diag", 2.0 * np.sqrt(2))):
        out = score(videos[key])
        assert out.status == "ok"
        assert out.trace["A"] == pytest.approx(speed * FPS / 256, rel=0.12), key
        assert out.trace["R"] > 0.5, key
    # the signed mean (OpenS2V's amplitude) cancels on the anti-diagonal pan; the magnitude does not
    v = decode_video(videos["diag"], [FrameRequest("all", gray=True)])
    assert motionx.opens2v_motion_amplitude(v.get(FrameRequest("all", gray=True)).frames[:8]) < 0.3


def test_static_video_has_no_activity_and_lowest_score(videos):
    outs = {k: score(p) for k, p in videos.items()}
    st = outs["static"]
    assert st.trace["R"] == 0 and st.trace["S_norm"] == 0 and not any(st.trace["active"])
    assert st.value == min(o.value for o in outs.values()) and st.value < 0.05
    # smooth pan beats a back-and-forth shake of similar energy on smoothness
    assert outs["h2"].trace["S_norm"] > outs["jitter"].trace["S_norm"] + 0.3


def test_trace_and_parameters(videos):
    out = score(videos["h2"])
    tr = out.trace
    # 48 frames at 16 fps show for 3 s: samples at (k + 1/2) / 8 s for k = 0..23 (frames 1, 3, .., 47): 23 pairs
    n_pairs = 23
    assert tr["analysis_fps"] == 8 and tr["dt"] == [0.125] * n_pairs
    assert tr["index"] == list(range(3, 48, 2))          # the source frame of each pair's second sample
    for key in ("E", "E_smooth_norm", "active", "times", "speed", "rel_accel_pairs"):
        assert len(tr[key]) == n_pairs, key
    assert {"tau", "A", "S", "R", "A_norm", "S_norm"} <= set(tr)
    assert out.value == pytest.approx((tr["A_norm"] + tr["S_norm"] + tr["R"]) / 3, abs=1e-3)
    # the base quantile is a parameter (eq. 1's median vs the appendix's 0.3) and changes the cache key
    med = motionx.MotionXConfig(p_left=0.5)
    from metrics.config import params_hash
    assert params_hash(med) != params_hash(CFG)
    assert score(videos["h2"], med).trace["tau"] >= tr["tau"]


def test_streamed_while_decoding_equals_stored_frames(videos):
    # the scoring path streams frames into MotionStream during the decode; same numbers as stored frames
    for key in ("h2", "jitter", "static"):
        streamed = motionx.run(decode_video(videos[key], [], motionx.stream(CFG)), None, CFG)
        stored = score(videos[key])
        assert streamed.value == stored.value and streamed.trace == stored.trace, key


@pytest.mark.parametrize("method", ["dis", "dis-fast", "dis-medium"])
@pytest.mark.parametrize("shape", [(256, 256), (170, 256), (256, 144), (200, 180)])
def test_grid_flow_is_dis_own_estimate(method, shape):
    # MotionX reads DIS's flow on its working grid (finest scale 0 on the image DIS's pyramid would make);
    # upsampled as DIS does it, it must be exactly what DIS returns at the frame's size
    import cv2

    h, w = shape
    base = cv2.cvtColor(texture(max(shape) + 16, 7), cv2.COLOR_RGB2GRAY)
    a, b = np.ascontiguousarray(base[4:4 + h, 4:4 + w]), np.ascontiguousarray(base[6:6 + h, 3:3 + w])
    est = motionx.FlowEstimator(method)
    grid = est.calc(est.prepare(a), est.prepare(b))
    preset = {"dis": 0, "dis-fast": 1, "dis-medium": 2}[method]
    full = cv2.DISOpticalFlow_create(preset).calc(a, b, None)
    assert grid.shape[:2] == (h // est.step, w // est.step)
    assert np.array_equal(cv2.resize(grid, (w, h)) * est.step, full)
    assert np.abs(full).max() > 1.0          # a real shift was measured, not two zero fields


def test_flow_failure_is_an_error_not_a_number(videos):
    st = motionx.MotionStream(CFG)
    st.feed(0, 0.0, np.zeros((64, 64), np.uint8))
    st.feed(1, 0.1, np.zeros((32, 32), np.uint8))        # a size change mid-stream: OpenCV refuses the pair
    st.feed(2, 0.2, np.zeros((64, 64), np.uint8))
    out = st.result(10.0)
    assert out.status == "error" and out.value is None and "optical flow failed" in out.reason


def test_helpers():
    assert motionx.ema(np.array([0.0, 1.0, 1.0]), 0.5).tolist() == [0.0, 0.5, 0.75]
    mask = np.array([1, 1, 0, 1, 1, 1, 1, 0], bool)
    kept = motionx.runs_at_least(mask, np.full(8, 0.1), 0.3)
    assert kept.tolist() == [0, 0, 0, 1, 1, 1, 1, 0]


def test_too_short():
    from media.decode import SampledFrames
    s = SampledFrames(FrameRequest("all", gray=True), np.arange(2), np.arange(2) / 8.0,
                      [np.zeros((8, 8), np.uint8)] * 2, (8, 8), 2, 8.0)
    assert motionx.compute(s).status == "n/a"


@pytest.mark.field
def test_near_static_field_video_scores_lowest(fieldmedia):
    names = ["cogvideox2b_face_closeup_nearstatic.mp4", "cogvideox2b_toy_ship.mp4", "cogvideox2b_suv_dirt_road.mp4",
             "dynamicrafter_pour_honey.mp4", "cogvideox2b_graffiti_artist.mp4", "opens2v_faceobj_14_black_tee.mp4"]
    outs = {n: score(fieldmedia / "videos_generated" / n) for n in names}
    near = outs["cogvideox2b_face_closeup_nearstatic.mp4"]
    assert near.trace["R"] == 0
    assert near.value == min(o.value for o in outs.values())
    assert outs["cogvideox2b_suv_dirt_road.mp4"].trace["A_norm"] > 0.9     # the fastest clip saturates A^
