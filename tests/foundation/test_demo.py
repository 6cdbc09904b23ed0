"""The demo workspace generator: coverage of domains, faults and video behaviours; determinism."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np

from curation import demo
from storage import Workspace, catalog, videos


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)])


def test_demo_media_covers_every_feature(demo_media):
    rows = [json.loads(line) for line in (demo_media / "manifest.jsonl").read_text().splitlines()]
    images = {r["image"] for r in rows}
    videos = [r for r in rows if r["video"]]
    assert len(images) >= 24 and len(videos) >= 12
    assert {r["category"].split(" / ")[0] for r in rows} == {
        "Electronics & Mobility", "Lifestyle & Leisure", "Food & Beverages", "Beauty & Health",
        "Fashion & Luxury", "Home & Appliances"}
    assert {"blurry", "collage", "text_over_product"} <= {r.get("fault") for r in rows}
    assert {"static", "smooth", "first_second", "text_stays", "text_flicker", "text_deform", "product_drift",
            "colour_change"} <= {r["behaviour"] for r in videos}
    assert len({r["model"] for r in videos}) >= 2
    by_image: dict[str, set] = {}
    for r in videos:  # a benchmark case: every model gets the same image and the same prompt
        by_image.setdefault(r["image"], set()).add(r["prompt"])
    assert all(len(prompts) == 1 for prompts in by_image.values())
    for r in videos:
        with av.open(str(demo_media / r["video"])) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == "h264" and st.codec_context.pix_fmt == "yuv420p"
            assert 4.5 <= float(st.frames / st.average_rate) <= 5.5
    for img in images:  # every image has its ground-truth product mask
        assert (demo_media / "masks" / Path(img).name).exists()


def test_demo_videos_behave_as_labelled(demo_media):
    rows = {r["behaviour"]: r for r in map(json.loads, (demo_media / "manifest.jsonl").read_text().splitlines())
            if r.get("behaviour")}
    motion = {b: float(np.abs(np.diff(_frames(demo_media / r["video"]), axis=0)).mean()) for b, r in rows.items()}
    assert motion["static"] < 1.0  # only sensor-like noise
    assert all(motion[b] > 3 * motion["static"] for b in ("smooth", "diagonal_pan", "zoom", "product_drift"))
    first = _frames(demo_media / rows["first_second"]["video"])
    early = np.abs(np.diff(first[:16], axis=0)).mean()
    late = np.abs(np.diff(first[20:], axis=0)).mean()
    assert early > 10 * max(late, 1e-3)  # motion only in the first second


def test_demo_is_deterministic_by_seed(tmp_path, demo_media):
    again = demo.generate_demo_media(tmp_path / "again", seed=0)
    assert _hashes(again.parent) == _hashes(demo_media)
    other = demo.generate_demo_media(tmp_path / "other", seed=1)
    assert _hashes(other.parent) != _hashes(demo_media)


def test_build_demo_workspace_ingests_everything(tmp_path):
    report = demo.build_demo_workspace(tmp_path / "ws")
    assert report["failed"] == []
    with Workspace.open(tmp_path / "ws") as ws:
        counts = catalog.counts(ws)
        assert counts["images"] >= 24 and counts["videos"] >= 12 and counts["triples"] >= 12
        assert ws.query_one("SELECT count(*) FROM images WHERE category_id IS NULL")[0] == 0
        assert ws.query_one("SELECT count(DISTINCT model) FROM videos")[0] >= 2
        # the media live inside the workspace, so the app may serve them
        assert all(v["path"].startswith(str(ws.root)) for v in videos.list_videos(ws))
