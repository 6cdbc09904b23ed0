"""The image-set export (`export --kind images`): which images by their current label (the one label rule),
by classifier score and by filters; near-duplicates in one split; every format read back with its values; the
card; verify; the CLI through a subprocess. Built on the export tests' fixture workspace (tests/reports/conftest)."""
from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import tarfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curation.export import export_splits
from curation.export_verify import verify_export
from curation.splits import ExportOptions
from storage import classifier_runs, curation_store, labels, taxonomy

REPO = Path(__file__).resolve().parents[2]
SPLITS = ("train", "val", "test")
COLUMNS = ["id", "image_id", "split", "group", "image", "image_sha256", "image_format", "image_width",
           "image_height", "product", "category", "domain", "label", "label_annotator", "label_at", "label_history",
           "classifier_score", "classifier_run", "filters_passed", "labels", "filters", "prompts"]


def _score(image_id: int) -> float:
    return ((image_id * 37) % 100) / 100


def _curate(fx) -> dict:
    """Labels, filter verdicts and a classifier run with known outcomes on the fixture's images:
    good (dana), tie (dana bad, then eve good: a tie goes to the latest, so good, by eve), flip (dana good then
    bad: her latest counts, so bad), the fixture's bad image, and unlabelled ones (the last of each category)."""
    img = {}
    for t in fx.triples:
        img.setdefault(t["image_id"], t)
    dups = {i for pair in fx.dup_pairs for i in pair}
    bad = set(fx.bad_images)
    free = [i for i in sorted(img) if i not in dups | bad]
    flip, tie = free[0], free[1]
    last = {}
    for i in sorted(img):
        last[img[i]["category_id"]] = i
    unlabelled = set(last.values()) - dups - bad - {flip, tie}
    good = set(img) - bad - unlabelled - {flip, tie}
    g1, g2, g3 = sorted(good - dups)[:3]
    u1 = min(unlabelled)
    with fx.open() as ws:
        for i in sorted(good):
            labels.append_event(ws, item_kind="image", item_id=i, value="good", annotator="dana")
        labels.append_event(ws, item_kind="image", item_id=flip, value="good", annotator="dana")
        labels.append_event(ws, item_kind="image", item_id=flip, value="bad", annotator="dana", reasons=["text"])
        labels.append_event(ws, item_kind="image", item_id=tie, value="bad", annotator="dana")
        eve = labels.append_event(ws, item_kind="image", item_id=tie, value="good", annotator="eve", note="fine")
        curation_store.put_filter_results(ws, [
            {"image_id": g1, "filter": "quality", "params_hash": "h", "value": 0.9, "passed": True, "reason": "ok"},
            {"image_id": g1, "filter": "layout", "params_hash": "h", "value": 0.2, "passed": False,
             "reason": "cluttered layout"},
            {"image_id": g2, "filter": "quality", "params_hash": "h", "value": 0.8, "passed": True, "reason": "ok"},
            {"image_id": g2, "filter": "text", "params_hash": "h", "value": None, "passed": None,
             "reason": "OCR unavailable"},
            {"image_id": g3, "filter": "text", "params_hash": "h", "value": None, "passed": None,
             "reason": "OCR unavailable"},
            {"image_id": u1, "filter": "quality", "params_hash": "h", "value": 0.7, "passed": True, "reason": "ok"}])
        ids = np.array(sorted(img), np.int64)
        run = classifier_runs.reserve_run_id(ws)
        classifier_runs.record_run(ws, run, {"version": "t", "n_labels": 3, "label_hash": "x", "features": "f"},
                                   ids, np.array([_score(int(i)) for i in ids]))
        cats = {c["id"]: c["category"] for c in taxonomy.taxonomy(ws)}
    return {"img": img, "good": good, "tie": tie, "flip": flip, "bad": bad, "unlabelled": unlabelled,
            "g1": g1, "g2": g2, "g3": g3, "u1": u1, "run": run, "eve_at": eve["created_at"], "cats": cats}


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_image_set_formats_splits_card_and_verify(fx):
    k = _curate(fx)
    want = k["good"] | {k["tie"]}
    with fx.open() as ws:
        s = export_splits(ws, "imgs", ExportOptions(kind="images", shard_size=9))
    out = Path(s["out_dir"])
    assert s["verify"]["ok"], s["verify"]["problems"]
    n = s["counts"]["splits"]
    assert s["counts"]["selected"] == sum(n.values()) == len(want) and s["counts"]["candidates"] == len(k["img"])
    assert all(n[x] > 0 for x in SPLITS) and n["train"] >= 0.7 * len(want)
    assert s["counts"]["dropped"] == {"labelled bad": 2, "not labelled": len(k["unlabelled"])}

    rows = _manifest(out)
    by_id = {r["image_id"]: r for r in rows}
    assert set(by_id) == want and k["flip"] not in by_id and not k["bad"] & set(by_id)
    # near-duplicates (one dup_group) never straddle two splits
    pairs = [(a, b) for a, b in fx.dup_pairs if a in by_id and b in by_id]
    assert len(pairs) >= 4
    for a, b in pairs:
        assert by_id[a]["split"] == by_id[b]["split"] and by_id[a]["group"] == by_id[b]["group"]
    assert Counter(r["split"] for r in rows) == Counter({x: n[x] for x in SPLITS if n[x]})

    t = k["img"][k["tie"]]
    r = by_id[k["tie"]]
    assert r["id"] == f"i{k['tie']:08d}" and r["label"] == "good" and r["label_annotator"] == "eve"
    assert r["label_history"] == 2 and datetime.fromisoformat(r["label_at"]) == k["eve_at"].replace(microsecond=0)
    assert sorted((x["annotator"], x["value"]) for x in r["labels"]) == [("dana", "bad"), ("eve", "good")]
    assert r["category"] == k["cats"][t["category_id"]] and r["domain"] == t["domain"]
    assert r["product"].startswith("Product ") and r["image_format"] == "PNG" and r["image_width"] >= 512
    assert r["prompts"] == [t["prompt"]]
    assert r["classifier_score"] == _score(k["tie"]) and r["classifier_run"] == k["run"]
    data = (out / r["image"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == r["image_sha256"]
    assert r["image"] == f"media/images/{r['image_sha256']}.png"
    g1, g2, g3 = by_id[k["g1"]], by_id[k["g2"]], by_id[k["g3"]]
    assert g1["filters"]["layout"] == {"value": 0.2, "passed": False, "reason": "cluttered layout", "status": "failed"}
    assert g1["filters"]["quality"]["status"] == "passed" and g1["filters"]["text"]["status"] == "not run"
    assert (g1["filters_passed"], g2["filters_passed"], g3["filters_passed"]) == (False, True, None)
    assert g2["filters"]["text"]["status"] == "could not run" and by_id[min(k["good"])]["label_history"] == 1

    # Parquet: the columns, and the same rows per split
    for x in SPLITS:
        tbl = pq.read_table(out / "data" / f"{x}.parquet")
        assert tbl.column_names == COLUMNS and tbl.num_rows == n[x]
    prow = next(p for p in pq.read_table(out / "data" / f"{by_id[k['g1']]['split']}.parquet").to_pylist()
                if p["image_id"] == k["g1"])
    assert prow["filters"]["layout"]["passed"] is False and prow["prompts"] == g1["prompts"]
    # CSV: flat columns, filter value and status per filter
    with open(out / "csv" / f"{g1['split']}.csv", newline="") as f:
        crows = {int(c["image_id"]): c for c in csv.DictReader(f)}
    c = crows[k["g1"]]
    assert (c["layout"], c["layout_status"], c["quality"], c["filters_passed"]) == ("0.2", "failed", "0.9", "False")
    assert json.loads(c["prompts"]) == g1["prompts"] and c["label"] == "good"
    # WebDataset: image, prompts, metadata per sample; no video
    members: Counter = Counter()
    for sh in sorted((out / "wds").glob("*.tar")):
        with tarfile.open(sh) as tar:
            for m in tar.getmembers():
                members[m.name.rsplit(".", 1)[1]] += 1
                if m.name == f"{r['id']}.txt":
                    assert tar.extractfile(m).read().decode() == t["prompt"]
    assert members == {"png": len(want), "txt": len(want), "json": len(want)}

    card = (out / "README.md").read_text()
    assert "pretty_name: Ad-VFX curated product images" in card and "# Ad-VFX curated image set" in card
    assert f"{len(want)} images (of {len(k['img'])} in the workspace)" in card and "task_categories" not in card
    assert "current label: good" in card and "near-duplicate images" in card
    assert verify_export(out)["ok"]


def test_score_and_filters_select_instead_of_the_label(fx):
    k = _curate(fx)
    high = {u for u in k["unlabelled"] if _score(u) >= 0.5}
    assert high and k["unlabelled"] - high          # both sides present, so the threshold decides something
    with fx.open() as ws:
        s = export_splits(ws, "scored", ExportOptions(kind="images", label_state="not_rejected",
                                                      classifier_min=0.5, formats=("jsonl",)))
    got = {r["image_id"] for r in _manifest(Path(s["out_dir"]))}
    # a designer's good label counts as 1 whatever the classifier says; bad labels drop the image
    assert got == k["good"] | {k["tie"]} | high
    assert s["verify"]["ok"] and s["counts"]["dropped"]["labelled bad"] == 2


def test_cli_kind_images(fx):
    k = _curate(fx)
    cmd = [sys.executable, "-m", "curation", "export", "--kind", "images", "--workspace", str(fx.root)]
    p = subprocess.run(cmd + ["--out", "cli", "--json"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["counts"]["selected"] == len(k["good"]) + 1 and s["options"]["kind"] == "images"
    assert s["verify"]["ok"] and s["options"]["label_state"] == "accepted"
    p = subprocess.run(cmd + ["--out", "filtered", "--passed-filters", "--formats", "jsonl"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"exported 2 of {len(k['img'])} images")     # g2 and u1: passed, none failed
    assert {r["image_id"] for r in _manifest(fx.root / "exports" / "filtered")} == {k["g2"], k["u1"]}
    p = subprocess.run([sys.executable, "-m", "curation", "export", "verify", s["out_dir"]], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok"
