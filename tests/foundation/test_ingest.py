"""Ingest of good and bad files: every good file lands, each bad one gets a clear per-file error."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media.encode import write_mp4
from curation.ingest import ingest
from storage import catalog, images, triples, videos


def _png(path: Path, size=(64, 48), color=(200, 30, 30), mode="RGB") -> Path:
    Image.new(mode, size, color).save(path)
    return path


def _mp4(path: Path, n=12, size=64, fps=8, moving=True) -> Path:
    frames = []
    for t in range(n):
        f = np.zeros((size, size, 3), np.uint8)
        f[:, :] = (30, 60, 90)
        x = (t * 3) % (size - 16) if moving else 10
        f[20:36, x:x + 16] = (250, 200, 10)
        frames.append(f)
    write_mp4(path, frames, fps=fps)
    return path


@pytest.fixture()
def good_dir(tmp_path) -> Path:
    d = tmp_path / "good"
    d.mkdir()
    _png(d / "a.png")
    _png(d / "b.png", color=(10, 200, 10))
    Image.new("RGB", (80, 60), (1, 2, 3)).save(d / "c.jpg", quality=90)
    _mp4(d / "clip.mp4")
    return d


def test_folder_ingest_is_idempotent(workspace, good_dir):
    r1 = ingest(workspace, [good_dir])
    assert r1.added == {"images": 3, "videos": 1, "triples": 0} and not r1.failed
    r2 = ingest(workspace, [good_dir])
    assert r2.added == {"images": 0, "videos": 0, "triples": 0} and r2.skipped == 4 and r2.exit_code == 0
    v = videos.list_videos(workspace)[0]
    assert v["frame_count"] == 12 and v["width"] == 64 and abs(v["fps"] - 8) < 1e-6
    row = workspace.query_dicts("SELECT codec, duration, bytes FROM videos")[0]
    assert row["codec"] == "h264" and abs(row["duration"] - 1.5) < 0.2 and row["bytes"] > 0
    assert os.path.realpath(good_dir) in catalog.media_roots(workspace)


def test_same_content_under_two_names_is_one_item(workspace, tmp_path, good_dir):
    (good_dir / "copy_of_a.png").write_bytes((good_dir / "a.png").read_bytes())
    r = ingest(workspace, [good_dir])
    assert r.added["images"] == 3 and r.skipped == 1


def test_manifest_jsonl_and_csv_make_triples(workspace, tmp_path, good_dir):
    m = good_dir / "m.jsonl"
    rows = [{"image": "a.png", "prompt": "The bottle turns slowly.", "video": "clip.mp4", "model": "ModelA",
             "category": "Skincare", "product": "Glow cream"},
            {"image": "b.png", "prompt": "Same clip, other reference.", "video": "clip.mp4", "model": "ModelA",
             "category": "Beauty & Health / Makeup", "product": "Rouge"}]
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = ingest(workspace, [m])
    assert r.added == {"images": 2, "videos": 1, "triples": 2}, r.as_dict()
    made = triples.list_triples(workspace)
    assert len({t["video_id"] for t in made}) == 1  # one video in two triples
    assert {t["prompt"] for t in made} == {rows[0]["prompt"], rows[1]["prompt"]}
    img = images.get_image(workspace, made[0]["image_id"])
    assert img["category"] == "Skincare" and img["domain"] == "Beauty & Health" and img["product"] == "Glow cream"
    video = videos.get_video(workspace, made[0]["video_id"])
    assert video["model"] == "ModelA" and video["source_image_path"].endswith("a.png")
    # CSV with the same rows adds nothing new
    c = good_dir / "m.csv"
    c.write_text("image,prompt,video,model,category,product\n"
                 "a.png,The bottle turns slowly.,clip.mp4,ModelA,Skincare,Glow cream\n")
    r2 = ingest(workspace, [c])
    assert r2.added == {"images": 0, "videos": 0, "triples": 0} and not r2.failed


def test_manifest_row_errors_do_not_stop_the_rest(workspace, tmp_path, good_dir):
    outside = tmp_path / "outside.png"
    _png(outside)
    m = good_dir / "m.jsonl"
    m.write_text("\n".join([
        json.dumps({"image": "a.png", "video": "clip.mp4", "prompt": "ok", "model": "M"}),
        json.dumps({"image": "../outside.png", "video": "clip.mp4", "prompt": "escape"}),
        "{not json",
        json.dumps({"prompt": "no media"}),
        json.dumps({"image": "missing.png", "video": "clip.mp4", "category": "Nonexistent Cat"}),
        json.dumps({"image": "clip.mp4", "video": "a.png"}),
    ]) + "\n")
    r = ingest(workspace, [m])
    errs = {f["path"].rsplit(":", 1)[-1] if f["path"].startswith(str(m)) else Path(f["path"]).name: f["error"]
            for f in r.failed}
    assert "escapes the manifest's folder" in errs["2"]
    assert "invalid JSON" in errs["3"]
    assert "neither an image nor a video" in errs["4"]
    assert errs["missing.png"] == "no such file"
    assert "column names 'a.png', which is not a video but a image" in errs["6"]
    assert any("unknown category" in w["warning"] for w in r.warnings)
    assert r.added["triples"] >= 1 and r.exit_code == 0


BAD_CASES = {
    "zero.png": (lambda p: p.write_bytes(b""), "empty file"),
    "truncated.png": (lambda p: p.write_bytes(_png(p, size=(300, 300)).read_bytes()[:400]), "truncated or corrupt"),
    "truncated.jpg": (lambda p: (Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8))
                                 .save(p, quality=95), p.write_bytes(p.read_bytes()[:3000])), "truncated or corrupt"),
    "garbage.mp4": (lambda p: p.write_bytes(os.urandom(5000)), "not a recognised image or video"),
    "truncated.mp4": (lambda p: p.write_bytes(_mp4(p, n=40, size=96).read_bytes()[:700]), "video"),
    "notes.xyz": (lambda p: p.write_text("hello"), "unsupported file type .xyz"),
    "header_only.mp4": (lambda p: p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 16), "video"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_file_gets_clear_error_and_good_files_still_land(workspace, good_dir, name):
    make, expected = BAD_CASES[name]
    make(good_dir / name)
    r = ingest(workspace, [good_dir])
    assert r.added["images"] == 3 and r.added["videos"] == 1, r.as_dict()
    failed = {Path(f["path"]).name: f["error"] for f in r.failed}
    assert name in failed and expected in failed[name], failed
    assert r.exit_code == 0


def test_decompression_bomb_is_refused_without_decoding(workspace, tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(p)  # a few kB on disk, 400 Mpx when decoded
    assert p.stat().st_size < 200_000
    r = ingest(workspace, [p])
    assert r.failed and "decompression" in r.failed[0]["error"] and r.exit_code == 1


def test_missing_path_and_all_failed_exit_code(workspace, tmp_path):
    r = ingest(workspace, [tmp_path / "does-not-exist"])
    assert r.failed[0]["error"] == "path does not exist" and r.exit_code == 1


def test_non_utf8_long_and_odd_names(workspace, tmp_path):
    d = tmp_path / "odd"
    d.mkdir()
    _png(d / ("x" * 251 + ".png"))                      # 255-byte name
    _png(d / "spaces and ünïcödé 商品.png", color=(5, 5, 250))
    bad = os.fsencode(str(d)) + b"/bad\xff\xfename.png"
    with open(bad, "wb") as f:
        f.write(_png(tmp_path / "src.png", color=(9, 9, 9)).read_bytes())
    r = ingest(workspace, [d])
    assert r.added["images"] == 2
    assert len(r.failed) == 1 and "not valid UTF-8" in r.failed[0]["error"]


def test_symlink_outside_media_root_is_refused(workspace, tmp_path, good_dir):
    secret = tmp_path / "secret.png"
    _png(secret)
    os.symlink(secret, good_dir / "link.png")
    os.symlink(good_dir / "a.png", good_dir / "inside_link.png")
    r = ingest(workspace, [good_dir])
    failed = {Path(f["path"]).name: f["error"] for f in r.failed}
    assert "outside the media root" in failed["link.png"]
    assert "inside_link.png" not in failed


def test_wrong_extension_is_ingested_by_content(workspace, tmp_path):
    d = tmp_path / "w"
    d.mkdir()
    _png(d / "src.png").rename(d / "really_png.mp4")
    _mp4(d / "src.mp4").rename(d / "really_mp4.png")
    r = ingest(workspace, [d])
    assert r.added == {"images": 1, "videos": 1, "triples": 0}
    assert len(r.warnings) == 2 and all("does not match its content" in w["warning"] for w in r.warnings)


def test_odd_image_modes_and_animated_gif(workspace, tmp_path):
    d = tmp_path / "modes"
    d.mkdir()
    Image.new("CMYK", (40, 40), (10, 200, 30, 0)).save(d / "cmyk.jpg")
    Image.fromarray(np.full((30, 30), 40000, np.uint16)).save(d / "gray16.png")
    Image.new("P", (20, 20), 3).save(d / "palette.png")
    Image.new("LA", (20, 20), (100, 50)).save(d / "la.png")
    frames = [Image.new("RGB", (32, 32), (i * 40, 0, 0)) for i in range(5)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (1, 1)).save(d / "one.png")
    r = ingest(workspace, [d])
    assert not r.failed, r.failed
    assert r.added["images"] == 5 and r.added["videos"] == 1  # the animated GIF is a (5-frame) video
    gif = workspace.query_dicts("SELECT frame_count FROM videos")[0]
    assert gif["frame_count"] == 5


@pytest.mark.field
def test_fieldmedia_ingest_lands_every_file_and_is_idempotent(workspace, fieldmedia, field_manifest):
    paths = [fieldmedia / "images_ad", fieldmedia / "videos_generated"]
    r1 = ingest(workspace, paths)
    assert not r1.failed, r1.failed
    expected = [m for m in field_manifest if m["path"].split("/")[0] in ("images_ad", "videos_generated")]
    assert r1.added["images"] + r1.added["videos"] + r1.skipped == len(expected)
    r2 = ingest(workspace, paths)
    assert r2.added == {"images": 0, "videos": 0, "triples": 0} and r2.skipped == len(expected)
    by_name = {Path(v["path"]).name: v for v in videos.list_videos(workspace)}
    for m in expected:
        if m["frame_count"]:
            v = by_name[Path(m["path"]).name]
            assert v["frame_count"] == int(m["frame_count"]), m["path"]
            assert f'{v["width"]}x{v["height"]}' == m["resolution"]
