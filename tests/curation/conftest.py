"""Fixtures of the image-curation tests: a labelled demo workspace."""
from __future__ import annotations

import pytest


@pytest.fixture()
def labelled_demo(demo_workspace):
    """An open demo workspace whose images are all labelled by 'alice': the deliberately faulty ones
    bad, the rest good."""
    from storage import Workspace
    from storage import curation_store as cs
    from storage.labels import append_event

    ws = Workspace.open(demo_workspace)
    for im in cs.all_images(ws):
        bad = any(f in im["path"] for f in ("blurry", "collage", "text_over"))
        append_event(ws, item_kind="image", item_id=im["id"], value="bad" if bad else "good", annotator="alice")
    yield ws
    ws.close()
