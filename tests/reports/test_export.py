"""The curated split export: formats (Parquet through `datasets`, JSONL, CSV, WebDataset through `webdataset`
and the stdlib), metadata per triple, idempotent re-runs, verification, refusals and cancellation."""
from __future__ import annotations

import csv
import json
import tarfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from curation.cli import main
from curation.export import MARKER, ExportError, export_splits
from curation.export_verify import verify_export
from curation.jobs import Cancelled
from metrics import aesscore, motionx, productscore
from curation.splits import ExportOptions
from storage import labels

ANY = {"label_state": "any", "exclude_bad_images": False}


def _sums(out: Path) -> str:
    return (out / "SHA256SUMS").read_text()


def test_export_formats_metadata_and_verify(fx, tmp_path, monkeypatch):
    with fx.open() as ws:
        s = export_splits(ws, "v1", ExportOptions(shard_size=7))
    out = Path(s["out_dir"])
    assert out == fx.root / "exports" / "v1"
    expected = {t["triple_id"] for t in fx.triples if t["triple_id"] in fx.accepted
                and t["image_id"] not in fx.bad_images}
    assert s["counts"]["selected"] == len(expected)
    assert s["verify"]["ok"], s["verify"]["problems"]
    n = s["counts"]["splits"]
    assert sum(n.values()) == len(expected) and all(n[k] > 0 for k in ("train", "val", "test"))

    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["triple_id"] for r in rows} == expected
    r = rows[0]
    t = next(t for t in fx.triples if t["triple_id"] == r["triple_id"])
    assert r["prompt"] == t["prompt"] and r["model"] == t["model"] and r["domain"] == t["domain"]
    assert r["category"] and r["product"].startswith("Product ") and r["caption"].startswith("caption of video")
    assert (r["video_width"], r["video_height"], r["frame_count"], r["fps"]) == (384, 384, 80, 16.0)
    assert r["image_width"] >= 512 and r["label"] == "accept"
    assert r["labels"][0]["annotator"] == "dana" and r["labels"][0]["value"] == "accept"
    assert r["metrics"]["motionx"]["version"] == motionx.VERSION and r["metrics"]["motionx"]["status"] == "ok"
    assert r["metrics"]["productscore"]["version"] == productscore.VERSION
    assert r["metrics"]["aesscore"] == {"value": None, "status": "unavailable", "version": aesscore.VERSION,
                                        "reason": "CLIP ViT-L/14 weights not found", "backend": None}
    assert r["metrics"]["crscore"]["status"] == "missing"
    assert (out / r["video"]).is_file() and (out / r["image"]).is_file()

    # Hugging Face datasets loads the Parquet splits (explicit files, and the folder through the card's configs)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    files = {k: str(out / "data" / f"{k}.parquet") for k in ("train", "val", "test")}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf"))
    assert {k: ds[k].num_rows for k in ds} == n
    assert ds["train"][0]["metrics"]["motionx"]["version"] == motionx.VERSION
    assert set(ds["train"].column_names) >= {"image", "video", "prompt", "category", "labels", "metrics"}
    ds2 = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf2"))
    assert {k: ds2[k].num_rows for k in ds2} == n

    # CSV: flat, one row per triple
    with open(out / "csv" / "train.csv", newline="") as f:
        crow = list(csv.DictReader(f))
    assert len(crow) == n["train"] and {"motionx", "motionx_version", "aesscore_status", "labels"} <= set(crow[0])

    # WebDataset: the reader iterates every sample; the stdlib reads the same members
    import webdataset as wds

    shards = sorted(str(p) for p in (out / "wds").glob("*.tar"))
    assert len(shards) >= 3  # shard_size=7 splits train
    seen = Counter()
    for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False):
        meta = json.loads(sample["json"])
        assert sample["__key__"] == meta["id"]
        assert sample["txt"].decode() == meta["prompt"]
        assert {"png", "mp4"} <= set(sample)
        seen[meta["split"]] += 1
    assert dict(seen) == {k: v for k, v in n.items() if v}
    members = Counter()
    for sh in shards:
        with tarfile.open(sh) as tar:
            for m in tar.getmembers():
                members[m.name.rsplit(".", 1)[1]] += 1
    assert members["json"] == members["mp4"] == members["png"] == members["txt"] == len(expected)

    card = (out / "README.md").read_text()
    assert "## Counts per split and category" in card and "label state: `accepted`" in card
    assert "## Metric distributions" in card and "## Label statistics" in card
    assert "path: data/train.parquet" in card


