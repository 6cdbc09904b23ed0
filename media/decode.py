"""The one video decoder every metric shares: one demux pass for timestamps, one decode pass for pixels.

Each metric states what it needs as a `FrameRequest` (uniform N frames, all frames, a target fps, or
chosen frame indices; RGB or grayscale; an optional longest-side limit so frames are downscaled while
they are converted, by FFmpeg's swscale, instead of after). `decode_video(path, requests)` decodes the
file once and serves every request; the scoring runner collects the requests of all metrics it runs, so
no video is decoded twice per scoring run. `read_frames` is the same decoder for one request (the review
app's overlays, caption frames): its frame i is the frame the metrics call i.

A metric that consumes every frame in order (MotionX's optical flow) can pass a *sink* for its request:
the sink gets each frame as soon as it is decoded, on a thread of its own, and the frames are not kept:
its work overlaps the decoding, and a long video needs memory for a few frames, not all of them.
`decode_video` returns when the decoding ends; the sink may still be working on the last frames (beside
whatever the caller does next) until `video.sink(request)` waits for it and hands it over.

Timing is VFR-safe: frame times come from the presentation timestamps of the demuxed packets, never
from index / nominal fps. Animated GIF and WebP go through PyAV/FFmpeg like any video.
"""
from __future__ import annotations

import math
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Protocol, Sequence

import numpy as np

MAX_FRAMES = 20_000          # a guard against pathological files (about 11 min at 30 fps)
MAX_PIXELS = 8192 * 8192


class DecodeError(Exception):
    """The video cannot be decoded; the message says why."""


@dataclass(frozen=True)
class FrameRequest:
    mode: str = "uniform"            # "uniform" | "all" | "fps" | "indices"
    n: int = 32                      # uniform: number of frames (fewer when the video has fewer)
    fps: float = 0.0                 # fps: target sampling rate (all frames when the video is slower)
    max_side: int | None = None      # downscale so the longest side is at most this (never upscale)
    gray: bool = False               # 8-bit luma instead of RGB
    indices: tuple[int, ...] = ()    # indices: these source frames (those past the end are left out)

    def __post_init__(self) -> None:
        if self.mode not in ("uniform", "all", "fps", "indices"):
            raise ValueError(f"unknown sampling mode {self.mode!r}")
        if self.mode == "uniform" and self.n < 1:
            raise ValueError("uniform sampling needs n >= 1")
        if self.mode == "fps" and not self.fps > 0:
            raise ValueError("fps sampling needs fps > 0")

    def sampling(self) -> tuple:
        if self.mode == "indices":
            return (self.mode, self.indices)
        return (self.mode, self.n if self.mode == "uniform" else 0, self.fps if self.mode == "fps" else 0.0)


class FrameSink(Protocol):
    """Receives the frames of one ``mode="all"`` request in decode order. Must not raise: a sink records
    its own failure (the decode serves the other requests regardless)."""

    def feed(self, index: int, time: float, frame: np.ndarray) -> None: ...


class _Feeder:
    """Feeds the sinks from one background thread, in decode order (OpenCV and NumPy release the GIL,
    so a sink's work runs beside the decoding loop); a bounded queue keeps memory flat."""

    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="frame-sinks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            sink, i, t, arr = item
            try:
                sink.feed(i, t, arr)
            except Exception:  # a sink records its own failures; never let one stall the decode
                pass

    def put(self, sink: FrameSink, i: int, t: float, arr: np.ndarray) -> None:
        self._q.put((sink, i, t, arr))

    def finish(self) -> None:
        """No more frames: the thread ends once the queue is drained (`join` waits for that)."""
        self._q.put(None)

    def join(self) -> None:
        self._thread.join()


@dataclass
class SampledFrames:
    """The frames of one request: ``frames[k]`` is source frame ``indices[k]`` shown at ``times[k]`` s."""
    request: FrameRequest
    indices: np.ndarray
    times: np.ndarray
    frames: list[np.ndarray]
    source_size: tuple[int, int]     # (width, height) of the decoded video
    n_source_frames: int
    fps: float                       # average rate of the source (frames / duration)
    nominal_fps: float = 0.0         # the rate the stream declares (0 when none): what players show it at

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def scale(self) -> float:
        """Decoded-frame pixels per source pixel (<= 1)."""
        if not self.frames:
            return 1.0
        return self.frames[0].shape[1] / self.source_size[0]


