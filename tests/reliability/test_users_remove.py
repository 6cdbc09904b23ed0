"""`python -m curation users remove`: the user leaves the users file, and a running app refuses its login at once
while the other user still logs in (the app re-reads the file when it changes)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .loadgen import free_port

REPO = Path(__file__).resolve().parents[2]


def users_cli(*args: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEST_USER_PASSWORD": password or ""}
    cmd = [sys.executable, "-m", "curation", "users", *args]
    if password is not None:
        cmd += ["--password-env", "TEST_USER_PASSWORD"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def login(url: str, user: str, password: str) -> int:
    """Gradio's login form: 200 when the credentials are accepted, 400 when they are refused."""
    body = urllib.parse.urlencode({"username": user, "password": password}).encode()
    req = urllib.request.Request(url + "login", data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.loads(r.read()) == {"success": True}
            return r.status
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            assert json.loads(exc.read())["detail"] == "Incorrect credentials."
        return exc.code


@pytest.fixture()
def app_with_users(tmp_path, _demo_workspace_template):
    """The app launched in-process as app.main does with --users FILE; yields (url, users file)."""
    from curation.auth import authenticator

    users = tmp_path / "users.json"
    for name, pw in (("alice", "alice pw 1"), ("bob", "bob pw 2")):
        p = users_cli("add", name, "--config", str(users), password=pw)
        assert p.returncode == 0, p.stderr
    root = tmp_path / "ws"
    shutil.copytree(_demo_workspace_template, root)
    spec = importlib.util.spec_from_file_location("advfx_app_users", REPO / "app.py")
    app_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_module)
    demo, launch_kw, ws = app_module.create(root, auth_enabled=True)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                auth=authenticator(users), **launch_kw)
    try:
        yield f"http://127.0.0.1:{port}/", users
    finally:
        demo.close()
        ws.close()


def test_users_remove_drops_the_user_and_its_login(app_with_users):
    url, users = app_with_users
    assert login(url, "alice", "alice pw 1") == 200
    assert login(url, "bob", "bob pw 2") == 200
    assert login(url, "alice", "not her password") == 400     # the app checks passwords at all

    p = users_cli("remove", "alice", "--config", str(users))
    assert p.returncode == 0, p.stderr
    assert set(json.loads(users.read_text())["users"]) == {"bob"}
    listed = users_cli("list", "--config", str(users))
    assert listed.returncode == 0 and [ln.split("\t")[0] for ln in listed.stdout.splitlines()] == ["bob"]

    assert login(url, "alice", "alice pw 1") == 400          # refused by the running app, no restart
    assert login(url, "bob", "bob pw 2") == 200

    # removing a user who is not there says so through the exit code and changes nothing
    again = users_cli("remove", "alice", "--config", str(users))
    assert again.returncode == 1
    assert set(json.loads(users.read_text())["users"]) == {"bob"}
