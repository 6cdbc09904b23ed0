"""Hostile text through the app's endpoints is stored verbatim, bad ids and values give clear errors, and the
app keeps answering afterwards."""
from __future__ import annotations

import uuid

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from .corpus import SQLISH

HOSTILE = [SQLISH, "Robert'); DROP TABLE label_events;--", "x" * 100_000, "商品 广告 ✓ — ñ 🚀 \u202e evil", "\x00nul",
           "<script>alert(1)</script>", "line1\nline2\r\n\ttab"]


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app[0], verbose=False)


def test_hostile_text_is_stored_verbatim(live_app, client):
    url, ws, _ = live_app
    item = ws.query_one("SELECT id FROM images ORDER BY id LIMIT 1")[0]
    for text in HOSTILE:
        key = uuid.uuid4().hex
        annot = ("annot " + text)[:5000]
        out = client.predict("image", item, "good", annot, ["blurry", text], text, key, api_name="/label")
        row = ws.query_dicts("SELECT note, annotator, reasons FROM label_events WHERE client_key = ?", [key])[0]
        assert row["note"] == text and row["reasons"] == ["blurry", text] and row["annotator"] == annot.strip()
        assert out["event_id"] > 0 and out["duplicate"] is False
    assert ws.query_one("SELECT count(*) FROM label_events")[0] > 0     # the table is still there
    assert ws.query_one("SELECT count(*) FROM images")[0] >= 5000


@pytest.mark.parametrize("args, message", [
    (("image", 1, "maybe", "ann"), "image label must be one of good, bad, skip, got 'maybe'"),
    (("image", 1, "good", "   "), "Type your name in Annotator first: every label records who made it."),
    (("video", 1, "good", "ann"), "video label must be one of accept, reject, skip, got 'good'"),
])
def test_bad_values_give_clear_errors(client, args, message):
    # AppError carries a gr.Error's own message; a crash would say "has not enabled verbose error reporting"
    with pytest.raises(AppError) as exc:
        client.predict(*args, [], None, uuid.uuid4().hex, api_name="/label")
    assert message in str(exc.value)


@pytest.mark.parametrize("args, message", [
    (("image", "abc", "good", "ann"), "item id must be a whole number, got 'abc'"),
    (("bogus_kind", 1, "good", "ann"), "item_kind must be one of ('image', 'video', 'triple', 'pair'), "
                                       "got 'bogus_kind'"),
    (("image", 10**30, "good", "ann"), f"no image with id {10**30} in this workspace"),
])
def test_bad_ids_are_refused_and_app_keeps_answering(live_app, client, args, message):
    url, ws, _ = live_app
    before = ws.query_one("SELECT count(*) FROM label_events")[0]
    with pytest.raises(AppError) as exc:
        client.predict(*args, [], None, uuid.uuid4().hex, api_name="/label")
    assert message in str(exc.value)
    assert ws.query_one("SELECT count(*) FROM label_events")[0] == before
    item = ws.query_one("SELECT id FROM images ORDER BY id LIMIT 1")[0]
    out = client.predict("image", item, "bad", "after-error", [], None, uuid.uuid4().hex, api_name="/label")
    assert out["event_id"] > 0
    assert client.predict("image", item, api_name="/current_label")["event_id"] == out["event_id"]


@pytest.mark.parametrize("item_id", [987654321, -5])
def test_unknown_item_id_is_refused(live_app, client, item_id):
    with pytest.raises(AppError) as exc:
        client.predict("image", item_id, "good", "ann", [], None, uuid.uuid4().hex, api_name="/label")
    assert f"no image with id {item_id} in this workspace" in str(exc.value)