@dataclass
class DecodedVideo:
    path: str
    n_frames: int
    times: np.ndarray                # presentation time of each frame, seconds from the first
    width: int
    height: int
    fps: float
    duration: float
    samples: dict[FrameRequest, SampledFrames] = field(default_factory=dict)
    sinks: dict[FrameRequest, FrameSink] = field(default_factory=dict)
    feeder: _Feeder | None = field(default=None, repr=False)

    def get(self, request: FrameRequest) -> SampledFrames:
        try:
            return self.samples[request]
        except KeyError:
            raise KeyError(f"{request} was not decoded; pass it to decode_video") from None

    def sink(self, request: FrameRequest) -> FrameSink | None:
        """The sink that was fed this request's frames, once it has been fed all of them."""
        if self.feeder is not None:
            self.feeder.join()
        return self.sinks.get(request)


def sample_indices(request: FrameRequest, times: np.ndarray) -> np.ndarray:
    """Source frame indices for a request, sorted and unique."""
    t_count = len(times)
    if t_count == 0:
        return np.zeros(0, dtype=np.int64)
    if request.mode == "all":
        return np.arange(t_count)
    if request.mode == "indices":
        return np.unique(np.array([i for i in request.indices if 0 <= i < t_count], dtype=np.int64))
    if request.mode == "uniform":
        idx = np.round(np.linspace(0, t_count - 1, min(request.n, t_count))).astype(np.int64)
        return np.unique(idx)
    # fps: the frame nearest to each target time k / fps (VFR-safe, by timestamp)
    span = float(times[-1] - times[0])
    targets = times[0] + np.arange(int(math.floor(span * request.fps + 1e-6)) + 1) / request.fps
    pos = np.clip(np.searchsorted(times, targets), 1, t_count - 1) if t_count > 1 else np.zeros(len(targets), int)
    if t_count > 1:
        left_closer = np.abs(times[pos - 1] - targets) <= np.abs(times[pos] - targets)
        pos = np.where(left_closer, pos - 1, pos)
    return np.unique(pos.astype(np.int64))


def _target_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    # even sizes keep swscale on its fast paths for 4:2:0 input
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


