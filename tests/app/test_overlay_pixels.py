"""Rendered overlay content: the product mask and the OCR boxes the Videos tab draws into a frame land where the
metric traces stored in DuckDB say, and nowhere else.

A demo video with text is scored for real (ProductScore, TSScore); the frame the app renders (the selected-frame
JPEG and the overlay MP4 of the player) is compared pixel by pixel with the same frame decoded straight from
the source file: on the outline of the trace's product polygon the mask colour, inside the product and
everywhere away from the drawn layers the source pixels unchanged (the product's own colours are never tinted),
on each trace box's outline the box colour."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
VIDEO = "videos/case12_a_text_stays.mp4"     # a jar under a headline and a tagline that stay put
MASK_LINE = (255, 45, 140)                  # the product outline's colour (media/mask_draw.py)
FALLBACK_SEGMENTER = "classical-grabcut"    # its masks are hidden unless asked for
SEGMENT_COLOURS = [(0, 200, 255), (255, 200, 0), (120, 255, 80), (255, 90, 90)]


@pytest.fixture(scope="module")
def scored(tmp_path_factory, demo_media):
    """(workspace path, video id, source path, traces, ProductScore backend) of one demo triple scored with
    ProductScore + TSScore."""
    tmp = tmp_path_factory.mktemp("overlay_px")
    rows = [json.loads(ln) for ln in (demo_media / "manifest.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["video"] == VIDEO)
    manifest = tmp / "one.jsonl"
    manifest.write_text(json.dumps({**row, "image": str(demo_media / row["image"]),
                                    "video": str(demo_media / row["video"])}) + "\n")
    ws = tmp / "ws"
    for args in (["ingest", "--workspace", str(ws), str(manifest)],
                 ["score", "--workspace", str(ws), "--metrics", "productscore,tsscore", "--executor", "sequential",
                  "--no-progress"]):
        p = subprocess.run([sys.executable, "-m", "curation", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=600, env={**os.environ})
        assert p.returncode == 0, p.stderr
    from storage import Workspace

    with Workspace.open(ws) as w:
        (vid, path), = w.query("SELECT id, path FROM videos")
        got = w.query("SELECT metric, status, trace, backend FROM metric_results WHERE video_id = ?", [vid])
    traces = {m: json.loads(t) for m, s, t, _ in got if s == "ok"}
    assert set(traces) == {"productscore", "tsscore"}, "both metrics must have scored this video"
    return ws, vid, path, traces, next(b for m, _, _, b in got if m == "productscore")


def source_frames(path: str) -> list[np.ndarray]:
    import av

    with av.open(path) as c:
        return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]


def polygon_mask(points, shape, *, width: int | None = None) -> np.ndarray:
    im = Image.new("L", (shape[1], shape[0]), 0)
    pts = [tuple(map(float, p)) for p in points]
    if width:
        ImageDraw.Draw(im).line(pts + pts[:1], fill=255, width=width)
    else:
        ImageDraw.Draw(im).polygon(pts, fill=255)
    return np.asarray(im) > 0


def grow(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def shrink(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def boxes_zone(ts_frame: dict, shape) -> np.ndarray:
    zone = np.zeros(shape, bool)
    for b in ts_frame["boxes"]:
        zone |= grow(polygon_mask(np.asarray(b["quad"], float), shape), 4)
    return zone


def luma(rgb) -> float:
    return float(np.dot(rgb, (0.299, 0.587, 0.114)))


def check_frame(rendered: np.ndarray, base: np.ndarray, ps_frame: dict, ts_frame: dict, *, mask: bool,
                boxes: bool, counter: bool) -> None:
    assert rendered.shape == base.shape
    H, W = base.shape[:2]
    poly = ps_frame["polygon"]
    assert len(poly) >= 3 and ts_frame["boxes"], "the chosen frame must have a product and text"
    product = polygon_mask(poly, base.shape[:2])
    untouched = ~grow(product, 5) | shrink(product, 4) if mask else np.ones((H, W), bool)
    if mask:
        import cv2

        contours, _ = cv2.findContours(product.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        line = np.zeros((H, W), np.uint8)
        cv2.drawContours(line, contours, -1, 1, 1)
        line = (line > 0) & ~boxes_zone(ts_frame, base.shape[:2])
        got, was = np.median(rendered[line], axis=0), np.median(base[line], axis=0)
        d_got, d_was = np.linalg.norm(got - MASK_LINE), np.linalg.norm(was - MASK_LINE)
        assert d_was > 60 and d_got < 0.4 * d_was, ("the outline must follow the trace's polygon", got, was)
    for b in ts_frame["boxes"]:
        q = np.asarray(b["quad"], float)
        x0, y0 = q.min(0)
        if boxes:
            untouched &= ~grow(polygon_mask(q, base.shape[:2], width=1), 4)
            fs = max(10, H // 36)        # the text label drawn above the box's first corner
            untouched[max(0, int(y0) - fs - 8):int(y0) + 1,
                      max(0, int(x0) - 4):int(x0) + int(0.75 * fs * len(str(b["text"])[:28])) + 10] = False
            seg = b.get("segment")
            colour = np.array((255, 60, 60) if seg is None or seg == -1 else SEGMENT_COLOURS[int(seg) % 4])
            edge = polygon_mask(q, base.shape[:2]) & ~shrink(polygon_mask(q, base.shape[:2]), 2)
            edge &= ~grow(product, 4)
            got, was = np.median(rendered[edge], axis=0), np.median(base[edge], axis=0)
            # JPEG and H.264 keep brightness per pixel but colour per 2x2 block, so a 2-px line keeps the
            # box colour's brightness and only the direction of its hue
            assert abs(luma(was) - luma(colour)) > 25, "the source must differ from the box colour here"
            assert abs(luma(got) - luma(colour)) < 15, (b["text"], got, was, colour)
            move, want = got - was, colour - was
            assert move @ want / (np.linalg.norm(move) * np.linalg.norm(want)) > 0.85, (b["text"], got, was)
    if counter:
        fs = max(12, H // 24)
        untouched[:10 + fs + 8, :int(14 + 0.75 * fs * len(f"frame {H}/{H}")) + 10] = False
    diff = np.abs(rendered[untouched] - base[untouched]).max(axis=1)
    assert diff.mean() < 3 and np.percentile(diff, 99.9) < 30, (diff.mean(), np.percentile(diff, 99.9))


def test_selected_frame_draws_mask_and_boxes_where_the_traces_say(scored):
    from labeling.service import ReviewService
    from labeling.ui_videos import LAYERS, VideosTab
    from storage import Workspace

    root, vid, path, traces, backend = scored
    shown = FALLBACK_SEGMENTER not in backend    # a fallback mask stays hidden: its region must be untouched
    base = source_frames(path)
    ps, ts = traces["productscore"]["frames"], traces["tsscore"]["frames"]
    with Workspace.open(root) as ws:
        tab = VideosTab(ReviewService(ws))
        for k in (0, len(ps) // 2, len(ps) - 1):
            fi = ps[k]["index"]
            assert ts[k]["index"] == fi
            jpg, info = tab.frame_image(vid, fi, LAYERS)       # what a click on the motion curve shows
            assert info.startswith(f"Frame {fi + 1} of {len(base)}")
            rendered = np.asarray(Image.open(jpg).convert("RGB")).astype(int)
            check_frame(rendered, base[fi], ps[k], ts[k], mask=shown, boxes=True, counter=True)
        # with the mask layer alone, no box is drawn: the box outlines keep their source pixels
        k = len(ps) // 2
        jpg, _ = tab.frame_image(vid, ps[k]["index"], ["Product mask"])
        rendered = np.asarray(Image.open(jpg).convert("RGB")).astype(int)
        check_frame(rendered, base[ps[k]["index"]], ps[k], ts[k], mask=shown, boxes=False, counter=True)


def test_player_video_draws_mask_and_boxes_where_the_traces_say(scored):
    from labeling.service import ReviewService
    from labeling.ui_common import new_nav, nav_show
    from labeling.ui_videos import VideosTab
    from storage import Workspace

    root, vid, path, traces, backend = scored
    shown = FALLBACK_SEGMENTER not in backend
    base = source_frames(path)
    ps, ts = traces["productscore"]["frames"], traces["tsscore"]["frames"]
    with Workspace.open(root) as ws:
        tab = VideosTab(ReviewService(ws))
        st = new_nav()
        nav_show(st, vid)
        html = tab.h_layers(st, ["Product mask", "OCR boxes"], None)    # the player after ticking the layers
    src = unquote(re.search(r'<video[^>]* src="/gradio_api/file=([^"?]+)', html).group(1))
    assert Path(src).resolve() != Path(path).resolve() and Path(src).is_relative_to(root)
    drawn = source_frames(src)
    assert len(drawn) == len(base)
    for k in (0, len(ps) // 3, len(ps) - 1):
        fi = ps[k]["index"]
        check_frame(drawn[fi], base[fi], ps[k], ts[k], mask=shown, boxes=True, counter=False)
