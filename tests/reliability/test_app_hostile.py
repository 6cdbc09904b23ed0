"""Hostile text through the app's endpoints is stored verbatim, bad ids and values give clear errors, and the
app keeps answering afterwards."""
from __future__ import annotations

import uuid

import pytest
from gradio_client import Client

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
        try:
            out = client.predict("image", item, "good", annot, ["blurry", text], text, key, api_name="/label")
        except Exception as exc:                     # a refusal is fine only with a clear message, never a crash
            assert "\x00" in text, f"{text[:40]!r} refused: {exc}"
            continue
        row = ws.query_dicts("SELECT note, annotator, reasons FROM label_events WHERE client_key = ?", [key])[0]
        assert row["note"] == text and row["reasons"] == ["blurry", text] and row["annotator"] == annot.strip()
        assert out["event_id"] > 0
    assert ws.query_one("SELECT count(*) FROM label_events")[0] > 0     # the table is still there
    assert ws.query_one("SELECT count(*) FROM images")[0] >= 5000


@pytest.mark.parametrize("args, message", [
    (("image", 1, "maybe", "ann"), "must be one of"),
    (("image", 1, "good", "   "), "Annotator"),
    (("video", 1, "good", "ann"), "must be one of"),
])
def test_bad_values_give_clear_errors(client, args, message):
    with pytest.raises(Exception) as exc:
        client.predict(*args, [], None, uuid.uuid4().hex, api_name="/label")
    assert message in str(exc.value)


@pytest.mark.parametrize("args", [("image", "abc", "good", "ann"), ("bogus_kind", 1, "good", "ann"),
                                  ("image", 10**30, "good", "ann")])
def test_bad_ids_are_refused_and_app_keeps_answering(live_app, client, args):
    url, ws, _ = live_app
    before = ws.query_one("SELECT count(*) FROM label_events")[0]
    with pytest.raises(Exception):
        client.predict(*args, [], None, uuid.uuid4().hex, api_name="/label")
    assert ws.query_one("SELECT count(*) FROM label_events")[0] == before
    item = ws.query_one("SELECT id FROM images ORDER BY id LIMIT 1")[0]
    out = client.predict("image", item, "bad", "after-error", [], None, uuid.uuid4().hex, api_name="/label")
    assert out["event_id"] > 0 and client.predict("image", item, api_name="/current_label")["value"] in ("good", "bad")


@pytest.mark.parametrize("item_id", [987654321, -5])
def test_unknown_item_id_is_refused(live_app, client, item_id):
    with pytest.raises(Exception) as exc:
        client.predict("image", item_id, "good", "ann", [], None, uuid.uuid4().hex, api_name="/label")
    assert str(item_id) in str(exc.value) or "no such" in str(exc.value).lower()