def test_rerun_is_idempotent_and_removes_stale_files(fx):
    with fx.open() as ws:
        a = export_splits(ws, "again", ExportOptions(**ANY, shard_size=10))
        out = Path(a["out_dir"])
        sums_a = _sums(out)
        files_a = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        b = export_splits(ws, "again", ExportOptions(**ANY, shard_size=10))
        assert _sums(out) == sums_a
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == files_a
        assert b["counts"]["media"].get("kept") == sum(a["counts"]["media"].values())
        # a narrower export into the same folder leaves no stale shards or media behind
        c = export_splits(ws, "again", ExportOptions())
        assert c["removed_stale"] and c["verify"]["ok"], c["verify"]
        left = [p for p in (out / "media" / "videos").iterdir()]
        assert len(left) == c["counts"]["selected"]
    assert verify_export(out)["ok"]


def test_verify_detects_tampering(fx):
    with fx.open() as ws:
        s = export_splits(ws, "tamper", ExportOptions(**ANY), verify=False)
    out = Path(s["out_dir"])
    vid = next((out / "media" / "videos").iterdir())
    vid.unlink()
    vid.write_bytes(b"changed")
    with open(out / "manifest.jsonl", "a") as f:
        f.write("{}\n")
    v = verify_export(out)
    assert not v["ok"]
    text = " ".join(v["problems"])
    assert "does not match its content hash" in text and "manifest.jsonl does not match" in text


def test_refusals(fx, tmp_path, monkeypatch):
    monkeypatch.delenv("ADVFX_EXPORT_ROOT", raising=False)
    outside = tmp_path / "elsewhere"
    with fx.open() as ws:
        with pytest.raises(ExportError, match="outside the allowed export roots"):
            export_splits(ws, outside, ExportOptions(**ANY))
        with pytest.raises(ExportError, match="outside the allowed export roots"):
            export_splits(ws, "../../escape", ExportOptions(**ANY))
        with pytest.raises(ExportError, match="outside the allowed export roots"):
            export_splits(ws, str(fx.root / "exports" / ".." / "runs"), ExportOptions(**ANY))
        with pytest.raises(ExportError, match="export root .* itself"):
            export_splits(ws, str(fx.root / "exports"), ExportOptions(**ANY))
        # a symlink inside the root that points outside does not escape either
        (fx.root / "exports" / "link").symlink_to(outside, target_is_directory=True)
        outside.mkdir()
        with pytest.raises(ExportError, match="outside"):
            export_splits(ws, "link/x", ExportOptions(**ANY))
        # an existing folder that is not an export
        other = fx.root / "exports" / "notes"
        other.mkdir()
        (other / "keep.txt").write_text("mine")
        with pytest.raises(ExportError, match="not an export folder"):
            export_splits(ws, other, ExportOptions(**ANY))
        assert (other / "keep.txt").read_text() == "mine" and len(list(other.iterdir())) == 1
        # allowed through --export-root and ADVFX_EXPORT_ROOT
        s = export_splits(ws, outside / "ok", ExportOptions(**ANY, export_root=str(outside)))
        assert s["verify"]["ok"]
        env_root = tmp_path / "envroot"
        monkeypatch.setenv("ADVFX_EXPORT_ROOT", str(env_root))
        s = export_splits(ws, env_root / "ds", ExportOptions(**ANY, formats=("jsonl",)))
        assert s["verify"]["ok"] and (env_root / "ds" / "manifest.jsonl").is_file()
        assert not (env_root / "ds" / "data").exists()


def test_cancel_leaves_an_incomplete_marker(fx):
    ev = threading.Event()
    calls = []

    def progress(frac, msg):
        calls.append(frac)
        if frac > 0.3:
            ev.set()

    with fx.open() as ws:
        with pytest.raises(Cancelled):
            export_splits(ws, "cancelled", ExportOptions(**ANY, shard_size=5), progress=progress, cancel=ev)
    out = fx.root / "exports" / "cancelled"
    assert json.loads((out / MARKER).read_text())["complete"] is False
    assert not verify_export(out)["ok"]
    assert calls == sorted(calls)


