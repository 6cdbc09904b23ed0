from __future__ import annotations

import duckdb
import pytest

from storage import LATEST_VERSION, Workspace, WorkspaceError, taxonomy
from storage.db import _migrations


def _tables(ws: Workspace) -> set[str]:
    return {r[0] for r in ws.query("SELECT table_name FROM information_schema.tables")}


def test_empty_file_migrates_to_latest_and_reopens(tmp_path):
    root = tmp_path / "ws"
    with Workspace.open(root) as ws:
        assert ws.schema_version() == LATEST_VERSION
        assert {"images", "videos", "prompts", "triples", "label_events", "metric_results", "embeddings",
                "classifier_runs", "exports", "categories", "domains", "current_labels"} <= _tables(ws)
    with Workspace.open(root) as ws:  # re-open: nothing to apply, data intact
        assert ws.migrate() == []
        assert ws.schema_version() == LATEST_VERSION
    with Workspace.open(root, read_only=True) as ws:
        assert ws.schema_version() == LATEST_VERSION


def test_taxonomy_has_six_domains_and_44_subcategories(workspace):
    tax = taxonomy.taxonomy(workspace)
    assert len(tax) == 44
    assert {t["domain"] for t in tax} == {"Electronics & Mobility", "Lifestyle & Leisure", "Food & Beverages",
                                         "Beauty & Health", "Fashion & Luxury", "Home & Appliances"}
    assert taxonomy.resolve_category(workspace, "skincare") == taxonomy.resolve_category(
        workspace, "Beauty & Health / Skincare") is not None
    new_id = taxonomy.add_category(workspace, "Beauty & Health", "Nail Care")
    assert taxonomy.resolve_category(workspace, "Nail Care") == new_id
    taxonomy.rename_category(workspace, new_id, "Nails")
    assert taxonomy.resolve_category(workspace, "nails") == new_id


def test_partially_migrated_file_catches_up(tmp_path):
    """A file written by an older version (only the first migration) is brought to the latest on open."""
    db = tmp_path / "ws" / "studio.duckdb"
    db.parent.mkdir()
    first_version, name, sql = _migrations()[0]
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [first_version, name])
    con.close()
    with Workspace.open(db.parent) as ws:
        assert ws.schema_version() == LATEST_VERSION
        assert len(taxonomy.taxonomy(ws)) == 44  # the taxonomy seed (a later migration) ran


def test_newer_schema_is_refused(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        ws.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'future')", [LATEST_VERSION + 50])
    with pytest.raises(WorkspaceError, match="newer"):
        Workspace.open(tmp_path / "ws")


def test_missing_workspace_read_only_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="no workspace"):
        Workspace.open(tmp_path / "nope", read_only=True)


def test_workspace_path_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(WorkspaceError, match="not a folder"):
        Workspace.open(f)


def test_corrupt_database_file_is_a_clear_error(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "studio.duckdb").write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(WorkspaceError, match="cannot open"):
        Workspace.open(root)
