"""Review queue orders, filters and diverse pages, near-duplicate grouping, and bulk label import / export.
The queue's speed is measured in bench/bench_classifier.py, not asserted here."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from curation import classifier as C
from curation.duplicates import dedup, hamming, phash, phash_pairs
from curation.labels_io import export_labels, import_labels
from media.files import load_image
from curation.queue import image_queue, k_centre
from storage import Workspace
from storage import curation_store as cs
from storage.labels import append_event


# -- queue ----------------------------------------------------------------------------------------

def test_queue_orders_and_filters(labelled_demo):
    ws = labelled_demo
    # before any run: no scores, still a queue
    q0 = image_queue(ws, label_state="any", limit=5)
    assert len(q0) == 5 and all(r["score"] is None for r in q0)
    r = C.train(ws)
    thr = r["threshold"]
    ids = [im["id"] for im in cs.all_images(ws)]
    for iid in ids[:6]:      # six images become unlabelled
        ev = ws.query_one("SELECT event_id FROM current_labels WHERE item_kind='image' AND item_id=?", [iid])
        append_event(ws, item_kind="image", item_id=iid, value="undo", annotator="alice", undoes=ev[0])
    unl = image_queue(ws, limit=50)
    assert {q["id"] for q in unl} == set(ids[:6]) and all(q["label"] is None for q in unl)
    d = [abs(q["score"] - thr) for q in unl]
    assert d == sorted(d)                                   # uncertainty: closest to threshold first
    lab = image_queue(ws, label_state="labelled", order="score", limit=50)
    assert len(lab) == 18 and [q["score"] for q in lab] == sorted([q["score"] for q in lab], reverse=True)
    assert all(q["label"] in ("good", "bad") and "alice" in q["annotators"] for q in lab)
    newest = image_queue(ws, label_state="any", order="newest", limit=3)
    assert [q["id"] for q in newest] == sorted(ids, reverse=True)[:3]
    page2 = image_queue(ws, label_state="any", order="newest", limit=3, offset=3)
    assert [q["id"] for q in page2] == sorted(ids, reverse=True)[3:6]
    mid = image_queue(ws, label_state="any", score_min=0.2, score_max=0.8, limit=100)
    assert all(0.2 <= q["score"] <= 0.8 for q in mid)
    cat = cs.all_images(ws)[0]["category_id"]
    assert all(q["category_id"] == cat for q in image_queue(ws, label_state="any", category_id=cat))
    assert image_queue(ws, label_state="any", annotator="nobody") == []
    from curation.filter_runs import run_filters
    run_filters(ws, names=("quality", "layout"))
    failed = image_queue(ws, label_state="any", failed_filter="quality", limit=100)
    assert failed and all("quality" in q["failed_filters"] for q in failed)
    assert any("blurry" in q["path"] for q in failed)
    assert all(q["failed_reasons"] for q in failed)
    anyf = image_queue(ws, label_state="any", failed_filter="any", limit=100)
    assert len(anyf) >= len(failed)
    div = image_queue(ws, label_state="any", limit=4, diverse=True)
    assert len(div) == 4 and len({q["id"] for q in div}) == 4
    with pytest.raises(ValueError):
        image_queue(ws, order="random")


def test_k_centre_spreads_a_batch_over_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 10
    pts = np.concatenate([c + rng.normal(size=(10, 8)) * 0.01 for c in centres])   # 3 clusters of copies
    picked = k_centre(pts, 3)
    assert sorted({p // 10 for p in picked}) == [0, 1, 2]


def test_diverse_page_takes_one_image_per_cluster(tmp_path):
    """20 images in 4 tight clusters of 5, the 5 newest all in cluster 0: the plain page of 4 is one cluster,
    the diverse page covers all four and keeps the best-ranked image first. (Queue timings on 100,000
    images: bench/bench_classifier.py, queue p50 / p95 in bench/results/classifier_cpu.md.)"""
    from storage.embeddings import put_embeddings

    rng = np.random.default_rng(0)
    centres = np.eye(4, 16) * 10.0
    with Workspace.open(tmp_path / "ws") as ws:
        ws.execute("INSERT INTO images (sha256, path, bytes, format, width, height) "
                   "SELECT 'sha' || i, '/media/img' || i || '.png', 1000, 'PNG', 64, 64 FROM range(20) t(i)")
        rows = ws.query("SELECT id, sha256 FROM images ORDER BY id DESC")        # newest first
        cluster = {iid: k // 5 for k, (iid, _) in enumerate(rows)}
        vecs = np.stack([centres[cluster[iid]] + rng.normal(size=16) * 0.01 for iid, _ in rows])
        put_embeddings(ws, "classical-v1", [sha for _, sha in rows], vecs)
        plain = image_queue(ws, label_state="any", order="newest", limit=4)
        assert [cluster[q["id"]] for q in plain] == [0, 0, 0, 0]
        div = image_queue(ws, label_state="any", order="newest", limit=4, diverse=True)
        assert sorted(cluster[q["id"]] for q in div) == [0, 1, 2, 3]
        assert div[0]["id"] == rows[0][0]                                          # the newest stays first
        ranks = [next(k for k, (iid, _) in enumerate(rows) if iid == q["id"]) for q in div]
        assert ranks == sorted(ranks)                                              # in the order's ranking


# -- near-duplicates ------------------------------------------------------------------------------

def test_phash_survives_resize_and_jpeg_but_separates_different_images(demo_media):
    a = load_image(demo_media / "images" / "ad_00_phone.png")
    small = cv2.resize(a, (200, 200), interpolation=cv2.INTER_AREA)
    ok, enc = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    copy = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
    assert int(hamming(phash(a), phash(copy))) <= 2
    other = load_image(demo_media / "images" / "ad_04_ball.png")
    assert int(hamming(phash(a), phash(other))) > 6
    hs = np.array([phash(a), phash(copy), phash(other)], np.uint64)
    assert phash_pairs(hs, 6) == [(0, 1)]
    assert phash_pairs(hs, 64) == [(0, 1), (0, 2), (1, 2)]    # brute-force path agrees


def test_dedup_groups_copies_and_stores_dup_group(demo_workspace, tmp_path):
    from curation.ingest import ingest

    copies = tmp_path / "copies"
    copies.mkdir()
    with Workspace.open(demo_workspace) as ws:
        ims = cs.all_images(ws)
        src = [im for im in ims if "ad_04_ball" in im["path"] or "ad_13_can" in im["path"]]
        for im in src:
            a = load_image(im["path"])
            cv2.imwrite(str(copies / (im["path"].split("/")[-1][:-4] + "_copy.jpg")),
                        cv2.resize(a, (300, 300))[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
        shutil.copy(src[0]["path"], copies / "flipped.png")
        cv2.imwrite(str(copies / "flipped.png"), load_image(src[0]["path"])[:, ::-1, ::-1])   # a mirror is no copy
        assert not ingest(ws, [copies]).failed
        rep = dedup(ws)
        groups = {g["group_id"]: g for g in cs.dup_groups(ws)}
        for im in src:
            g = groups[im["id"]]
            assert g["n"] >= 2 and any(p.endswith("_copy.jpg") for p in g["paths"])
        assert ws.query_one("SELECT count(*) FROM images WHERE dup_group IS NULL")[0] == 0
        flipped = ws.query_one("SELECT id, dup_group FROM images WHERE path LIKE '%flipped.png'")
        assert flipped[0] == flipped[1]                      # its own group
        assert rep["groups"] >= 2 and rep["hashed_now"] == len(ims) + 3
        again = dedup(ws)
        assert again["hashed_now"] == 0 and again["groups"] == rep["groups"]
    out = subprocess.run([sys.executable, "-m", "curation", "dedup", "--workspace", str(demo_workspace), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["groups"] == rep["groups"]


# -- label import / export --------------------------------------------------------------------------

def test_label_import_csv_and_jsonl_with_bad_rows(demo_workspace, tmp_path):
    with Workspace.open(demo_workspace) as ws:
        ims = cs.all_images(ws)
        vid = ws.query_one("SELECT id, path FROM videos ORDER BY id LIMIT 1")
        f = tmp_path / "labels.csv"
        with open(f, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "sha256", "label", "annotator", "reasons", "note"])
            w.writerow([ims[0]["path"], "", "good", "ann1", "", "nice"])
            w.writerow(["", ims[1]["sha256"], "reject", "ann1", "blurry;collage", ""])
            w.writerow([vid[1], "", "accept", "", "", ""])
            w.writerow(["/no/such/file.png", "", "good", "", "", ""])
            w.writerow([ims[2]["path"], "", "maybe", "", "", ""])
            w.writerow(["", "", "good", "", "", ""])
            w.writerow(["", "f" * 64, "bad", "", "", ""])
        rep = import_labels(ws, f).as_dict()
        assert rep["added"] == 3 and rep["rows"] == 7 and len(rep["errors"]) == 4
        lines = {e["line"]: e["error"] for e in rep["errors"]}
        assert "no image or video with path /no/such/file.png" in lines[5]
        assert "'maybe' is not good/bad" in lines[6]
        assert "neither 'path' nor 'sha256'" in lines[7]
        assert "sha256 ffff" in lines[8]
        ev = {(e["item_kind"], e["item_id"]): e for e in ws.query_dicts("SELECT * FROM label_events")}
        assert ev[("image", ims[0]["id"])]["value"] == "good" and ev[("image", ims[0]["id"])]["note"] == "nice"
        assert ev[("image", ims[1]["id"])]["value"] == "bad"
        assert list(ev[("image", ims[1]["id"])]["reasons"]) == ["blurry", "collage"]
        assert ev[("video", vid[0])]["value"] == "accept" and ev[("video", vid[0])]["annotator"] == "import"
        again = import_labels(ws, f).as_dict()            # same file again: nothing new
        assert again["added"] == 0 and again["duplicates"] == 3
        j = tmp_path / "more.jsonl"
        j.write_text(json.dumps({"sha256": ims[3]["sha256"], "label": "bad", "reasons": ["text clutter"]}) + "\n"
                     + "{not json\n" + json.dumps(["a list"]) + "\n", encoding="utf-8")
        rep = import_labels(ws, j, annotator="bulk").as_dict()
        assert rep["added"] == 1 and [e["line"] for e in rep["errors"]] == [2, 3]
        out = tmp_path / "export.csv"
        assert export_labels(ws, out) == 4
        rows = list(csv.DictReader(open(out)))
        assert {r["path"] for r in rows} >= {ims[0]["path"], vid[1]} and rows[1]["reasons"] == "blurry;collage"
        outj = tmp_path / "export.jsonl"
        assert export_labels(ws, outj, item_kind="image") == 3
        assert all(json.loads(line)["item_kind"] == "image" for line in open(outj))
    # an exported file imports into another workspace (round trip by sha256/path)
    other = tmp_path / "other"
    shutil.copytree(demo_workspace, other)
    with Workspace.open(other) as ws2:
        ws2.execute("DELETE FROM label_events")
        rep = import_labels(ws2, out).as_dict()
        assert rep["added"] == 4 and not rep["errors"]


def test_labels_cli(demo_workspace, tmp_path):
    with Workspace.open(demo_workspace) as ws:
        im = cs.all_images(ws)[0]
    f = tmp_path / "l.csv"
    f.write_text(f"path,label\n{im['path']},good\nnowhere.png,bad\n", encoding="utf-8")
    run = lambda *a: subprocess.run([sys.executable, "-m", "curation", "labels", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    out = run("import", "--workspace", str(demo_workspace), str(f), "--json")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["added"] == 1 and rep["errors"][0]["line"] == 3
    out = run("import", "--workspace", str(demo_workspace), str(tmp_path / "missing.csv"))
    assert out.returncode == 2 and "not found" in out.stderr
    out = run("export", "--workspace", str(demo_workspace), str(tmp_path / "e.jsonl"), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["events"] == 1


def test_disagreement_order_puts_the_classifier_designer_conflicts_first(workspace):
    """Classifier vs designer: a good image with a low score, then a bad one with a high score, before the
    images where they agree; images with a label but no score, or a score but no label, come last."""
    from storage import classifier_runs, images

    ids = [images.add_image(workspace, {"sha256": f"{k:064x}", "path": f"/nowhere/{k}.png", "bytes": 1,
                                        "width": 8, "height": 8, "format": "PNG", "mode": "RGB",
                                        "has_alpha": False})[0] for k in range(5)]
    run = classifier_runs.reserve_run_id(workspace)
    classifier_runs.record_run(workspace, run, {"version": "test", "n_labels": 4, "label_hash": "h",
                                                "features": "test", "threshold": 0.5},
                               np.array(ids[:4]), np.array([0.1, 0.9, 0.95, 0.3]))
    for iid, value in zip(ids, ["good", "bad", "good", "bad", "good"]):
        append_event(workspace, item_kind="image", item_id=iid, value=value, annotator="alice")
    q = image_queue(workspace, order="disagreement", label_state="labelled", limit=10)
    # disagreement: good 0.1 -> 0.9, bad 0.9 -> 0.9, good 0.95 -> 0.05, bad 0.3 -> 0.3; the fifth has no score
    assert [r["id"] for r in q] == [ids[0], ids[1], ids[3], ids[2], ids[4]]
