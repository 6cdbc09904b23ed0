"""The app started in-process (demo.launch(prevent_thread_lock=True)) on a copy of the demo workspace."""
from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]


def load_app_module():
    """The repository's app.py, loaded by path (the name `app` is ambiguous next to tests/app/)."""
    spec = importlib.util.spec_from_file_location("advfx_app_main", REPO / "app.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, _demo_workspace_template):
    """(url, workspace) of a running app on a fresh demo workspace copy, with MotionX scored for video 1."""
    app_module = load_app_module()
    from curation import executors

    root = tmp_path_factory.mktemp("app_ws") / "ws"
    shutil.copytree(_demo_workspace_template, root)
    with serve_app(app_module, root,
                   lambda ws: executors.run_scoring(ws, ["motionx"], video_ids=[1])) as served:
        yield served


@contextlib.contextmanager
def serve_app(app_module, root: Path, prepare=None):
    """(url, workspace) of the app served on 127.0.0.1 for `root`; `prepare(ws)` runs before it serves."""
    demo, launch_kw, ws = app_module.create(root)
    try:
        if prepare is not None:
            prepare(ws)
        demo.queue(default_concurrency_limit=4)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kw)
        yield f"http://127.0.0.1:{port}/", ws
    finally:
        demo.close()
        ws.close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (make browser installs Debian's package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
