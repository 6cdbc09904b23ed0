"""Reading media safely: hashing, probing images and videos with real decoders, bounded memory.

Every failure is a `MediaError` whose message says what is wrong with which file, so a batch can
report it and go on.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif", ".webp"}
# 8K (7680×4320 = 33 Mpx) and large posters pass; a 20000×20000 bomb (400 Mpx) does not.
MAX_IMAGE_PIXELS = 100_000_000
MAX_VIDEO_PIXELS = 8192 * 8192


class MediaError(Exception):
    """A file that cannot be used, with a human reason."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_readable_file(path: Path) -> int:
    if not path.exists():
        raise MediaError("no such file")
    if not path.is_file():
        raise MediaError("not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise MediaError("permission denied")
    return size


def _open_image(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"refused as a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise MediaError("not a recognised image format (corrupt or wrong extension)") from None
    except OSError as exc:
        raise MediaError(f"cannot read image: {exc}") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise MediaError(f"image is {w}×{h} = {w * h / 1e6:.0f} Mpx, over the {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx "
                         "limit (decompression-bomb guard)")
    if w < 1 or h < 1:
        raise MediaError(f"image has no pixels ({w}×{h})")
    return im


def frame_count_of_image(path: Path) -> int:
    """Frames in an image file (animated GIF/WebP > 1); 1 for still images."""
    with _open_image(path) as im:
        return int(getattr(im, "n_frames", 1) or 1)


def probe_image(path: str | Path) -> dict[str, Any]:
    """Header and full decode check of an image. Returns the catalogue record (without sha256)."""
    path = Path(path)
    size = check_readable_file(path)
    im = _open_image(path)
    try:
        fmt = (im.format or path.suffix.lstrip(".")).upper()
        mode = im.mode
        has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
        w, h = im.size
        try:
            im.load()  # truncated or corrupt data fails here, not later in a metric
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(f"image data is truncated or corrupt: {exc}") from None
        orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
        if orientation in (5, 6, 7, 8):
            w, h = h, w
    finally:
        im.close()
    return {"bytes": size, "format": fmt, "width": w, "height": h, "mode": mode, "has_alpha": has_alpha}


def load_image(path: str | Path, *, keep_alpha: bool = False) -> np.ndarray:
    """Decode to uint8 RGB (or RGBA) HxWxC with EXIF rotation applied; any mode, any bit depth."""
    path = Path(path)
    check_readable_file(path)
    im = _open_image(path)
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            peak = 65535.0 if arr.max() > 255 else 255.0
            im = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8), "L")
        has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        target = "RGBA" if keep_alpha and has_alpha else "RGB"
        return np.asarray(im.convert(target))
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"cannot decode image: {exc}") from None
    finally:
        im.close()


def probe_animated(path: str | Path) -> dict[str, Any]:
    """Probe an animated GIF/WebP with Pillow (FFmpeg cannot decode animated WebP)."""
    path = Path(path)
    size = check_readable_file(path)
    durations = []
    with _open_image(path) as im:
        fmt = (im.format or "").lower()
        try:
            for i in range(int(getattr(im, "n_frames", 1))):
                im.seek(i)
                im.load()
                durations.append(float(im.info.get("duration") or 100) / 1000.0)
        except (OSError, EOFError, ValueError) as exc:
            raise MediaError(f"animation frame {len(durations)} cannot be decoded: {exc}") from None
        width, height = im.size
    duration = sum(durations)
    return {"bytes": size, "container": fmt, "codec": fmt, "fps": len(durations) / duration if duration else None,
            "frame_count": len(durations), "width": width, "height": height, "duration": duration}


def probe_video(path: str | Path) -> dict[str, Any]:
    """Probe a video with FFmpeg (PyAV): stream facts, and one decoded frame to prove it plays."""
    import av  # deferred: only ingest and decode need it

    path = Path(path)
    size = check_readable_file(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(f"not a readable video: {exc}") from None
    try:
        streams = container.streams.video
        if not streams:
            raise MediaError("contains no video stream")
        st = streams[0]
        cc = st.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width * height > MAX_VIDEO_PIXELS:
            raise MediaError(f"video frame {width}×{height} is over the {MAX_VIDEO_PIXELS // 1_000_000} Mpx limit")
        rate = st.average_rate or st.guessed_rate or st.base_rate
        fps = float(rate) if rate else None
        duration = None
        if st.duration is not None and st.time_base is not None:
            duration = float(st.duration * st.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        decoded = 0
        try:
            for frame in container.decode(st):
                width, height = frame.width, frame.height
                decoded = 1
                break
        except av.error.FFmpegError as exc:
            raise MediaError(f"video data cannot be decoded: {exc}") from None
        if not decoded:
            raise MediaError("video stream has no decodable frame")
        frames = int(st.frames or 0)
        if frames <= 0:
            frames = _count_packets(path)
        if (duration is None or duration <= 0) and fps:
            duration = frames / fps
        if (fps is None or fps <= 0) and duration:
            fps = frames / duration
        return {"bytes": size, "container": container.format.name.split(",")[0], "codec": cc.name,
                "fps": fps, "frame_count": frames, "width": width, "height": height, "duration": duration}
    finally:
        container.close()


def _count_packets(path: Path) -> int:
    import av

    with av.open(str(path), metadata_errors="ignore") as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)
