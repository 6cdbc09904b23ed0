"""The shared decoder: one pass serves every request; uniform / all / fps sampling; VFR; GIF; bad files."""
from __future__ import annotations

import numpy as np
import pytest

from media.decode import DecodeError, FrameRequest, decode_video, sample_indices

from .conftest import pan_frames, write_video

BITS = 6


def index_frames(n: int, size: int) -> list[np.ndarray]:
    """Frame i shows i in binary: BITS vertical stripes, stripe b white when bit b of i is set (survives
    H.264, resizing and grey conversion, so a decoded frame says which source frame it is)."""
    out = []
    for i in range(n):
        f = np.zeros((size, size, 3), np.uint8)
        for b in range(BITS):
            if i >> b & 1:
                f[:, b * size // BITS:(b + 1) * size // BITS] = 255
        out.append(f)
    return out


def index_of(frame: np.ndarray) -> int:
    w = frame.shape[1]
    g = frame if frame.ndim == 2 else frame.mean(axis=2)
    # the middle half of each stripe: its edges blur under chroma subsampling and resizing
    return sum(1 << b for b in range(BITS)
               if g[:, b * w // BITS + w // (4 * BITS):(b + 1) * w // BITS - w // (4 * BITS)].mean() > 127)


def test_sample_indices():
    times = np.arange(81) / 16
    # uniform: the frames nearest to n evenly spaced positions from the first to the last frame
    assert sample_indices(FrameRequest("uniform", n=5), times).tolist() == [0, 20, 40, 60, 80]
    assert sample_indices(FrameRequest("uniform", n=6), times).tolist() == [0, 16, 32, 48, 64, 80]
    assert sample_indices(FrameRequest("uniform", n=4), times[:10]).tolist() == [0, 3, 6, 9]
    # 8 of 40: k * 39 / 7 = 0, 5.57, 11.14, 16.71, 22.29, 27.86, 33.43, 39 -> nearest frame, not truncated
    assert sample_indices(FrameRequest("uniform", n=8), times[:40]).tolist() == [0, 6, 11, 17, 22, 28, 33, 39]
    u32 = sample_indices(FrameRequest("uniform", n=32), times).tolist()
    assert len(u32) == 32 and u32[0] == 0 and u32[-1] == 80 and set(np.diff(u32)) <= {2, 3}   # 80/31 = 2.58
    assert sample_indices(FrameRequest("uniform", n=32), times[:10]).tolist() == list(range(10))  # fewer: all
    assert sample_indices(FrameRequest("all"), times).tolist() == list(range(81))
    assert sample_indices(FrameRequest("fps", fps=4), times).tolist() == list(range(0, 81, 4))
    # variable frame rate: sampling by timestamp, not by index (30 fps for 1 s, then 5 fps)
    vfr = np.concatenate([np.arange(0, 1, 1 / 30), 1 + np.arange(0, 1, 1 / 5)])
    assert sample_indices(FrameRequest("fps", fps=5), vfr).tolist() == [0, 6, 12, 18, 24, 30, 31, 32, 33, 34]


def test_one_decode_serves_all_requests(tmp_path):
    path = write_video(tmp_path / "idx.mp4", index_frames(40, 320), fps=20)
    reqs = [FrameRequest("all", max_side=128, gray=True), FrameRequest("uniform", n=8),
            FrameRequest("uniform", n=8, max_side=160), FrameRequest("fps", fps=5)]
    v = decode_video(path, reqs)
    assert v.n_frames == 40 and (v.width, v.height) == (320, 320) and v.fps == pytest.approx(20, rel=0.01)
    assert np.allclose(v.times, np.arange(40) / 20, atol=1e-6)
    a = v.get(reqs[0])
    assert a.frames[0].shape == (128, 128) and a.frames[0].dtype == np.uint8
    assert a.indices.tolist() == list(range(40)) and [index_of(f) for f in a.frames] == list(range(40))
    # 8 of 40: round(k * 39 / 7) for k = 0..7
    u = v.get(reqs[1])
    assert u.indices.tolist() == [0, 6, 11, 17, 22, 28, 33, 39] and u.frames[0].shape == (320, 320, 3)
    assert [index_of(f) for f in u.frames] == [0, 6, 11, 17, 22, 28, 33, 39]
    assert np.allclose(u.times, np.array([0, 6, 11, 17, 22, 28, 33, 39]) / 20, atol=1e-6)
    h = v.get(reqs[2])
    assert h.frames[0].shape == (160, 160, 3) and h.scale == pytest.approx(0.5)
    assert [index_of(f) for f in h.frames] == [0, 6, 11, 17, 22, 28, 33, 39]
    f = v.get(reqs[3])                          # 5 fps from 20 fps: every 4th frame, 0.2 s apart
    assert f.indices.tolist() == list(range(0, 40, 4)) and [index_of(x) for x in f.frames] == list(range(0, 40, 4))
    assert np.allclose(f.times, np.arange(10) * 0.2, atol=1e-6)
    with pytest.raises(KeyError):
        v.get(FrameRequest("uniform", n=3))


def test_vfr_timestamps(tmp_path):
    import av

    path = tmp_path / "vfr.mp4"
    frames = index_frames(30, 96)
    pts = [int(t * 1000) for t in np.concatenate([np.arange(20) / 40, 0.5 + np.arange(10) / 5])]
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=40)
        st.width = st.height = 96
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
    assert np.allclose(s.times[20:], 0.5 + np.arange(10) / 5, atol=2e-3)
    assert [index_of(f) for f in s.frames] == list(range(30))
    # 1.6 fps by timestamp: targets 0, 0.625, 1.25, 1.875 s -> frames 0, 21, 24, 27 (shown at 0, 0.7, 1.3,
    # 1.9 s); by index at the nominal 40 fps it would be frames 0 and 25 only
    req = FrameRequest("fps", fps=1.6)
    slow = decode_video(path, [req]).get(req)
    assert slow.indices.tolist() == [0, 21, 24, 27] and [index_of(f) for f in slow.frames] == [0, 21, 24, 27]


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
    def __init__(self, fail_at: int | None = None, keep_index: bool = False):
        self.seen: list[tuple[int, float, tuple]] = []
        self.content: list[int] = []
        self.fail_at = fail_at
        self.keep_index = keep_index

    def feed(self, index, time, frame):
        if index == self.fail_at:
            raise RuntimeError("sink bug")
        self.seen.append((index, time, frame.shape))
        if self.keep_index:
            self.content.append(index_of(frame))


def test_sink_streams_frames_in_order_without_keeping_them(tmp_path):
    path = write_video(tmp_path / "idx.mp4", index_frames(30, 320), fps=15)
    req = FrameRequest("all", max_side=128, gray=True)
    rec = _Recorder(keep_index=True)
    v = decode_video(path, [FrameRequest("uniform", n=4)], sinks={req: rec})
    assert v.sink(req) is rec
    assert [s[0] for s in rec.seen] == list(range(30))                  # every frame, in decode order
    assert rec.content == list(range(30))                              # each one the frame its index names
    assert np.allclose([s[1] for s in rec.seen], np.arange(30) / 15, atol=1e-6)   # at its presentation time
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
