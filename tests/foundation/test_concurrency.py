"""One process writes; threads inside it are serialized; a second writer process gets a clear error."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from storage import Workspace, WorkspaceLockedError, images, labels, videos


def _images(ws: Workspace, n: int) -> list[int]:
    return [images.add_image(ws, {"sha256": f"{i:064x}", "path": f"/m/{i}.png", "bytes": 1, "format": "PNG",
                                   "width": 1, "height": 1, "has_alpha": False})[0] for i in range(n)]


def _video(ws: Workspace) -> int:
    return videos.add_video(ws, {"sha256": "f" * 64, "path": "/m/v.mp4", "bytes": 1})[0]


def test_second_process_gets_clear_lock_error(tmp_path):
    root = tmp_path / "ws"
    Workspace.open(root).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parents[2])!r})
        from storage import Workspace
        ws = Workspace.open({str(root)!r})
        print("open", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WorkspaceLockedError, match=r"open for writing by another process"):
            Workspace.open(root)
    finally:
        holder.kill()
        holder.wait()
    with Workspace.open(root) as ws:  # after the holder dies the file opens cleanly
        assert ws.query_one("SELECT count(*) FROM label_events")[0] == 0


def test_threads_writing_at_once_lose_nothing(workspace):
    ids = _images(workspace, 40)
    errors: list[BaseException] = []

    def annotator(n: int) -> None:
        try:
            for i in ids:
                labels.append_event(workspace, item_kind="image", item_id=i, value="good" if i % 2 else "bad",
                                    annotator=f"a{n}", client_key=f"a{n}-{i}")
                labels.current_label(workspace, "image", i, f"a{n}")
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=annotator, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert workspace.query_one("SELECT count(*) FROM label_events")[0] == 6 * 40
    assert len(labels.current_labels(workspace, "image")) == 6 * 40


def test_client_key_makes_retries_idempotent(workspace):
    vid = _video(workspace)
    a = labels.append_event(workspace, item_kind="video", item_id=vid, value="accept", annotator="x", client_key="k1")
    b = labels.append_event(workspace, item_kind="video", item_id=vid, value="accept", annotator="x", client_key="k1")
    assert a["id"] == b["id"] and b["duplicate"] and not a["duplicate"]
    assert len(labels.events(workspace)) == 1


def test_undo_restores_previous_label_and_keeps_history(workspace):
    _images(workspace, 8)
    e1 = labels.append_event(workspace, item_kind="image", item_id=7, value="good", annotator="ann")
    time.sleep(0.001)
    e2 = labels.append_event(workspace, item_kind="image", item_id=7, value="bad", annotator="ann",
                             reasons=["blurry"], note="soft focus")
    assert labels.current_label(workspace, "image", 7, "ann")["value"] == "bad"
    last = labels.last_undoable(workspace, "ann", ("image",))
    assert last["id"] == e2["id"]
    labels.append_event(workspace, item_kind="image", item_id=7, value="undo", annotator="ann", undoes=e2["id"])
    cur = labels.current_label(workspace, "image", 7, "ann")
    assert cur["value"] == "good" and cur["event_id"] == e1["id"]
    assert [e["value"] for e in labels.events(workspace)] == ["good", "bad", "undo"]  # append-only


def test_labels_are_per_annotator(workspace):
    _images(workspace, 2)
    labels.append_event(workspace, item_kind="image", item_id=1, value="good", annotator="a")
    labels.append_event(workspace, item_kind="image", item_id=1, value="bad", annotator="b")
    assert labels.current_label(workspace, "image", 1, "a")["value"] == "good"
    assert labels.current_label(workspace, "image", 1, "b")["value"] == "bad"
    with pytest.raises(ValueError):
        labels.append_event(workspace, item_kind="bogus", item_id=1, value="good", annotator="a")
    with pytest.raises(ValueError, match="no image with id 999"):
        labels.append_event(workspace, item_kind="image", item_id=999, value="good", annotator="a")
    assert len(labels.events(workspace)) == 2
