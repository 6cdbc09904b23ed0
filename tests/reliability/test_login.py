"""The app with a users file: wrong passwords are refused, and every label carries the logged-in user."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
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
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError:
                break                       # the server answered, even if not with 200
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the app exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
                if time.time() > deadline:
                    pytest.fail(f"the app did not answer on {url} within 120 s")
                time.sleep(0.5)
        yield url, root
    finally:
        proc.kill()
        proc.wait()


def _login(url: str, user: str, password: str) -> tuple[int, str]:
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "login", data=data), timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_wrong_password_is_refused(app_with_login):
    url, _ = app_with_login
    # Gradio's login route answers a refused login with 400 "Incorrect credentials."
    refused = (400, '{"detail":"Incorrect credentials."}')
    assert _login(url, "dana", "wrong") == refused
    assert _login(url, "mallory", "correct horse") == refused
    assert _login(url, "dana", "correct horse") == (200, '{"success":true}')
    with pytest.raises(ValueError, match=f"Could not login to {url}"):
        Client(url, auth=("dana", "wrong"), verbose=False)
    # without a login the app's API is closed
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url + "config", timeout=30)
    assert exc.value.code == 401


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
