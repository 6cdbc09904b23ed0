"""MotionXScore: how much, how long and how smoothly a video moves (InnoAds-Bench, eq. 1 and appendix).

Pipeline (see docs/metrics.md for the full definition and every constant):

0. Frames are resampled to one analysis rate, ``analysis_fps`` = 8 fps. A decoded frame identical to the one
   before is dropped (a frame-rate conversion's repeat, or a source slower than 8 fps); when many are (a
   conversion), the distinct pictures are retimed evenly over the video. At each instant (k + 1/2) / 8 s the
   picture on screen then is taken, and each pair's time step is the pictures' own time difference.
   Why: generators deliver 8, 16, 24 or 30 fps, and every statistic below is taken per pair of frames. At
   one rate a pair means the same time step for every video, so the same motion gives the same score at any
   frame rate (tested: a clip transcoded to 8-30 fps). 8 fps because it is the lowest rate generators
   deliver (CogVideoX, DynamiCrafter): a higher rate would need frames an 8 fps video does not have. A video
   slower than 8 fps is analysed at its own rate.
1. Dense optical flow (OpenCV DIS, preset ULTRAFAST) between consecutive samples, on 8-bit luma downscaled so
   the longest side is ``flow_side`` = 256 px. Why 256 px: flow cost grows with the pixel count, all the
   quantities below are normalised by the frame size so they do not depend on it, and motion below a
   quarter pixel at 256 px (one pixel at 1024 px) is under the noise floor anyway.
2. Per-pair speed ``v_t`` = mean of the flow *magnitude* over the points of the estimator's own grid (DIS
   ULTRAFAST estimates on a 64 px grid and upsamples it 4x; we read the grid, see `FlowEstimator`), divided
   by the pair's time step and the frame's long side: a fraction of the frame per second. The magnitude,
   never the signed mean: a signed mean cancels, so a diagonal pan (dx = -dy) scores 0.
3. ``E~`` = EMA(v, alpha = 0.5 per 8 fps sample, a 0.19 s time constant) divided by the video's 95th
   percentile of the EMA (p_inner = 95).
4. Adaptive threshold ``tau = Q_{p_left}(E~) + lambda * 1.4826 * MAD(E~)``, p_left = 0.3, lambda = 0.5.
   Eq. 1 of the paper writes the median (p_left = 0.5); the appendix uses 0.3: ``p_left`` is a parameter.
   tau is capped at tau_max = 0.5 (half the p95-normalised energy): for sustained motion at a constant
   speed E~ is ~1 everywhere, tau lands on ~1 too, and noise alone would flip half the pairs below it
   (a steady pan scored as half-active). With the cap, steady motion is active throughout (docs/metrics.md
   gives R with and without the cap on the field videos).
5. Absolute noise floor: a pair is active only if also the EMA of the 90th percentile of its per-pixel
   speed is at least ``noise_floor`` = 4 % of the frame's long side per second. The relative threshold
   alone calls encoder noise "motion" in a static video (its E~ is normalised noise); with the floor a
   static or near-static video has R = 0. A percentile rather than the mean, so that a product moving
   over a still background (a small part of the frame) still counts as motion.
6. Active pairs form runs; runs shorter than L_min = 0.3 s are dropped. R = active time / total time.
7. A = mean speed (fraction of the long side per second, time-weighted); A^ = min(1, A / amp_ref).
8. S = 1 - the 20 % trimmed mean (``accel_trim``) of the relative flow acceleration along trajectories over
   active pairs (see `rel_accel`; points slower than ``move_speed`` = 1.6 % of the long side per second are
   not "moving"); a video without active motion has S^ = 0: smoothness is credited for motion that happens,
   not for stillness. A trimmed mean, not the median (until 2.0): the median of the ~30 widely spread values
   a few seconds give at 8 fps is too noisy an estimate, and moved with the frame rate (see `trimmed_mean`).
9. MotionX = (A^ + S^ + R^) / 3, R^ = R.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean
from media.decode import FrameRequest, SampledFrames

NAME = "motionx"
VERSION = "2.1"   # 1.1: E_t over every second pixel; 1.2: on the flow's own grid; 2.0: one analysis rate (8 fps);
                  # 2.1: S from the trimmed mean of the pairs' relative accelerations, not their median
REFERENCE = False        # video-level metric: triple_id = 0
DISPLAY = "MotionXScore"  # the paper's name: reports, exports, leaderboards
SHORT = "MotionX"  # scorecards and charts
BACKENDS = ("opencv",)  # what produces it (metrics.backends roles): part of the cache key
SUMMARY = "motion activation, amplitude and smoothness"


@dataclass(frozen=True)
class MotionXConfig:
    analysis_fps: float = 8.0         # the one rate every video is analysed at (step 0)
    flow_side: int = 256              # longest side of the luma frames the flow runs on (px)
    flow_method: str = "dis"          # "dis" (DIS preset ULTRAFAST), "dis-fast", "dis-medium", "farneback"
    ema_alpha: float = 0.5            # per analysis sample
    p_inner: float = 95.0             # percentile that normalises the smoothed energy
    p_left: float = 0.3               # quantile of the threshold's base (0.5 = eq. 1's median)
    lam: float = 0.5                  # MAD multiplier
    tau_max: float | None = 0.5       # cap on tau (in units of the p95-normalised energy); None: no cap
    l_min_s: float = 0.3              # shortest active run kept (seconds)
    noise_floor: float = 0.04         # the fastest-moving 10 % of the picture (90th percentile of the
                                      # per-pixel speed) must move at least this fraction of the long side
                                      # per second for a pair to be active
    amp_ref: float = 0.10             # A at which A^ saturates (fraction of the long side per second)
    accel_ref: float = 1.0            # relative acceleration at which S^ reaches 0
    accel_trim: float = 0.2           # S from the 20 % trimmed mean of the pairs' relative accelerations
                                      # (0.5: their median, as until 2.0; see `trimmed_mean`)
    move_speed: float = 0.016         # fraction of the long side per second: slower points are not
                                      # "moving" for the smoothness measure (0.25 px a frame at 16 fps, 256 px)
    dup_level: float = 0.0            # mean absolute luma difference (8-bit levels, on the flow grid's image)
                                      # at or under which a frame repeats the one before
    dup_rel: float = 0.3              # ... or under this fraction of the largest difference within 4 frames

    def request(self) -> FrameRequest:
        return FrameRequest("all", max_side=self.flow_side, gray=True)


def requests(cfg: MotionXConfig) -> list[FrameRequest]:
    return [cfg.request()]


class FlowEstimator:
    """Dense optical flow on the estimator's own grid.

    DIS at finest scale s estimates the flow on the frame area-downscaled by 2^s (a 64 px grid for a 256 px
    frame under ULTRAFAST, s = 2) and returns a bilinear upsample of it. We run it at finest scale 0 on that
    same downscaled image (the flow on the grid is bit-identical: the pyramid above it is the same and the
    coarsest scale shifts by s; tested) and read the grid itself: the upsample adds no information, took
    ~7 of DIS's 49 ms for a video's 80 pairs on the 2-core box, and every statistic then ran on 16x the
    points. Flow is in grid px; ``step`` frame px per grid px (DIS's own scaling of its upsample).
    Farneback estimates at every pixel (step 1)."""

    def __init__(self, method: str) -> None:
        import cv2

        self.step = 1
        if method in ("dis", "dis-fast", "dis-medium"):
            preset = {"dis": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "dis-fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                      "dis-medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[method]
            dis = cv2.DISOpticalFlow_create(preset)
            self._shift = dis.getFinestScale()
            self.step = 1 << self._shift
            dis.setFinestScale(0)
            self._calc = lambda a, b: dis.calc(a, b, None)
        elif method == "farneback":
            self._shift = 0
            self._calc = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        else:
            raise ValueError(f"unknown flow method {method!r}")

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """The image the estimator works on (what DIS's own pyramid computes from the frame)."""
        import cv2

        if not self._shift:
            return frame
        h, w = frame.shape[:2]
        return cv2.resize(frame, (w >> self._shift, h >> self._shift), interpolation=cv2.INTER_AREA)

    def calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(h, w, 2) float32 flow from prepared image a to prepared image b, grid px."""
        return self._calc(a, b)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> np.ndarray:
    """(x, y) coordinates of every grid point, (h, w, 2) float32."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([gx, gy])


def magnitude(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sqrt(u^2 + v^2), the same bits on every thread. cv2.magnitude is not: its result moved by an ulp
    between threads, and between calls while other OpenCV work ran, so the streamed and stored paths (and
    two runs of one video) could differ in the last digits."""
    return np.sqrt(u * u + v * v)


@dataclass(frozen=True)
class GridFlow:
    """One flow field on the estimator's grid, with its magnitude (grid px)."""
    uv: np.ndarray                    # (h, w, 2) float32
    u: np.ndarray
    v: np.ndarray
    mag: np.ndarray

    @classmethod
    def of(cls, flow: np.ndarray) -> "GridFlow":
        import cv2

        u, v = cv2.split(flow)
        return cls(flow, u, v, magnitude(u, v))


def rel_accel(f0: GridFlow, f1: GridFlow, move: float, k0: float = 1.0, k1: float = 1.0) -> float | None:
    """Relative flow acceleration along trajectories of the moving points.

    With velocities V0 = k0 F0 and V1 = k1 F1 (k = 1 / time step; 1 for flows over equal steps):
    a(x) = V1(x + F0(x)) - V0(x) (the second flow sampled bilinearly where the point went), x on the grid;
    over the points whose mean speed of the two steps is at least ``move`` (grid px per unit of k): mean |a| /
    mean speed. 0 for constant velocity, about 1 for motion that stops or turns by 60 degrees each step,
    2 for a back-and-forth jitter. None when nothing moves."""
    import cv2

    warped = cv2.remap(f1.uv, _grid(*f0.mag.shape) + f0.uv, None, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    wu, wv = cv2.split(warped)
    speed = 0.5 * (k0 * f0.mag + k1 * magnitude(wu, wv))
    moving = speed >= move
    n_moving = int(np.count_nonzero(moving))
    if n_moving < 0.005 * moving.size:
        return None
    # each step's velocities in units of its own mean speed over the moving points: the measure is the change
    # of the motion's direction and pattern, not of its overall speed, which a frame-rate conversion's uneven
    # steps change (a decimated 15 fps video shows steps of 1/15 and 2/15 s stamped 1/8 s apart)
    s0 = float((k0 * f0.mag)[moving].mean())
    s1 = float((k1 * magnitude(wu, wv))[moving].mean())
    if s0 <= 0 or s1 <= 0:
        return None
    acc = magnitude(k1 * wu / s1 - k0 * f0.u / s0, k1 * wv / s1 - k0 * f0.v / s0)
    return float(acc[moving].mean())


def trimmed_mean(x, trim: float) -> float:
    """Mean of the values left once the ceil(trim * n) lowest and as many highest are dropped (with n <= 4 and
    trim = 0.2: the median).

    Why not the median (up to 2.0): the pairs' relative accelerations spread widely on real footage (0.2 to
    1.9 on the handheld alphabet-blocks clip, where steady moments alternate with shake), and the median of n
    values has a standard error of 1 / (2 f(m) sqrt(n)), f(m) the density at the median, large when the
    values spread with little mass in the middle. With the ~30 active pairs a few seconds give at 8 fps, the
    median moved by 0.16 when that clip came at another frame rate (its samples then fall at other
    instants: other draws of the same motion), and S with it. A mean uses every value (standard error
    sigma / sqrt(n)): the same clip's trimmed mean moved by 0.04. Trimming a fifth at each end (the usual
    default of robust statistics) keeps the median's robustness to the few spikes where a motion starts,
    stops or the flow fails; the plain mean moved S by 0.07 on the graffiti clip, where such spikes are."""
    v = np.sort(np.asarray(x, dtype=np.float64))
    k = int(np.ceil(trim * len(v) - 1e-9))
    if 2 * k >= len(v):
        return float(np.median(v))
    return float(v[k:len(v) - k].mean())


def ema(x: np.ndarray, alpha: float) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float64)
    acc = float(x[0]) if len(x) else 0.0
    for i, v in enumerate(x):
        acc = alpha * float(v) + (1 - alpha) * acc if i else float(v)
        out[i] = acc
    return out


def runs_at_least(mask: np.ndarray, dt: np.ndarray, min_s: float) -> np.ndarray:
    """Keep only runs of True whose total duration (sum of dt) is at least min_s seconds."""
    keep = np.zeros_like(mask, dtype=bool)
    i, n = 0, len(mask)
    while i < n:
        if not mask[i]:
            i += 1
            continue
        j = i
        while j < n and mask[j]:
            j += 1
        if dt[i:j].sum() >= min_s - 1e-9:
            keep[i:j] = True
        i = j
    return keep


class MotionStream:
    """MotionX computed while the video decodes: fed every frame in order (`decode.FrameSink`), it keeps each
    distinct frame as the small image the flow estimator works on (repeats dropped), then `finish` retimes
    and resamples them to the analysis rate (step 0) and runs the flow over the samples. Per pair of samples
    it records the flow energy (mean magnitude, px at flow resolution), the 90th percentile of the per-pixel
    magnitude and the time step; per two consecutive pairs the relative acceleration (used later only where
    both pairs are active)."""

    def __init__(self, cfg: MotionXConfig = MotionXConfig()) -> None:
        self.cfg = cfg
        self._flow = FlowEstimator(cfg.flow_method)
        self._frames: list[tuple[int, float, np.ndarray]] = []   # every frame: (index, time, prepared)
        self._end = 0.0                                # when the last frame stops showing
        self.times: list[float] = []                   # content time of each sample
        self.index: list[int] = []                     # source frame index of each sample
        self.energy: list[float] = []                  # per pair, px at flow resolution
        self.q90: list[float] = []
        self.dt: list[float] = []
        self.rel: list[float | None] = []              # rel[t]: pairs t and t + 1
        self.repeats = 0                               # decoded frames that repeated the one before
        self.retimed = False
        self.size: tuple[int, int] | None = None       # (height, width) of the flow frames
        self.grid: tuple[int, int] | None = None       # (height, width) of the estimator's grid
        self.error: str | None = None
        self.n_frames = 0
        self._last: tuple[float, float] | None = None  # (time, interval) of the last decoded frame
        self._finished = False

    def feed(self, index: int, time: float, frame: np.ndarray) -> None:
        self.n_frames += 1
        if self.error is None:
            try:
                self._feed(index, time, frame)
            except Exception as exc:  # recorded, reported by result(); the decode goes on for the others
                self.error = f"{type(exc).__name__}: {exc}"

    def _feed(self, index: int, time: float, frame: np.ndarray) -> None:
        interval = time - self._last[0] if self._last and time > self._last[0] else \
            (self._last[1] if self._last else 1.0 / self.cfg.analysis_fps)
        self._last = (time, interval)
        self._end = time + interval
        img = self._flow.prepare(frame)
        if self.size is None:
            self.size, self.grid = frame.shape[:2], img.shape[:2]
        self._frames.append((index, time, img))

    def _distinct(self) -> tuple[list[tuple[int, float, np.ndarray]], np.ndarray]:
        """The distinct pictures and when each was made. A frame-rate conversion repeats frames at a steady
        rate; re-encoded, a repeat differs from its original by compression noise only, far less than the
        moving video's frames differ (< ``dup_rel`` of the largest difference within 4 frames). It also shows
        each picture first at the output's next frame time, up to one output interval late, which would make
        the pairs' time steps uneven. So when such near-repeats come at a steady rate through the whole video
        (in every 12 frames about as many: a conversion, not a video that stops moving now and then), they
        are dropped and the distinct pictures retimed evenly, as the source made them; otherwise only exact
        repeats (<= ``dup_level``) are dropped and the frames keep their times."""
        fr = self._frames
        d = np.array([float(np.mean(np.abs(a[2].astype(np.int16) - b[2]))) if a[2].shape == b[2].shape else np.inf
                      for a, b in zip(fr[:-1], fr[1:])])
        near = np.array([d[max(0, i - 4):i + 5].max() for i in range(len(d))]) if len(d) else d
        similar = d < self.cfg.dup_rel * near
        windows = [similar[i:i + 12].mean() for i in range(0, len(similar) - 11, 12)]
        conversion = (len(windows) >= 3 and float(np.mean(windows)) >= 0.08
                      and max(windows) - min(windows) <= 0.2)
        repeat = (d <= self.cfg.dup_level) | (similar if conversion else False)
        keep = [fr[0]] + [f for f, r in zip(fr[1:], repeat) if not r]
        self.repeats = int(np.count_nonzero(repeat))
        t = np.array([f[1] for f in keep], np.float64)
        if conversion and len(t) > 1:
            self.retimed = True
            t = t[0] + np.arange(len(t)) * (self._end - t[0]) / len(t)
        return keep, t

    def finish(self) -> None:
        """Resample the distinct frames to the analysis rate and run the flow over the samples; idempotent."""
        if self._finished:
            return
        self._finished = True
        if self.error is not None or not self._frames:
            return
        try:
            self._resample_and_flow()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _resample_and_flow(self) -> None:
        frames, times = self._distinct()
        end = self._end
        step = 1.0 / self.cfg.analysis_fps
        chosen: list[int] = []
        # mid-interval instants: a picture shown from k / 8 s is caught whether the video is the 8 fps
        # original or a conversion whose frames start a little later
        c = times[0] + 0.5 * step
        while c < end - 1e-6:
            i = int(np.searchsorted(times, c + 1e-6, "right")) - 1
            if not chosen or i != chosen[-1]:
                chosen.append(i)
            c += step
        prev_flow: tuple[GridFlow, float] | None = None
        for a, b in zip(chosen[:-1], chosen[1:]):
            dt = float(times[b] - times[a])
            g = GridFlow.of(self._flow.calc(frames[a][2], frames[b][2]))
            k = self._flow.step
            self.energy.append(float(g.mag.mean()) * k)
            # a full sort: np.partition was 5x slower on a still background's many exact zeros
            self.q90.append(float(np.sort(g.mag, axis=None)[int(0.9 * (g.mag.size - 1))]) * k)
            self.dt.append(dt)
            if prev_flow is not None:
                f0, dt0 = prev_flow
                move = self.cfg.move_speed * max(self.size) / k       # grid px per second
                self.rel.append(rel_accel(f0, g, move, 1.0 / dt0, 1.0 / dt))
            prev_flow = (g, dt)
        self.times = [float(times[i]) for i in chosen]
        self.index = [frames[i][0] for i in chosen]

    def result(self, fps: float) -> MetricOutput:
        self.finish()
        return _score(self, fps)


def _score(st: MotionStream, fps: float) -> MetricOutput:
    cfg = st.cfg
    backend = f"opencv-{cfg.flow_method}@{cfg.flow_side}px@{cfg.analysis_fps:g}fps"
    if st.error is not None:
        return MetricOutput.error(f"optical flow failed: {st.error}", backend=backend)
    if len(st.times) < 3:
        return MetricOutput.na(f"needs at least 3 distinct frames at {cfg.analysis_fps:g} fps, the video has "
                               f"{len(st.times)} ({st.n_frames} decoded)", backend=backend)
    side = max(st.size)
    dt = np.asarray(st.dt, dtype=np.float64)
    energy, q90 = np.array(st.energy), np.array(st.q90)
    speed = energy / side / dt                         # fraction of the long side per second
    smooth = ema(speed, cfg.ema_alpha)
    floor_speed = ema(q90 / side / dt, cfg.ema_alpha)
    p = float(np.percentile(smooth, cfg.p_inner))
    norm = smooth / p if p > 1e-12 else np.zeros_like(smooth)
    base = float(np.quantile(norm, cfg.p_left))
    mad = float(np.median(np.abs(norm - np.median(norm))))
    tau = base + cfg.lam * 1.4826 * mad
    if cfg.tau_max is not None:
        tau = min(tau, cfg.tau_max)
    above = (norm >= tau) & (floor_speed >= cfg.noise_floor)
    active = runs_at_least(above, dt, cfg.l_min_s)
    total = float(dt.sum())
    r = float(dt[active].sum()) / total
    amp = float((speed * dt).sum() / total)
    amp_n = min(1.0, amp / cfg.amp_ref)
    # smoothness over consecutive active pairs; per pair, the acceleration into it from the pair before
    smooth_pairs = [None, *st.rel]
    rel = [ra for t, ra in enumerate(st.rel) if active[t] and active[t + 1] and ra is not None]
    if rel:
        r_acc = trimmed_mean(rel, cfg.accel_trim)
        s_raw = 1.0 - r_acc
        s_n = float(np.clip(1.0 - r_acc / cfg.accel_ref, 0.0, 1.0))
    else:
        s_raw, s_n = None, 0.0
    value = (amp_n + s_n + r) / 3.0
    trace = {
        "times": st.times[1:], "index": st.index[1:], "dt": dt, "E": energy, "E_smooth_norm": norm,
        "speed": speed, "q90_speed": floor_speed, "tau": tau, "active": active.astype(int), "A": amp,
        "A_norm": amp_n, "S": s_raw, "S_norm": s_n, "R": r, "noise_floor": cfg.noise_floor,
        "rel_accel_pairs": smooth_pairs, "analysis_fps": cfg.analysis_fps, "source_fps": fps,
        "repeats": st.repeats, "retimed": st.retimed, "flow_size": list(st.size[::-1]),
        "grid_size": list(st.grid[::-1]),
        "rel_accel": rel,
    }
    return MetricOutput(value, backend=backend, trace=clean(trace, 4))


def compute(frames: SampledFrames, cfg: MotionXConfig = MotionXConfig()) -> MetricOutput:
    """MotionX of already decoded frames (the same computation as streaming them through `MotionStream`)."""
    st = MotionStream(cfg)
    for i, t, f in zip(frames.indices.tolist(), frames.times.tolist(), frames.frames):
        st.feed(i, t, f)
    return st.result(frames.fps)


def stream(cfg: MotionXConfig) -> dict[FrameRequest, MotionStream]:
    """The sink the shared decoder feeds (so the flow runs while FFmpeg decodes)."""
    return {cfg.request(): MotionStream(cfg)}


def run(video, case, cfg: MotionXConfig) -> MetricOutput:
    sink = video.sink(cfg.request())
    if sink is not None:
        return sink.result(video.fps)
    return compute(video.get(cfg.request()), cfg)


def opens2v_motion_amplitude(frames_gray: list[np.ndarray]) -> float:
    """Reference for comparison (benchmark): OpenS2V-Eval's motion amplitude as we read it — Farneback
    (0.5, 3, 15, 3, 5, 1.2, 0) on every consecutive pair at full resolution, the flow's signed mean over
    pixels and both components, averaged over pairs (absolute value). Signed: a pan with dx = -dy gives 0."""
    import cv2

    vals = [float(np.mean(cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)))
            for a, b in zip(frames_gray[:-1], frames_gray[1:])]
    return abs(float(np.mean(vals))) if vals else 0.0
