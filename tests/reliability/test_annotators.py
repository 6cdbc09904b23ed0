"""Concurrent annotators through gradio_client and through Gradio's plain HTTP API (each its own client, one
thread each): nothing lost, nothing duplicated, the current-label view equals a replay of the event log, and
latency stays low. The full-size run (10 x 500, p95 < 100 ms) is bench/bench_annotators.py; this asserts the
same properties at 4 x 40, loosely."""
from __future__ import annotations

import pytest

from .loadgen import check_against_db, percentile, run_annotators


@pytest.mark.parametrize("client", ["gradio_client", "http"])
def test_concurrent_annotators_lose_nothing(live_app, client):
    url, ws, _ = live_app
    assert ws.query_one("SELECT count(*) FROM images")[0] >= 5000
    ids = [r[0] for r in ws.query("SELECT id FROM images ORDER BY id")]
    # a small pool of items so annotators collide on the same items, plus undos and client retries
    res = run_annotators(url, ids[:60], annotators=4, per_annotator=40, seed=1, undo_every=7, retry_every=5,
                         client=client, name_prefix=client)
    assert not res.errors, res.errors[:5]
    assert len(res.acks) == 4 * 40                      # every action acknowledged (undo always finds one)
    assert res.retries_sent > 0 and res.retries_duplicate == res.retries_sent   # retries add nothing
    chk = check_against_db(ws, res)
    assert chk["lost"] == 0 and chk["duplicate_keys"] == 0 and chk["unacknowledged_in_db"] == 0, chk
    assert chk["events"] == chk["acked"] == 160, chk
    assert chk["current_view_mismatches"] == 0, chk
    lat = res.latencies_ms()
    assert percentile(lat, 95) < 1000, f"p95 {percentile(lat, 95):.0f} ms"
    # the app still answers, and the current-label endpoint gives the label rule's decision (resolved_labels)
    from gradio_client import Client

    last = next(a for a in reversed(res.acks) if not a.undo)
    got = Client(url, verbose=False).predict("image", last.item_id, api_name="/current_label")
    row = ws.query_dicts("SELECT label AS value, last_event AS event_id FROM resolved_labels "
                         "WHERE item_kind = 'image' AND item_id = ?", [last.item_id])
    assert got == {} if not row else (got["value"] == row[0]["value"] and got["event_id"] == row[0]["event_id"])
