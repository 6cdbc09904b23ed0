"""Overlays drawn for people, as pure functions of a frame and the overlay data (no files, no models):
the product mask as an outline (media.mask_draw), the OCR boxes coloured by text segment with their text, and
a frame counter. The overlay data is {'masks': {frame: bool HxW}, 'ocr': {frame: [box]}, 'sources': {...}},
frames being source frame indices as media.decode numbers them; a frame without data of its own shows the
nearest frame's."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from media.mask_draw import draw_mask

log = logging.getLogger(__name__)

SEGMENT_COLOURS = [(0, 200, 255), (255, 200, 0), (120, 255, 80), (255, 90, 90), (190, 120, 255), (255, 150, 40),
                   (0, 255, 180), (255, 255, 255)]
SPURIOUS_COLOUR = (255, 60, 60)    # reported spurious text
CANDIDATE_COLOUR = (170, 170, 170)  # an OCR reading linked to no segment, not persistent enough to report
# Segmenters whose masks are shown by default; the classical fallback's are hidden until asked for.
FALLBACK_SEGMENTERS = ("classical-grabcut-v1",)
CJK_FONT_PATHS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
                  "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def nearest(d: dict[int, Any], i: int) -> Any:
    """The value at frame i, else at the frame nearest to it (None when there is none)."""
    if not d:
        return None
    if i in d:
        return d[i]
    keys = sorted(d)
    j = int(np.searchsorted(keys, i))
    cands = [keys[c] for c in (j - 1, j) if 0 <= c < len(keys)]
    return d[min(cands, key=lambda k: abs(k - i))]


_FONT_CACHE: dict[int, ImageFont.ImageFont] = {}
_cjk_path: list[str | None] = []


def cjk_font_path() -> str | None:
    """A font file with Chinese glyphs: the known Debian paths (fonts-noto-cjk, fonts-wqy-*), else what
    fontconfig lists for Chinese; None (and one warning) when there is none."""
    if not _cjk_path:
        found = next((p for p in CJK_FONT_PATHS if Path(p).is_file()), None)
        if found is None:
            import subprocess
            try:
                r = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=10)
                files = sorted(line.split(":")[0].strip() for line in r.stdout.splitlines() if line.strip())
                found = next((f for f in files if Path(f).is_file()), None)
            except (OSError, subprocess.SubprocessError):
                found = None
        if found is None:
            log.warning("no font with Chinese glyphs found (looked at %s and `fc-list :lang=zh-cn`): OCR labels "
                        "in overlays fall back to Pillow's default font, which draws Chinese as empty boxes. "
                        "Install Debian's fonts-noto-cjk (`make fonts`).", ", ".join(CJK_FONT_PATHS))
        _cjk_path.append(found)
    return _cjk_path[0]


def label_font(size: int) -> ImageFont.ImageFont:
    """The labels' font at `size` px (cjk_font_path, else Pillow's default), cached."""
    if size not in _FONT_CACHE:
        path = cjk_font_path()
        try:
            _FONT_CACHE[size] = ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)
        except OSError:
            _FONT_CACHE[size] = ImageFont.load_default(size=size)
    return _FONT_CACHE[size]


def mask_is_fallback(ov: dict[str, Any]) -> bool:
    """Whether the overlay's mask was made by the classical fallback (hidden unless asked for)."""
    src = str((ov.get("sources") or {}).get("mask") or "")
    return any(name in src for name in FALLBACK_SEGMENTERS)


def draw_frame(frame: np.ndarray, i: int, n_frames: int, ov: dict[str, Any], layers: set[str],
               scale: float = 1.0) -> np.ndarray:
    """Draw the chosen layers ('mask', 'ocr', 'counter') on one RGB frame; scale maps source px -> frame px.
    A mask made by the classical fallback is drawn only with the extra layer 'mask_fallback'."""
    h, w = frame.shape[:2]
    out = frame
    if "mask" in layers and (not mask_is_fallback(ov) or "mask_fallback" in layers):
        m = nearest(ov.get("masks", {}), i)
        if m is not None:
            if m.shape != (h, w):
                big = Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.Resampling.BILINEAR)
                m = np.asarray(big) > 127
            out = draw_mask(out, m)
    im = Image.fromarray(out)
    d = ImageDraw.Draw(im)
    if "ocr" in layers:
        boxes = nearest(ov.get("ocr", {}), i) or []
        for b in boxes:
            seg = b.get("segment", b.get("segment_id"))
            # reported spurious text (persistent, not in the ad: a watermark, an invented caption) is red; a
            # one-off OCR reading linked to nothing is grey (traces before TSScore 1.2 say neither: red)
            if b.get("spurious") or ((seg is None or seg == -1) and "spurious" not in b):
                col = SPURIOUS_COLOUR
            elif seg is None or seg == -1:
                col = CANDIDATE_COLOUR
            else:
                col = SEGMENT_COLOURS[int(seg) % len(SEGMENT_COLOURS)]
            q = b.get("quad") or b.get("box")
            if q is None:
                continue
            q = np.asarray(q, float)
            if q.shape == (4,):
                x0, y0, x1, y1 = q
                q = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            pts = [(float(x) * scale, float(y) * scale) for x, y in q.reshape(-1, 2)]
            d.polygon(pts, outline=col, width=2)
            txt = str(b.get("text", ""))[:28]
            if txt:
                fs = max(10, h // 36)
                tx, ty = pts[0][0], max(0, pts[0][1] - fs - 3)
                font = label_font(fs)
                d.rectangle([tx, ty, tx + d.textlength(txt, font=font) + 4, ty + fs + 2], fill=(0, 0, 0))
                d.text((tx + 2, ty), txt, font=font, fill=col)
    if "counter" in layers:
        fs = max(12, h // 24)
        label = f"frame {i + 1}/{n_frames}"
        tw = d.textlength(label, font=label_font(fs))
        d.rectangle([6, 6, 14 + tw, 10 + fs + 4], fill=(0, 0, 0))
        d.text((10, 8), label, font=label_font(fs), fill=(255, 255, 255))
    return np.asarray(im)
