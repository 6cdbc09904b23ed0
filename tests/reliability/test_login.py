"""The app with a users file: wrong passwords are refused, and every label carries the logged-in user."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client

from curation.auth import add_user
from storage import Workspace

from .loadgen import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_with_login(tmp_path_factory, _demo_workspace_template):
    root = tmp_path_factory.mktemp("login") / "ws"
    shutil.copytree(_demo_workspace_template, root)
    users = root.parent / "users.json"
    add_user(users, "dana", "correct horse")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--workspace", str(root), "--port", str(port),
                             "--users", str(users)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    import urllib.request

    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode())
            time.sleep(0.5)
    yield url, root
    proc.kill()
    proc.wait()


def test_wrong_password_is_refused(app_with_login):
    url, _ = app_with_login
    with pytest.raises(Exception):
        Client(url, auth=("dana", "wrong"), verbose=False)


def test_label_carries_the_logged_in_user(app_with_login):
    url, root = app_with_login
    client = Client(url, auth=("dana", "correct horse"), verbose=False)
    out = client.predict("image", 1, "good", "someone-else", [], "", "login-k1", api_name="/label")
    assert out["event_id"] > 0
    client.close()
    # the app holds the write lock; read the event through the API's own view instead of opening the file
    client = Client(url, auth=("dana", "correct horse"), verbose=False)
    cur = client.predict("image", 1, api_name="/current_label")
    assert cur["annotator"] == "dana" and cur["value"] == "good"


def test_bad_users_file_stops_start_up_with_a_clear_error(tmp_path):
    bad = tmp_path / "users.json"
    bad.write_text("{oops")
    Workspace.open(tmp_path / "ws").close()
    p = subprocess.run([sys.executable, "app.py", "--workspace", str(tmp_path / "ws"), "--users", str(bad),
                        "--no-demo"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "cannot be read" in p.stderr
