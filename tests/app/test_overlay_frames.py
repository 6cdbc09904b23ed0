"""Overlay frame i is metric frame i: the review app's overlays (the player's MP4, a selected frame's JPEG, the
frames the overlay data is computed on) and the caption frames are decoded by media.decode, the decoder the
metrics use, so the frame a trace's index names is the frame drawn for it.

The test video's frame k is one solid colour of its own, so a decoded or rendered frame says which source
frame it is; the frame counter drawn in the top-left corner is kept out of the sampled region."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

N, FPS = 40, 20
SHA = "ab" * 32


def colour(k: int) -> np.ndarray:
    return np.array([(k * 67) % 256, (k * 151 + 80) % 256, 250 - 6 * k], dtype=np.int64)


PALETTE = np.stack([colour(k) for k in range(N)])


def frame_id(frame: np.ndarray) -> int:
    """The source frame a frame shows: the palette colour nearest to its bottom-right quarter's median."""
    h, w = frame.shape[:2]
    med = np.median(frame[h // 2:, w // 2:].reshape(-1, 3), axis=0)
    d = np.linalg.norm(PALETTE - med, axis=1)
    assert d.min() < 12, ("not a palette colour", med)
    return int(np.argmin(d))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from media.encode import write_mp4

    d = np.linalg.norm(PALETTE[:, None] - PALETTE[None], axis=2) + np.eye(N) * 999
    assert d.min() > 30, "the palette must survive H.264"
    path = tmp_path_factory.mktemp("frames") / "solid.mp4"
    write_mp4(path, [np.full((96, 160, 3), colour(k), np.uint8) for k in range(N)], fps=FPS)
    return str(path)


@pytest.fixture(scope="module")
def metric_frames(video):
    """What every metric sees: media.decode's frames, frame k being source frame k."""
    from media.decode import FrameRequest, decode_video

    req = FrameRequest("all")
    s = decode_video(video, [req]).get(req)
    assert [frame_id(f) for f in s.frames] == list(range(N)) and s.indices.tolist() == list(range(N))
    return s.frames


def test_overlay_video_frame_i_is_metric_frame_i(tmp_path, video, metric_frames):
    from curation.overlays import render_video_overlay
    from media.decode import read_frames

    out = render_video_overlay(tmp_path / "ws", SHA, video, {"masks": {}, "ocr": {}}, {"counter"})
    drawn = read_frames(out)
    assert drawn.nominal_fps == pytest.approx(FPS) and len(drawn) == N
    for k, (got, want) in enumerate(zip(drawn.frames, metric_frames)):
        assert frame_id(got) == k
        h, w = got.shape[:2]
        assert np.abs(got[h // 2:, w // 2:].astype(int) - want[h // 2:, w // 2:]).mean() < 3


def test_selected_frame_i_is_metric_frame_i(tmp_path, video, metric_frames):
    from curation.overlays import render_frame_png

    for i in (0, 1, 13, N - 1):
        jpg = render_frame_png(tmp_path / "ws", SHA, video, i, {}, set())
        got = np.asarray(Image.open(jpg).convert("RGB"))
        assert frame_id(got) == i
        h, w = got.shape[:2]
        assert np.abs(got[h // 2:, w // 2:].astype(int) - metric_frames[i][h // 2:, w // 2:]).mean() < 3
    with pytest.raises(ValueError, match="past the end"):
        render_frame_png(tmp_path / "ws", SHA, video, N, {}, set())


def test_chosen_frames_stop_the_decode_but_keep_the_video_facts(video):
    from media.decode import read_frames

    s = read_frames(video, indices=[7, 3, 7, N + 5])
    assert s.indices.tolist() == [3, 7] and [frame_id(f) for f in s.frames] == [3, 7]
    assert s.n_source_frames == N and s.fps == pytest.approx(FPS)     # not taken for a truncated file


def test_sampled_overlay_and_caption_frames_are_the_metric_samples(tmp_path, monkeypatch, video):
    import metrics.backends
    from curation.captioning import sample_frames
    from curation.video_overlay_data import compute_video_overlay_data
    from media.decode import FrameRequest, decode_video

    def unavailable():
        raise RuntimeError("no model in this test")

    monkeypatch.setattr(metrics.backends, "get_ocr", unavailable)
    monkeypatch.setattr(metrics.backends, "get_segmenter", unavailable)
    uniform = {n: decode_video(video, [FrameRequest("uniform", n=n)]).get(FrameRequest("uniform", n=n)).indices
               for n in (6, 16)}
    data = compute_video_overlay_data(tmp_path / "ws", SHA, video, n=16)
    assert [f["frame"] for f in data["frames"]] == uniform[16].tolist()     # a uniform metric's trace indices
    assert data["size"] == [160, 96] and len(data["errors"]) == 2
    frames = sample_frames(video, n=6)
    assert [frame_id(f) for f in frames] == uniform[6].tolist()
