"""Known product masks of the demo generator's videos, for tracking IoU (tests, bench/bench_seg.py)."""
from __future__ import annotations

import numpy as np
from PIL import Image


def demo_video_truth(idx: int, behaviour: str, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The demo generator's frames for (product idx, behaviour) and each frame's known product mask (the
    sprite's alpha where it was pasted, minus the text drawn over it). Only the behaviours that keep the
    camera still (no pan or zoom) are known this way."""
    import math

    from curation import demo
    if behaviour not in ("product_drift", "colour_change", "smooth", "static", "text_stays"):
        raise ValueError(f"no known masks for {behaviour!r}")
    size, n = demo.SIZE, demo.N_FRAMES
    frames = demo.render_video_frames(idx, behaviour, seed, size)
    sprite = demo.product_sprite(demo.PRODUCTS[idx].shape, demo.PRODUCT_COLOURS[idx % len(demo.PRODUCT_COLOURS)],
                                 int(size * 0.62))
    text = np.asarray(demo._text_layer(idx, size, False).getchannel("A")) > 127
    masks = []
    for t in range(n):
        u = t / (n - 1)
        ox, oy = (size - sprite.width) / 2, size * 0.18
        if behaviour in ("smooth", "text_stays"):
            ox += math.sin(2 * math.pi * u) * size * 0.06
            oy += math.sin(4 * math.pi * u) * size * 0.015
        elif behaviour == "product_drift":
            ox += u * size * 0.55
            oy += u * size * 0.1
        layer = Image.new("L", (size, size), 0)
        layer.paste(sprite.getchannel("A"), (int(round(ox)), int(round(oy))))
        masks.append((np.asarray(layer) > 127) & ~text)
    return frames, masks
