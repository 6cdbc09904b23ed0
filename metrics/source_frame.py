"""Where the source image is in a generated video: the generator's resize (plain, between black bars, or
scaled to cover and centre-cropped) and the sampled frame that shows the source image itself, whose product
mask is then the source image's (image-to-video models open on the image, or reach it a few frames in).

ProductScore's tracking starts from that frame (`anchor`): the source image's mask carried there, tracked
forwards to the end and backwards to frame 0. A video with no such frame has its first frame segmented with
the source mask's box, mapped (`map_box`). Measured in docs/metrics.md, ProductScore step 2.
"""
from __future__ import annotations

import numpy as np

from .geometry import mask_box

SHIFT = 8        # px at the masks' side (384): the largest move searched around the mapped position
TOL = 6.0        # mean grey-level difference of the product region, both blurred at sigma 1
MARGIN = 0.1     # of the mask's box: the product region takes in its outline against the background


def letterbox(frame: np.ndarray, dark: float = 16.0) -> tuple[int, int, int, int]:
    """The picture area (x0, y0, x1, y1) inside black bars a generator added to keep the image's aspect."""
    g = frame.mean(axis=2) if frame.ndim == 3 else frame.astype(np.float64)
    rows = np.flatnonzero(g.max(axis=1) > dark)
    cols = np.flatnonzero(g.max(axis=0) > dark)
    if not len(rows) or not len(cols):
        return 0, 0, g.shape[1], g.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def mapping(ref_shape: tuple[int, int], frame: np.ndarray) -> tuple[float, float, float, float]:
    """(sx, sy, ox, oy): where the generator's resize puts the reference image's pixel (x, y) in the frame,
    (x * sx + ox, y * sy + oy). See `map_box`."""
    rh, rw = ref_shape
    fh, fw = frame.shape[:2]
    px0, py0, px1, py1 = letterbox(frame)
    pw, ph = px1 - px0, py1 - py0
    if abs(rw / rh - fw / fh) < 0.05 * (fw / fh):
        return fw / rw, fh / rh, 0.0, 0.0
    if (pw < fw or ph < fh) and abs(rw / rh - pw / ph) < 0.05 * (pw / ph):
        return pw / rw, ph / rh, float(px0), float(py0)
    s_ = max(fw / rw, fh / rh)
    return s_, s_, (fw - rw * s_) / 2.0, (fh - rh * s_) / 2.0


def map_box(box, ref_shape: tuple[int, int], frame: np.ndarray):
    """The reference image's box in the video frame, through the generator's resize: the picture is the
    image scaled to fit inside black bars when the frame has bars (letterbox), else scaled to cover the frame
    and centre-cropped (what image-to-video models do when the aspect ratio changes); a plain resize when the
    aspect ratios agree. None when less than half of the box lands in the frame."""
    fh, fw = frame.shape[:2]
    sx, sy, ox, oy = mapping(ref_shape, frame)
    x0, y0, x1, y1 = box
    m = [x0 * sx + ox, y0 * sy + oy, x1 * sx + ox, y1 * sy + oy]
    c = [max(0.0, m[0]), max(0.0, m[1]), min(float(fw), m[2]), min(float(fh), m[3])]
    full = (m[2] - m[0]) * (m[3] - m[1])
    if c[2] <= c[0] or c[3] <= c[1] or full <= 0 or (c[2] - c[0]) * (c[3] - c[1]) < 0.5 * full:
        return None
    return tuple(int(round(v)) for v in c)


def _blur(g: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.0)


class SourceMatch:
    """The source image's product region, mapped into frames of one video's geometry; `match(frame)` finds
    it there within `shift` px: (the mask moved to the best match, the region's mean grey-level difference
    there), or (None, inf) when the mask does not land in the frame."""

    def __init__(self, image: np.ndarray, ref: np.ndarray, frame: np.ndarray, shift: int = SHIFT) -> None:
        import cv2

        fh, fw = frame.shape[:2]
        sx, sy, ox, oy = mapping(ref.shape, frame)
        rh, rw = ref.shape
        size = (max(1, round(rw * sx)), max(1, round(rh * sy)))
        place = np.float32([[1, 0, ox], [0, 1, oy]])

        def mapped(a: np.ndarray) -> np.ndarray:
            # scaled by area (a bilinear warp at 1/2.5 aliases), then placed
            return cv2.warpAffine(cv2.resize(a, size, interpolation=cv2.INTER_AREA), place, (fw, fh),
                                  flags=cv2.INTER_LINEAR)

        self.shape = (fh, fw)
        self.mask = mapped(ref.astype(np.uint8) * 255) > 127
        self.tmpl = None
        bb = mask_box(self.mask)
        if bb is None:
            return
        x0, y0, x1, y1 = bb
        mx, my = max(2, round((x1 - x0) * MARGIN)), max(2, round((y1 - y0) * MARGIN))
        self.region = (max(0, x0 - mx), max(0, y0 - my), min(fw, x1 + mx), min(fh, y1 + my))
        x0, y0, x1, y1 = self.region
        self.window = (max(0, x0 - shift), max(0, y0 - shift), min(fw, x1 + shift), min(fh, y1 + shift))
        self.tmpl = _blur(mapped(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)))[y0:y1, x0:x1]

    def match(self, frame: np.ndarray) -> tuple[np.ndarray | None, float]:
        import cv2

        if self.tmpl is None or self.tmpl.size == 0 or frame.shape[:2] != self.shape:
            return None, float("inf")
        wx0, wy0, wx1, wy1 = self.window
        # blurred with a few pixels around it, as the template was (blurred whole, then cut)
        fh, fw = self.shape
        px0, py0, px1, py1 = max(0, wx0 - 4), max(0, wy0 - 4), min(fw, wx1 + 4), min(fh, wy1 + 4)
        grey = cv2.cvtColor(np.ascontiguousarray(frame[py0:py1, px0:px1]), cv2.COLOR_RGB2GRAY)
        win = _blur(grey)[wy0 - py0:wy1 - py0, wx0 - px0:wx1 - px0]
        th, tw = self.tmpl.shape
        if win.shape[0] < th or win.shape[1] < tw:
            return None, float("inf")
        _, _, (bx, by), _ = cv2.minMaxLoc(cv2.matchTemplate(win, self.tmpl, cv2.TM_SQDIFF))
        diff = float(np.abs(win[by:by + th, bx:bx + tw] - self.tmpl).mean())
        dx, dy = wx0 + bx - self.region[0], wy0 + by - self.region[1]
        moved = cv2.warpAffine(self.mask.astype(np.uint8), np.float32([[1, 0, dx], [0, 1, dy]]),
                               (self.shape[1], self.shape[0]), flags=cv2.INTER_NEAREST) > 0
        return moved, diff


def anchor(image: np.ndarray, ref: np.ndarray, frames: list[np.ndarray], tol: float = TOL
           ) -> tuple[int, np.ndarray] | None:
    """The first sampled frame that shows the source image, with the source mask carried there; None when no
    frame does. The image is mapped into the frames as `map_box` maps it; its product region (the mask's box,
    10 % margin) is searched within SHIFT px of there, and a frame shows the source image when the region
    then differs from it by at most `tol` grey levels on average (both blurred at sigma 1: codec and
    generator noise; a turned, restyled or displaced product differs more)."""
    if not frames:
        return None
    src = SourceMatch(image, ref, frames[0])
    for i, f in enumerate(frames):
        mask, diff = src.match(f)
        if mask is not None and diff <= tol:
            return i, mask
    return None
