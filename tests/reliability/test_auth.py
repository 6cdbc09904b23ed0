from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from curation.auth import AuthConfigError, add_user, authenticator, hash_password, load_users, verify_password

REPO = Path(__file__).resolve().parents[2]


def test_hashes_are_salted_and_verify():
    a, b = hash_password("s3cret"), hash_password("s3cret")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("s3cret", a) and not verify_password("S3cret", a)
    assert not verify_password("s3cret", "garbage") and not verify_password("x", "scrypt$1$1$1$zz$zz")


def test_users_file_round_trip_and_authenticator(tmp_path):
    cfg = tmp_path / "users.json"
    add_user(cfg, "dana", "pw-1")
    add_user(cfg, "lee", "pw-2", role="admin")
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    assert "pw-1" not in cfg.read_text()  # never stored in clear
    check = authenticator(cfg)
    assert check("dana", "pw-1") and check("lee", "pw-2")
    assert not check("dana", "pw-2") and not check("nobody", "pw-1")
    assert load_users(cfg)["lee"]["role"] == "admin"


def test_bad_users_files_are_clear_errors(tmp_path):
    with pytest.raises(AuthConfigError, match="does not exist"):
        load_users(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AuthConfigError, match="cannot be read"):
        load_users(bad)
    bad.write_text(json.dumps({"users": {"x y": {"hash": "plain"}}}))
    with pytest.raises(AuthConfigError, match="malformed"):
        load_users(bad)
    with pytest.raises(AuthConfigError, match="user name"):
        add_user(tmp_path / "u.json", "robert'); DROP TABLE users;--", "pw")


def test_users_cli(tmp_path):
    cfg = tmp_path / "users.json"
    env = {**os.environ, "PW": "hunter2"}
    p = subprocess.run([sys.executable, "-m", "curation", "users", "add", "kim", "--config", str(cfg),
                        "--password-env", "PW"], cwd=REPO, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    listed = subprocess.run([sys.executable, "-m", "curation", "users", "list", "--config", str(cfg)], cwd=REPO,
                            capture_output=True, text=True)
    assert listed.stdout.split() == ["kim", "annotator"]
    assert authenticator(cfg)("kim", "hunter2")
