"""The CLI as a user runs it: a separate process, JSON on stdout, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_ingest_and_status_json(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    Image.new("RGB", (32, 32), "red").save(media / "a.png")
    (media / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    ws = tmp_path / "ws"
    p = cli("ingest", "--workspace", str(ws), str(media), "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["added"] == {"images": 1, "videos": 0, "triples": 0} and report["skipped"] == 0
    assert [Path(f["path"]).name for f in report["failed"]] == ["broken.jpg"] and report["failed"][0]["error"]
    s = cli("status", "--workspace", str(ws), "--json")
    assert json.loads(s.stdout) == {"images": 1, "videos": 0, "triples": 0, "labels": 0, "metric_results": 0,
                                    "images_good": 0, "images_bad": 0, "videos_accept": 0, "videos_reject": 0,
                                    "triples_accept": 0, "triples_reject": 0}


def test_all_failed_exits_1_and_missing_workspace_exits_2(tmp_path):
    p = cli("ingest", "--workspace", str(tmp_path / "ws"), str(tmp_path / "nothing-here"), "--json")
    assert p.returncode == 1 and json.loads(p.stdout)["failed"][0]["error"] == "path does not exist"
    s = cli("status", "--workspace", str(tmp_path / "absent"))
    assert s.returncode == 2 and "no workspace" in s.stderr


def test_help_lists_commands():
    p = cli("--help")
    assert p.returncode == 0 and "ingest" in p.stdout and "status" in p.stdout and "demo" in p.stdout
