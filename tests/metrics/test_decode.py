"""The shared decoder: one pass serves every request; uniform / all / fps sampling; VFR; GIF; bad files."""
from __future__ import annotations

import numpy as np
import pytest

from metrics.decode import DecodeError, FrameRequest, decode_video, sample_indices

from .conftest import pan_frames, write_video


def test_sample_indices():
    times = np.arange(81) / 16
    assert sample_indices(FrameRequest("uniform", n=32), times).tolist() == \
        np.unique(np.round(np.linspace(0, 80, 32)).astype(int)).tolist()
    assert len(sample_indices(FrameRequest("uniform", n=32), times[:10])) == 10   # fewer frames: all of them
    assert sample_indices(FrameRequest("all"), times).tolist() == list(range(81))
    assert sample_indices(FrameRequest("fps", fps=4), times).tolist() == list(range(0, 81, 4))
    # variable frame rate: sampling by timestamp, not by index
    vfr = np.concatenate([np.arange(0, 1, 1 / 30), 1 + np.arange(0, 1, 1 / 5)])
    picked = vfr[sample_indices(FrameRequest("fps", fps=5), vfr)]
    assert np.allclose(np.diff(picked), 0.2, atol=0.02)


def test_one_decode_serves_all_requests(tmp_path):
    path = write_video(tmp_path / "pan.mp4", pan_frames(40, 2.0, 0.0, size=320), fps=20)
    reqs = [FrameRequest("all", max_side=128, gray=True), FrameRequest("uniform", n=8),
            FrameRequest("uniform", n=8, max_side=160), FrameRequest("fps", fps=5)]
    v = decode_video(path, reqs)
    assert v.n_frames == 40 and (v.width, v.height) == (320, 320) and v.fps == pytest.approx(20, rel=0.01)
    a = v.get(reqs[0])
    assert len(a) == 40 and a.frames[0].shape == (128, 128) and a.frames[0].dtype == np.uint8
    u = v.get(reqs[1])
    assert len(u) == 8 and u.frames[0].shape == (320, 320, 3) and u.indices[-1] == 39
    assert v.get(reqs[2]).frames[0].shape == (160, 160, 3) and v.get(reqs[2]).scale == pytest.approx(0.5)
    f = v.get(reqs[3])
    assert np.allclose(np.diff(f.times), 0.2, atol=1e-6)
    with pytest.raises(KeyError):
        v.get(FrameRequest("uniform", n=3))


def test_vfr_timestamps(tmp_path):
    import av

    path = tmp_path / "vfr.mp4"
    frames = pan_frames(30, 1.0, 0.0, size=64)
    pts = [int(t * 1000) for t in np.concatenate([np.arange(20) / 40, 0.5 + np.arange(10) / 5])]
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=40)
        st.width = st.height = 64
        st.pix_fmt = "yuv420p"
        st.codec_context.time_base = __import__("fractions").Fraction(1, 1000)
        for arr, p in zip(frames, pts):
            fr = av.VideoFrame.from_ndarray(arr, format="rgb24")
            fr.pts = p
            fr.time_base = st.codec_context.time_base
            for pkt in st.encode(fr):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    v = decode_video(path, [FrameRequest("all", gray=True)])
    s = v.get(FrameRequest("all", gray=True))
    assert v.n_frames == 30
    assert np.allclose(s.times[:20], np.arange(20) / 40, atol=2e-3)
    assert np.allclose(np.diff(s.times[20:]), 0.2, atol=2e-3)


def test_gif_and_field_gif(tmp_path, fieldmedia):
    v = decode_video(fieldmedia / "videos_generated/dynamicrafter_pour_honey.gif",
                     [FrameRequest("uniform", n=32, max_side=256)])
    s = v.get(FrameRequest("uniform", n=32, max_side=256))
    assert v.n_frames == 16 and len(s) == 16 and s.frames[0].shape == (160, 256, 3)
    assert 7.5 < v.fps < 9


def test_bad_files(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(DecodeError):
        decode_video(junk, [FrameRequest("all")])
    with pytest.raises(DecodeError):
        decode_video(tmp_path / "missing.mp4", [FrameRequest("all")])
    good = write_video(tmp_path / "good.mp4", pan_frames(40, 1.0, 0.0, size=96))
    cut = tmp_path / "cut.mp4"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])   # truncated: the moov atom (at the end) is gone
    with pytest.raises(DecodeError):
        decode_video(cut, [FrameRequest("all")])


class _Recorder:
    def __init__(self, fail_at: int | None = None):
        self.seen: list[tuple[int, float, tuple]] = []
        self.fail_at = fail_at

    def feed(self, index, time, frame):
        if index == self.fail_at:
            raise RuntimeError("sink bug")
        self.seen.append((index, time, frame.shape))


def test_sink_streams_frames_in_order_without_keeping_them(tmp_path):
    path = write_video(tmp_path / "pan.mp4", pan_frames(30, 2.0, 0.0, size=320), fps=15)
    req = FrameRequest("all", max_side=128, gray=True)
    rec = _Recorder()
    v = decode_video(path, [FrameRequest("uniform", n=4)], sinks={req: rec})
    assert v.sink(req) is rec
    assert [s[0] for s in rec.seen] == list(range(30))                  # every frame, in decode order
    assert np.allclose([s[1] for s in rec.seen], v.times)               # with its presentation time
    assert rec.seen[0][2] == (128, 128)
    with pytest.raises(KeyError):                                      # streamed, not stored
        v.get(req)
    assert len(v.get(FrameRequest("uniform", n=4))) == 4               # the other requests are served
    with pytest.raises(ValueError, match="mode='all'"):
        decode_video(path, [], sinks={FrameRequest("uniform", n=4): rec})


def test_a_failing_sink_does_not_stop_the_decode(tmp_path):
    path = write_video(tmp_path / "pan.mp4", pan_frames(12, 2.0, 0.0, size=64), fps=12)
    rec = _Recorder(fail_at=5)
    v = decode_video(path, [FrameRequest("uniform", n=3)], sinks={FrameRequest("all", gray=True): rec})
    assert len(v.get(FrameRequest("uniform", n=3))) == 3
    assert v.sink(FrameRequest("all", gray=True)) is rec
    assert [s[0] for s in rec.seen] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]


def test_decode_returns_while_the_sink_works_and_sink_waits_for_it(tmp_path):
    # the sink's last frames are worked on beside whatever runs after the decode (scoring runs MotionX
    # last for this); asking for the sink waits until it has been fed every frame
    import threading

    class Gate(_Recorder):
        def __init__(self):
            super().__init__()
            self.open = threading.Event()

        def feed(self, index, time, frame):
            self.open.wait(30)
            super().feed(index, time, frame)

    path = write_video(tmp_path / "pan.mp4", pan_frames(8, 2.0, 0.0, size=64), fps=8)
    req = FrameRequest("all", gray=True)
    gate = Gate()
    v = decode_video(path, [FrameRequest("uniform", n=2)], sinks={req: gate})   # returns: the sink is held
    assert gate.seen == [] and len(v.get(FrameRequest("uniform", n=2))) == 2
    gate.open.set()
    assert v.sink(req) is gate and [s[0] for s in gate.seen] == list(range(8))
