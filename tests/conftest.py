"""Shared fixtures. Field tests read real media from ../shared/fieldmedia and skip, naming the
missing path, only when that folder is absent."""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ADVFX_SHARED", REPO.parent / "shared"))
FIELDMEDIA = SHARED / "fieldmedia"
SHARED_MODELS = SHARED / "models"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def fieldmedia() -> Path:
    if not (FIELDMEDIA / "MANIFEST.tsv").exists():
        pytest.skip(f"real media not found at {FIELDMEDIA}")
    return FIELDMEDIA


@pytest.fixture(scope="session")
def field_manifest(fieldmedia: Path) -> list[dict]:
    with open(fieldmedia / "MANIFEST.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not SHARED_MODELS.exists():
        pytest.skip(f"shared model heads not found at {SHARED_MODELS}")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def demo_media(tmp_path_factory) -> Path:
    """The demo generator's media (images, masks, videos, manifest.jsonl), generated once per run."""
    from curation.demo import generate_demo_media

    out = tmp_path_factory.mktemp("demo_media")
    generate_demo_media(out, seed=0)
    return out


@pytest.fixture(scope="session")
def _demo_workspace_template(tmp_path_factory, demo_media) -> Path:
    from curation.ingest import ingest
    from storage import Workspace

    root = tmp_path_factory.mktemp("demo_ws_template") / "ws"
    with Workspace.open(root) as ws:
        report = ingest(ws, [demo_media / "manifest.jsonl"], source="demo")
        assert not report.failed, report.failed
    return root


@pytest.fixture()
def demo_workspace(tmp_path, _demo_workspace_template) -> Path:
    """A fresh copy of an ingested demo workspace (path); tests may write to it."""
    dst = tmp_path / "ws"
    shutil.copytree(_demo_workspace_template, dst)
    return dst


@pytest.fixture()
def workspace(tmp_path):
    """An empty, migrated, open workspace."""
    from storage import Workspace

    ws = Workspace.open(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
