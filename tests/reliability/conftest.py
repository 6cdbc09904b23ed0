"""Reliability fixtures: the app in-process on a demo workspace copy (with >= 5,000 bulk image rows)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from .loadgen import add_bulk_images, free_port

REPO = Path(__file__).resolve().parents[2]


def load_app_module():
    spec = importlib.util.spec_from_file_location("advfx_app_main_rel", REPO / "app.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, _demo_workspace_template):
    """(url, ws, launch kwargs) of the app launched in-process, as app.main does, on a fresh workspace copy."""
    app_module = load_app_module()
    root = tmp_path_factory.mktemp("rel_app") / "ws"
    shutil.copytree(_demo_workspace_template, root)
    demo, launch_kw, ws = app_module.create(root)
    add_bulk_images(ws, 5000)
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kw)
    try:
        yield f"http://127.0.0.1:{port}/", ws, launch_kw
    finally:
        demo.close()
        ws.close()
