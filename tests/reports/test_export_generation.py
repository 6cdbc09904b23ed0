"""The generation hand-off: `export --kind generation` writes the curated images with their prompts as an ingest
manifest with an empty video column; a video filled in and the manifest ingested back makes the triple."""
from __future__ import annotations

import csv
import json

import numpy as np

from curation.cli import main
from curation.ingest import ingest
from media.encode import write_mp4
from storage import Workspace, labels


def test_generation_manifest_round_trips_through_ingest(demo_workspace, capsys):
    with Workspace.open(demo_workspace) as ws:
        labels.append_event(ws, item_kind="image", item_id=1, value="good", annotator="ann")
        labels.append_event(ws, item_kind="image", item_id=2, value="bad", annotator="ann")
        prompt = ws.query_one("SELECT text FROM prompts WHERE image_id = 1 ORDER BY id")[0]
        n_triples = ws.query_one("SELECT count(*) FROM triples")[0]
    out = demo_workspace / "exports" / "handoff"
    assert main(["export", "--kind", "generation", "--workspace", str(demo_workspace), "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 1                       # only the image labelled good; the bad one is left out
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == ["1"] and rows[0]["prompt"] == prompt and rows[0]["video"] == ""
    assert (out / rows[0]["image"]).is_file() and rows[0]["category"]
    assert [json.loads(x)["case_id"] for x in (out / "manifest.jsonl").read_text().splitlines()] == ["1:0"]

    # the generation team's part: a video per row, its file name and model written into the manifest
    frames = [np.full((64, 64, 3), 40 + 10 * k, np.uint8) for k in range(8)]
    (out / "videos").mkdir()
    write_mp4(out / "videos" / "gen_1.mp4", frames, 8)
    rows[0].update(video="videos/gen_1.mp4", model="TeamGen")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with Workspace.open(demo_workspace) as ws:
        report = ingest(ws, [out / "manifest.csv"])
        assert report.exit_code == 0, report.as_dict()
        assert ws.query_one("SELECT count(*) FROM triples")[0] == n_triples + 1
        row = ws.query_one("SELECT t.image_id, p.text, t.model FROM triples t JOIN prompts p ON p.id = t.prompt_id "
                           "ORDER BY t.id DESC LIMIT 1")
        assert (int(row[0]), row[1], row[2]) == (1, prompt, "TeamGen")   # the same image, not a copy of it