def probe_times(path: str | Path) -> tuple[np.ndarray, float]:
    """Presentation times (s, from 0) of every video frame, from one demux pass (no decoding)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            if not c.streams.video:
                raise DecodeError("contains no video stream")
            st = c.streams.video[0]
            tb = float(st.time_base) if st.time_base else 0.0
            pts = []
            for pkt in c.demux(st):
                if pkt.size and pkt.pts is not None:
                    pts.append(pkt.pts)
                elif pkt.size:
                    pts.append(None)
                if len(pts) > MAX_FRAMES:
                    raise DecodeError(f"more than {MAX_FRAMES} frames")
            rate = st.average_rate or st.guessed_rate
    except av.error.FFmpegError as exc:
        raise DecodeError(f"not a readable video: {exc}") from None
    nominal = float(rate) if rate else 0.0
    if not pts:
        raise DecodeError("video stream has no frames")
    if any(p is None for p in pts) or tb <= 0:
        step = 1.0 / nominal if nominal > 0 else 1.0 / 25
        times = np.arange(len(pts)) * step
    else:
        times = np.sort(np.asarray(pts, dtype=np.float64)) * tb
        times -= times[0]
    return times, nominal


def decode_video(path: str | Path, requests: Iterable[FrameRequest],
                 sinks: Mapping[FrameRequest, FrameSink] | None = None) -> DecodedVideo:
    """Decode ``path`` once and serve every request; a request with a sink streams its frames into the
    sink instead of keeping them (``video.sinks`` holds it for the metric). Raises DecodeError with a
    human reason."""
    import av

    path = str(path)
    sinks = dict(sinks or {})
    requests = list(dict.fromkeys([*requests, *sinks]))
    for r in sinks:
        if r.mode != "all":
            raise ValueError(f"a sink needs a mode='all' request, not {r}")
    times, nominal = probe_times(path)
    t_count = len(times)
    wanted: dict[FrameRequest, np.ndarray] = {r: sample_indices(r, times) for r in requests}
    # per frame index: which requests need it
    need: dict[int, list[FrameRequest]] = {}
    for r, idx in wanted.items():
        for i in idx.tolist():
            need.setdefault(i, []).append(r)
    out: dict[FrameRequest, dict[int, np.ndarray]] = {r: {} for r in requests}
    # only chosen indices may stop the decode early: the other modes decode to the end, so that a broken
    # tail is noticed and they are sampled again on what decoded
    early = requests and all(r.mode == "indices" for r in requests)
    last = max(need, default=0) if early else t_count - 1
    # one reformatter per output size keeps its swscale context: a fresh one per frame (what
    # frame.to_ndarray(width=...) does) costs more than the conversion itself
    formatters: dict[tuple[int, int, bool], object] = {}
    width = height = 0
    decoded = 0
    feeder = _Feeder() if sinks else None
    ok = False
    try:
        with av.open(path, metadata_errors="ignore") as c:
            st = c.streams.video[0]
            st.thread_type = "AUTO"
            if sinks:
                # the sinks' thread needs a core of its own: FFmpeg's default (a thread per core, plus
                # one) would make the two compete, and on 2 cores cost more time than it saves
                st.codec_context.thread_count = max(1, (os.cpu_count() or 1) - 1)
            for i, frame in enumerate(c.decode(st)):
                if i > last:
                    break
                width, height = frame.width, frame.height
                if width * height > MAX_PIXELS:
                    raise DecodeError(f"frame {width}x{height} is too large")
                decoded = i + 1
                reqs = need.get(i)
                if reqs:
                    _convert(frame, reqs, out, i, formatters, sinks, feeder, float(times[i]))
        ok = True
    except av.error.FFmpegError as exc:
        if decoded == 0:
            raise DecodeError(f"video data cannot be decoded: {exc}") from None
        ok = True  # a truncated tail: keep what decoded (the frames list says how many)
    finally:
        if feeder is not None:
            feeder.finish()
            if not ok or decoded == 0:
                feeder.join()     # nobody will ask for the sinks: do not leave their thread behind
    if decoded == 0:
        raise DecodeError("video stream has no decodable frame")
    if decoded <= last:
        # fewer decodable frames than packets (truncated file, dropped frames): resample on what exists
        times = times[:decoded]
        t_count = decoded
        for r in requests:
            have = out[r]
            idx = sample_indices(r, times)
            missing = [i for i in idx.tolist() if i not in have]
            if missing and have:
                # nearest decoded frame stands in (only happens at the truncated end)
                keys = np.array(sorted(have))
                for i in missing:
                    have[i] = have[int(keys[np.argmin(np.abs(keys - i))])]
            wanted[r] = idx
    duration = float(times[-1] - times[0]) + (1.0 / nominal if nominal > 0 else 0.0)
    fps = t_count / duration if duration > 0 else (nominal or 0.0)
    video = DecodedVideo(path=path, n_frames=t_count, times=times, width=width, height=height, fps=fps,
                         duration=duration, sinks=sinks, feeder=feeder)
    for r in requests:
        if r in sinks:
            continue
        idx = wanted[r]
        frames = [out[r][i] for i in idx.tolist() if i in out[r]]
        idx = np.array([i for i in idx.tolist() if i in out[r]], dtype=np.int64)
        video.samples[r] = SampledFrames(request=r, indices=idx, times=times[idx], frames=frames,
                                         source_size=(width, height), n_source_frames=t_count, fps=fps,
                                         nominal_fps=nominal)
    return video


def read_frames(path: str | Path, *, n: int | None = None, indices: Iterable[int] | None = None,
                max_side: int | None = None) -> SampledFrames:
    """RGB frames of one video by the metrics' numbering: every frame, `n` spread evenly (as a metric's
    uniform request samples them) or the source frames `indices` (decoding stops after the last of them;
    those past the end are left out). Raises DecodeError."""
    if indices is not None:
        req = FrameRequest("indices", indices=tuple(sorted({int(i) for i in indices})), max_side=max_side)
    elif n is not None:
        req = FrameRequest("uniform", n=n, max_side=max_side)
    else:
        req = FrameRequest("all", max_side=max_side)
    return decode_video(path, [req]).get(req)


def _convert(frame, reqs: Sequence[FrameRequest], out: dict, i: int, formatters: dict, sinks: dict,
             feeder: _Feeder | None, t: float) -> None:
    """Convert one decoded frame for every request that needs it: one swscale call per distinct
    (size, gray) pair; requests of the same size and format share one array."""
    done: dict[tuple[int, int, bool], np.ndarray] = {}
    for r in reqs:
        w, h = _target_size(frame.width, frame.height, r.max_side)
        key = (w, h, r.gray)
        arr = done.get(key)
        if arr is None:
            fmt = formatters.get(key)
            if fmt is None:
                from av.video.reformatter import VideoReformatter
                fmt = formatters[key] = VideoReformatter()
            scaled = (w, h) != (frame.width, frame.height)
            arr = fmt.reformat(frame, width=w, height=h, format="gray" if r.gray else "rgb24",
                               interpolation="AREA" if scaled else None).to_ndarray()
            arr = np.ascontiguousarray(arr)
            done[key] = arr
        sink = sinks.get(r)
        if sink is not None:
            feeder.put(sink, i, t, arr)
        else:
            out[r][i] = arr