def _relabel(fx) -> dict[str, int]:
    """Three triples whose membership is known by construction (images never labelled bad):
    hi_unlabelled: accepted, MotionX >= 0.5, label undone -> unlabelled;
    lo_unlabelled: rejected, MotionX < 0.5, label undone -> unlabelled;
    lo_accepted: rejected, MotionX < 0.5, then accepted by the same designer (the newest label counts)."""
    ok = [t for t in fx.triples if t["image_id"] not in fx.bad_images]
    pick = {"hi_unlabelled": next(t for t in ok if t["triple_id"] in fx.accepted),
            "lo_unlabelled": next(t for t in ok if t["triple_id"] in fx.rejected)}
    pick["lo_accepted"] = next(t for t in ok if t["triple_id"] in fx.rejected and t is not pick["lo_unlabelled"])
    with fx.open() as ws:
        for name in ("hi_unlabelled", "lo_unlabelled"):
            ev = ws.query_one("SELECT id FROM label_events WHERE item_kind = 'video' AND item_id = ?",
                              [pick[name]["video_id"]])[0]
            labels.append_event(ws, item_kind="video", item_id=pick[name]["video_id"], value="undo",
                                annotator="dana", undoes=ev)
        labels.append_event(ws, item_kind="video", item_id=pick["lo_accepted"]["video_id"], value="accept",
                            annotator="dana")
    return {k: t["triple_id"] for k, t in pick.items()}


def _exported(capsys, fx, out: str, *flags: str) -> tuple[set[int], dict]:
    assert main(["export", "-w", str(fx.root), "--out", out, "--formats", "jsonl", "--json", *flags]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["verify"]["ok"], s["verify"]
    rows = (Path(s["out_dir"]) / "manifest.jsonl").read_text().splitlines()
    return {json.loads(line)["triple_id"] for line in rows}, s


def test_label_state_and_metric_minimum_select_the_known_triples(fx, capsys):
    p = _relabel(fx)
    quality = {t["triple_id"]: t["quality"] for t in fx.triples}
    good_image = {t["triple_id"] for t in fx.triples if t["image_id"] not in fx.bad_images}
    accepted = (fx.accepted - {p["hi_unlabelled"]}) | {p["lo_accepted"]}
    rejected = fx.rejected - {p["lo_unlabelled"], p["lo_accepted"]}
    unlabelled = {p["hi_unlabelled"], p["lo_unlabelled"]}
    assert all(quality[t] >= 0.5 for t in fx.accepted) and all(quality[t] < 0.5 for t in fx.rejected)

    got, _ = _exported(capsys, fx, "accepted")
    assert got == accepted & good_image
    assert p["lo_accepted"] in got and p["hi_unlabelled"] not in got

    got, _ = _exported(capsys, fx, "not_rejected", "--labels", "not_rejected")
    assert got == (accepted | unlabelled) & good_image
    assert not got & rejected

    got, s = _exported(capsys, fx, "not_rejected_min", "--labels", "not_rejected", "--min", "motionx=0.5")
    assert got == {t for t in (accepted | unlabelled) & good_image if quality[t] >= 0.5}
    assert p["hi_unlabelled"] in got and p["lo_unlabelled"] not in got and p["lo_accepted"] not in got
    assert s["counts"]["dropped"]["motionx < 0.5"] == 2          # lo_unlabelled and lo_accepted
    assert s["counts"]["dropped"]["rejected"] == len(rejected)

    got, _ = _exported(capsys, fx, "accepted_min", "--min", "motionx=0.5")
    assert got == (accepted & good_image) - {p["lo_accepted"]}


def test_cli_export_and_verify(fx, capsys):
    rc = main(["export", "-w", str(fx.root), "--out", "cli", "--labels", "not_rejected", "--min", "motionx=0.5",
               "--ratios", "0.5,0.25,0.25", "--seed", "3", "--formats", "parquet,jsonl", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["verify"]["ok"]
    assert out["options"]["metric_min"] == {"motionx": 0.5} and out["options"]["seed"] == 3
    assert out["options"]["label_state"] == "not_rejected" and out["options"]["ratios"] == [0.5, 0.25, 0.25]
    assert main(["export", "verify", out["out_dir"]]) == 0
    capsys.readouterr()
    assert main(["export", "-w", str(fx.root), "--out", "/", "--json"]) == 2
    assert "outside the allowed export roots" in capsys.readouterr().err
    with fx.open() as ws:
        from storage import exports

        hist = exports.list_exports(ws)
    assert hist and hist[0]["out_dir"] == out["out_dir"]
