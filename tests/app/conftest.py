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


# test_grid.py and test_bestof.py run against one app: a demo copy with a classifier run and two failed filters
# (what the grid's tiles show) and a third candidate in Best of N's first case. One app start, not one per file,
# and the first image's overlays (computed whenever a page opens) are computed once.
GRID_SCORES = {i: round(0.04 * i, 2) for i in range(1, 25)}      # image id -> classifier score, known here
GRID_FLAGGED = {5: ("quality", "too dark"), 9: ("text_clutter", "4 text boxes")}
BESTOF_CASE_IMAGE = 1          # the demo's first case: image 1, its prompt, two models; a third model's triple added


@pytest.fixture(scope="session")
def labelling_server(tmp_path_factory, _demo_workspace_template):
    """(url, workspace) of the app shared by the grid and Best-of-N tests (GRID_*, BESTOF_CASE_IMAGE)."""
    import numpy as np

    from storage import classifier_runs, curation_store, triples

    def prepare(ws):
        run = classifier_runs.reserve_run_id(ws)
        classifier_runs.record_run(ws, run, {"version": "test", "n_labels": 0, "label_hash": "t", "features": "t",
                                             "estimator": "t", "threshold": 0.5},
                                   np.array(list(GRID_SCORES)), np.array(list(GRID_SCORES.values())))
        curation_store.put_filter_results(ws, [{"image_id": i, "filter": f, "params_hash": "t", "value": 0.0,
                                                "passed": False, "reason": why}
                                               for i, (f, why) in GRID_FLAGGED.items()])
        image_id, prompt_id = ws.query_one("SELECT image_id, prompt_id FROM triples WHERE image_id = ? LIMIT 1",
                                           [BESTOF_CASE_IMAGE])
        other = ws.query_one("SELECT min(video_id) FROM triples WHERE image_id <> ?", [BESTOF_CASE_IMAGE])[0]
        triples.add_triple(ws, video_id=other, image_id=image_id, prompt_id=prompt_id, model="DemoGen-C")

    root = tmp_path_factory.mktemp("labelling_ws") / "ws"
    shutil.copytree(_demo_workspace_template, root)
    with serve_app(load_app_module(), root, prepare) as served:
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
