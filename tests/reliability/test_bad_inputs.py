"""The bad-input corpus through ingest: each input gets a correct result or a clear error, nothing else is
lost, and hostile text is stored verbatim without touching the schema."""
from __future__ import annotations

from pathlib import Path

import pytest

from curation.ingest import ingest
from storage import Workspace, catalog

from .corpus import SQLISH, build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    media, expected = build(root)
    return root, media, expected


@pytest.fixture(scope="module")
def ingested(corpus, tmp_path_factory):
    root, media, expected = corpus
    ws = Workspace.open(tmp_path_factory.mktemp("ws") / "ws")
    report = ingest(ws, [media, root / "manifest_dir" / "m.jsonl"])
    yield ws, report, expected, root
    ws.close()


def test_corpus_is_large_enough(corpus):
    assert len(corpus[2]) >= 30


def test_every_input_has_its_expected_outcome(ingested):
    ws, report, expected, root = ingested
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    images = {Path(r["path"]).name: r for r in ws.query_dicts("SELECT * FROM images")}
    videos = {Path(r["path"]).name: r for r in ws.query_dicts("SELECT * FROM videos")}
    for name, (kind, check) in expected.items():
        if kind == "error":
            name = name.encode("utf-8", "backslashreplace").decode("utf-8")  # how reports print bad names
            assert name in failed, f"{name}: expected an error containing {check!r}"
            assert check in failed[name], (name, failed[name])
            assert name not in images and name not in videos
            continue
        assert name not in failed, (name, failed.get(name))
        rows = images if kind == "image" else videos
        if name not in rows:  # same bytes as an earlier file: stored once under the first name
            continue
        row = rows[name]
        for key, want in check.items():
            if key == "duration_min":
                assert row["duration"] >= want, (name, row["duration"])
            else:
                assert row[key] == want, (name, key, row[key])


def test_hostile_text_is_stored_verbatim_and_schema_survives(ingested):
    ws, report, expected, root = ingested
    assert ws.query_one("SELECT count(*) FROM prompts WHERE text = ?", [SQLISH])[0] == 1
    assert ws.query_one("SELECT count(*) FROM triples WHERE model = ? AND product = ?", [SQLISH, SQLISH])[0] == 1
    assert ws.query_one("SELECT max(length(text)) FROM prompts")[0] == 100_000
    assert any("unknown category" in w["warning"] for w in report.warnings)
    assert catalog.counts(ws)["images"] >= 10  # the images table is still there and full


def test_manifest_escapes_are_refused(ingested):
    ws, report, expected, root = ingested
    escapes = [f for f in report.failed if "escapes the manifest's folder" in f["error"]]
    assert len(escapes) == 2
    assert not ws.query("SELECT path FROM images WHERE path LIKE '%secret.png' OR path LIKE '%passwd'")
    assert any("not a JSON object" in f["error"] for f in report.failed)


def test_batch_exit_code_is_success_when_some_land(ingested):
    ws, report, expected, root = ingested
    assert report.exit_code == 0 and report.added["images"] > 0 and report.added["videos"] > 0
