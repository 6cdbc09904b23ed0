"""The one video writer: RGB frames -> an H.264 MP4 that browsers play (the demo's videos, the tests' clips,
the review app's overlay videos)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def write_mp4(path: str | Path, frames: list[np.ndarray], fps: float = 16, *, crf: int = 20,
              threads: int | None = 1) -> None:
    """H.264 yuv420p MP4 of RGB frames at `fps` (even dimensions enforced: an odd last row or column is
    cropped). `threads` is x264's thread count (None: x264 chooses); one thread keeps encoding several
    videos at once cheap and its output the same on any machine."""
    import av

    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2
    options = {"crf": str(crf), "preset": "ultrafast"}
    if threads is not None:
        options["threads"] = str(threads)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w2, h2
        stream.pix_fmt = "yuv420p"
        stream.options = options
        for arr in frames:
            fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr[:h2, :w2]), format="rgb24")
            for packet in stream.encode(fr):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
