"""MotionXScore: how much, how long and how smoothly a video moves (InnoAds-Bench, eq. 1 and appendix).

Pipeline (see docs/metrics.md for the full definition and every constant):

1. Dense optical flow (OpenCV DIS, preset ULTRAFAST) between consecutive frames, on 8-bit luma downscaled so
   the longest side is ``flow_side`` = 256 px. Every frame is used (VFR-safe: the time step of each pair
   comes from the presentation timestamps). Why 256 px: flow cost grows with the pixel count, all the
   quantities below are normalised by the frame size so they do not depend on it, and motion below a
   quarter pixel at 256 px (one pixel at 1024 px) is under the noise floor anyway.
2. Per-pair motion energy ``E_t`` = mean of the flow *magnitude* (px at flow resolution) over the points
   of the estimator's own grid (DIS ULTRAFAST estimates on a 64 px grid and upsamples it 4x; we read the
   grid, see `FlowEstimator`). The magnitude, never the signed mean: a signed mean cancels, so a diagonal
   pan (dx = -dy) scores 0.
3. ``E~`` = EMA(E, alpha = 0.5) divided by the video's 95th percentile of the EMA (p_inner = 95).
4. Adaptive threshold ``tau = Q_{p_left}(E~) + lambda * 1.4826 * MAD(E~)``, p_left = 0.3, lambda = 0.5.
   Eq. 1 of the paper writes the median (p_left = 0.5); the appendix uses 0.3: ``p_left`` is a parameter.
   tau is capped at tau_max = 0.5 (half the p95-normalised energy): for sustained motion at a constant
   speed E~ is ~1 everywhere, tau lands on ~1 too, and noise alone would flip half the pairs below it
   (a steady pan scored as half-active). With the cap, steady motion is active throughout.
5. Absolute noise floor: a pair is active only if also the EMA of the 90th percentile of its per-pixel
   speed is at least ``noise_floor`` = 4 % of the frame's long side per second. The relative threshold
   alone calls encoder noise "motion" in a static video (its E~ is normalised noise); with the floor a
   static or near-static video has R = 0. A percentile rather than the mean, so that a product moving
   over a still background (a small part of the frame) still counts as motion.
6. Active pairs form runs; runs shorter than L_min = 0.3 s are dropped. R = active pairs / (T - 1).
7. A = mean speed (fraction of the long side per second); A^ = min(1, A / amp_ref).
8. S = 1 - median relative flow acceleration along trajectories over active pairs (see `rel_accel`); a video
   without active motion has S^ = 0: smoothness is credited for motion that happens, not for stillness.
9. MotionX = (A^ + S^ + R^) / 3, R^ = R.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .config import MetricOutput, clean
from .decode import FrameRequest, SampledFrames

NAME = "motionx"
VERSION = "1.2"            # 1.1: E_t over every second pixel; 1.2: on the flow's own grid (docs/metrics.md)
REFERENCE = False        # video-level metric: triple_id = 0


@dataclass(frozen=True)
class MotionXConfig:
    flow_side: int = 256              # longest side of the luma frames the flow runs on (px)
    flow_method: str = "dis"          # "dis" (DIS preset ULTRAFAST), "dis-fast", "dis-medium", "farneback"
    ema_alpha: float = 0.5
    p_inner: float = 95.0             # percentile that normalises the smoothed energy
    p_left: float = 0.3               # quantile of the threshold's base (0.5 = eq. 1's median)
    lam: float = 0.5                  # MAD multiplier
    tau_max: float = 0.5              # cap on tau (in units of the p95-normalised energy); see step 4
    l_min_s: float = 0.3              # shortest active run kept (seconds)
    noise_floor: float = 0.04         # the fastest-moving 10 % of the picture (90th percentile of the
                                      # per-pixel speed) must move at least this fraction of the long side
                                      # per second for a pair to be active
    amp_ref: float = 0.10             # A at which A^ saturates (fraction of the long side per second)
    accel_ref: float = 1.0            # relative acceleration at which S^ reaches 0
    move_px: float = 0.25             # px per frame at flow resolution: pixels slower than this are not
                                      # "moving" for the smoothness measure

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


def rel_accel(f0: GridFlow, f1: GridFlow, move: float) -> float | None:
    """Relative flow acceleration along trajectories of the moving points.

    a(x) = F1(x + F0(x)) - F0(x) (the second flow sampled bilinearly where the point went), x on the grid;
    over the points whose mean speed of the two steps is at least ``move`` (grid px): mean |a| / mean
    speed. 0 for constant velocity, about 1 for motion that stops or turns by 60 degrees each frame,
    2 for a back-and-forth jitter. None when nothing moves."""
    import cv2

    warped = cv2.remap(f1.uv, _grid(*f0.mag.shape) + f0.uv, None, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    wu, wv = cv2.split(warped)
    speed = 0.5 * (f0.mag + magnitude(wu, wv))
    moving = speed >= move
    n_moving = int(np.count_nonzero(moving))
    if n_moving < 0.005 * moving.size:
        return None
    acc = magnitude(wu - f0.u, wv - f0.v)
    return float(acc[moving].mean() / speed[moving].mean())


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
    """MotionX computed while the video decodes: fed every frame in order (`decode.FrameSink`), it keeps
    two frames and two flows, never the whole video. Per consecutive pair it records the motion energy
    E_t (mean flow magnitude, px at flow resolution) and the 90th percentile of the per-pixel magnitude;
    per two consecutive pairs the relative acceleration (used later only where both pairs are active)."""

    def __init__(self, cfg: MotionXConfig = MotionXConfig()) -> None:
        self.cfg = cfg
        self._flow = FlowEstimator(cfg.flow_method)
        self._prev: np.ndarray | None = None          # the previous frame, prepared for the estimator
        self._prev_flow: GridFlow | None = None
        self.times: list[float] = []
        self.energy: list[float] = []
        self.q90: list[float] = []
        self.rel: list[float | None] = []          # rel[t]: pairs t and t + 1
        self.size: tuple[int, int] | None = None   # (height, width) of the flow frames
        self.grid: tuple[int, int] | None = None   # (height, width) of the estimator's grid
        self.error: str | None = None
        self.n_frames = 0

    def feed(self, index: int, time: float, frame: np.ndarray) -> None:
        self.n_frames += 1
        if self.error is None:
            try:
                self._feed(time, frame)
            except Exception as exc:  # recorded, reported by result(); the decode goes on for the others
                self.error = f"{type(exc).__name__}: {exc}"

    def _feed(self, time: float, frame: np.ndarray) -> None:
        self.times.append(time)
        img = self._flow.prepare(frame)
        if self._prev is None:
            self.size, self.grid = frame.shape[:2], img.shape[:2]
        else:
            g = GridFlow.of(self._flow.calc(self._prev, img))
            step = self._flow.step
            self.energy.append(float(g.mag.mean()) * step)
            # a full sort: np.partition was 5x slower on a still background's many exact zeros
            self.q90.append(float(np.sort(g.mag, axis=None)[int(0.9 * (g.mag.size - 1))]) * step)
            if self._prev_flow is not None:
                self.rel.append(rel_accel(self._prev_flow, g, self.cfg.move_px / step))
            self._prev_flow = g
        self._prev = img

    def result(self, fps: float) -> MetricOutput:
        return _score(self, fps)


def _score(st: MotionStream, fps: float) -> MetricOutput:
    cfg = st.cfg
    backend = f"opencv-{cfg.flow_method}@{cfg.flow_side}px"
    if st.n_frames < 3:
        return MetricOutput.na(f"needs at least 3 frames, the video has {st.n_frames}", backend=backend)
    if st.error is not None:
        return MetricOutput.error(f"optical flow failed: {st.error}", backend=backend)
    side = max(st.size)
    times = np.asarray(st.times, dtype=np.float64)
    dt = np.diff(times)
    dt = np.where(dt > 0, dt, 1.0 / max(fps, 1e-6))
    energy, q90 = np.array(st.energy), np.array(st.q90)
    speed = energy / side / dt                         # fraction of the long side per second
    smooth = ema(energy, cfg.ema_alpha)
    floor_speed = ema(q90 / side / dt, cfg.ema_alpha)
    p = float(np.percentile(smooth, cfg.p_inner))
    norm = smooth / p if p > 1e-12 else np.zeros_like(smooth)
    base = float(np.quantile(norm, cfg.p_left))
    mad = float(np.median(np.abs(norm - np.median(norm))))
    tau = min(base + cfg.lam * 1.4826 * mad, cfg.tau_max)
    above = (norm >= tau) & (floor_speed >= cfg.noise_floor)
    active = runs_at_least(above, dt, cfg.l_min_s)
    r = float(active.sum()) / len(energy)
    amp = float(speed.mean())
    amp_n = min(1.0, amp / cfg.amp_ref)
    # smoothness over consecutive active pairs
    rel = [ra for t, ra in enumerate(st.rel) if active[t] and active[t + 1] and ra is not None]
    if rel:
        s_raw = 1.0 - float(np.median(rel))
        s_n = float(np.clip(1.0 - float(np.median(rel)) / cfg.accel_ref, 0.0, 1.0))
    else:
        s_raw, s_n = None, 0.0
    value = (amp_n + s_n + r) / 3.0
    trace = {
        "times": times[1:], "E": energy, "E_smooth_norm": norm, "speed": speed, "q90_speed": floor_speed, "tau": tau,
        "active": active.astype(int), "A": amp, "A_norm": amp_n, "S": s_raw, "S_norm": s_n, "R": r,
        "noise_floor": cfg.noise_floor, "flow_size": list(st.size[::-1]), "grid_size": list(st.grid[::-1]),
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
