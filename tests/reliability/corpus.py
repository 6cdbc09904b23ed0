"""A corpus of hostile or odd inputs, generated on demand (never committed), with the expected outcome of
ingesting each: ("image" | "video", checks) for a correct result, or ("error", substring of the message)."""
from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from media.encode import write_mp4

SQLISH = "'); DROP TABLE images; --"


def _frames(n: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3), np.uint8)
    return [np.roll(base, 2 * t, axis=1) for t in range(n)]


def _vfr_mp4(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=30)
        st.width = st.height = 64
        st.pix_fmt = "yuv420p"
        st.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i, arr in enumerate(_frames(30)):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 20 if i % 3 else 120  # irregular gaps: 50 fps bursts and 8 fps pauses
            for p in st.encode(frame):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


def _audio_only_mp4(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for p in st.encode(frame):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


def _exif_rotated(path: Path) -> None:
    im = Image.new("RGB", (60, 40), (10, 120, 200))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90°: shown as 40×60
    im.save(path, exif=exif)


def build(root: Path) -> tuple[Path, dict[str, tuple]]:
    """Write the corpus under root/media (+ root/outside for escape targets); return (media dir, expectations)."""
    media, outside = root / "media", root / "outside"
    media.mkdir(parents=True)
    outside.mkdir()
    exp: dict[str, tuple] = {}

    def case(name: str, outcome: tuple, make) -> None:
        make(media / name)
        exp[name] = outcome

    case("corrupt.mp4", ("error", "not a recognised image or video"), lambda p: p.write_bytes(os.urandom(4096)))
    case("truncated.mp4", ("error", "video"), lambda p: (write_mp4(p, _frames(40, 96)),
                                                        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])))
    case("zero.mp4", ("error", "empty file"), lambda p: p.write_bytes(b""))
    case("zero.png", ("error", "empty file"), lambda p: p.write_bytes(b""))
    case("html.mp4", ("error", "not a recognised"), lambda p: p.write_text("<html><body>hi</body></html>"))
    case("text.png", ("error", "not a recognised"), lambda p: p.write_text("just text"))
    case("audio_only.mp4", ("error", "no video stream"), _audio_only_mp4)
    case("png_named.mp4", ("image", {"width": 50}), lambda p: Image.new("RGB", (50, 20)).save(p, format="PNG"))
    case("mp4_named.jpg", ("video", {"frame_count": 6}), lambda p: write_mp4(p, _frames(6)))
    case("one_frame.mp4", ("video", {"frame_count": 1}), lambda p: write_mp4(p, _frames(1)))
    case("vfr.mp4", ("video", {"frame_count": 30}), _vfr_mp4)
    case("ten_minutes.mp4", ("video", {"duration_min": 599.0}),
         lambda p: write_mp4(p, [f for f in _frames(6, 32) for _ in range(500)], fps=5))
    case("image_8k.png", ("image", {"width": 7680, "height": 4320}),
         lambda p: Image.new("RGB", (7680, 4320), (20, 30, 40)).save(p, compress_level=1))
    case("bomb.png", ("error", "decompression"), lambda p: Image.new("1", (20000, 20000)).save(p))
    case("cmyk.jpg", ("image", {"mode": "CMYK"}), lambda p: Image.new("CMYK", (40, 40), (0, 90, 200, 10)).save(p))
    case("gray16.png", ("image", {"width": 30}),
         lambda p: Image.fromarray(np.full((30, 30), 50000, np.uint16)).save(p))
    case("palette.png", ("image", {"mode": "P"}), lambda p: Image.new("P", (20, 20), 7).save(p))
    case("palette_alpha.png", ("image", {"has_alpha": True}),
         lambda p: Image.new("P", (20, 20), 0).save(p, transparency=0))
    case("rgba_cutout.png", ("image", {"has_alpha": True}), lambda p: Image.new("RGBA", (20, 20), (1, 2, 3, 0)).save(p))
    case("exif_rotated.jpg", ("image", {"width": 40, "height": 60}), _exif_rotated)
    case("one_pixel.png", ("image", {"width": 1, "height": 1}), lambda p: Image.new("RGB", (1, 1)).save(p))
    case("truncated.jpg", ("error", "truncated or corrupt"),
         lambda p: (Image.fromarray(_frames(1, 256)[0]).save(p, quality=95), p.write_bytes(p.read_bytes()[:2500])))
    case("animated.gif", ("video", {"frame_count": 5}), lambda p: _anim(p, "GIF"))
    case("animated.webp", ("video", {"frame_count": 5}), lambda p: _anim(p, "WEBP"))
    case("still.webp", ("image", {"format": "WEBP"}), lambda p: Image.new("RGB", (30, 30), "blue").save(p))
    case("商品 广告 ✓.png", ("image", {}), lambda p: Image.new("RGB", (33, 33), "green").save(p))
    case("name with  spaces .png", ("image", {}), lambda p: Image.new("RGB", (34, 34), "red").save(p))
    long_name = "l" * 251 + ".png"
    case(long_name, ("image", {}), lambda p: Image.new("RGB", (35, 35), "gray").save(p))
    bad_name = os.fsdecode(b"bad\xff\xfe.png")
    case(bad_name, ("error", "not valid UTF-8"), lambda p: Image.new("RGB", (36, 36), "pink").save(p, format="PNG"))
    Image.new("RGB", (37, 37), "yellow").save(outside / "secret.png")
    case("escape_link.png", ("error", "outside the media root"), lambda p: os.symlink(outside / "secret.png", p))
    case("dangling_link.png", ("error", "no such file"), lambda p: os.symlink(media / "gone.png", p))
    # text-field hostility goes through a manifest
    case("ref.png", ("image", {}), lambda p: Image.new("RGB", (38, 38), "purple").save(p))
    case("clip.mp4", ("video", {}), lambda p: write_mp4(p, _frames(8)))
    rows = [
        {"image": "ref.png", "video": "clip.mp4", "prompt": SQLISH, "model": SQLISH, "product": SQLISH,
         "category": SQLISH},
        {"image": "ref.png", "video": "clip.mp4", "prompt": "p" * 100_000, "model": "LongPromptModel"},
        {"image": "../outside/secret.png", "video": "clip.mp4", "prompt": "escape"},
        {"image": "../../../../etc/passwd", "video": "clip.mp4", "prompt": "escape 2"},
        [1, 2, 3],
    ]
    manifest = root / "manifest_dir"
    manifest.mkdir()
    for f in ("ref.png", "clip.mp4"):
        os.link(media / f, manifest / f)
    (outside / "note.txt").write_text("not media")
    (manifest / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return media, exp


def _anim(path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (32, 32), (i * 50, 20, 200 - i * 30)) for i in range(5)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=80, loop=0)
