"""gradio_client tests of the named endpoints: labels land in DuckDB, undo, idempotency, filters."""
from __future__ import annotations

import uuid

import pytest

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(app_server):
    url, _ = app_server
    return gradio_client.Client(url, verbose=False)


def events(ws, **where):
    sql = "SELECT id, item_kind, item_id, value, annotator, reasons, note, undoes, payload FROM label_events"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
    return ws.query_dicts(sql + " ORDER BY id", list(where.values()))


def test_label_endpoint_is_durable_and_idempotent(client, app_server):
    _, ws = app_server
    key = uuid.uuid4().hex
    res = client.predict(item_kind="image", item_id=5, value="bad", annotator="api-ann",
                         reasons=["blurry"], note="soft", client_key=key, api_name="/label")
    assert res["duplicate"] is False
    again = client.predict(item_kind="image", item_id=5, value="bad", annotator="api-ann",
                           reasons=["blurry"], note="soft", client_key=key, api_name="/label")
    assert again["duplicate"] is True and again["event_id"] == res["event_id"]
    rows = events(ws, annotator="api-ann", item_id=5)
    assert len(rows) == 1 and rows[0]["value"] == "bad" and rows[0]["reasons"] == ["blurry"]
    cur = client.predict(item_kind="image", item_id=5, api_name="/current_label")
    assert cur["value"] == "bad"


def test_label_rejects_bad_values(client):
    with pytest.raises(Exception, match="must be one of"):
        client.predict(item_kind="image", item_id=1, value="great", annotator="x", api_name="/label")
    with pytest.raises(Exception, match="Annotator"):
        client.predict(item_kind="image", item_id=1, value="good", annotator="  ", api_name="/label")


def test_undo_endpoint(client, app_server):
    _, ws = app_server
    client.predict(item_kind="image", item_id=6, value="good", annotator="undoer", api_name="/label")
    res = client.predict(annotator="undoer", item_kind="image", api_name="/undo")
    assert res["item_id"] == 6 and res["value"] == "good"
    assert ws.query_one("SELECT count(*) FROM current_labels WHERE annotator = 'undoer'")[0] == 0
    assert client.predict(annotator="undoer", item_kind="image", api_name="/undo") == {}


def test_image_queue_filters(client, app_server):
    _, ws = app_server
    client.predict(item_kind="image", item_id=2, value="good", annotator="filt", api_name="/label")
    unl = client.predict(label_state="unlabelled", order="id", limit=100, api_name="/image_queue")["items"]
    lab = client.predict(label_state="labelled", order="id", limit=100, api_name="/image_queue")["items"]
    assert 2 not in [r["id"] for r in unl] and 2 in [r["id"] for r in lab]
    assert len(unl) + len(lab) == 24
    mine = client.predict(label_state="any", annotator="filt", limit=100, api_name="/image_queue")["items"]
    assert [r["id"] for r in mine] == [2]
    cat = ws.query_one("SELECT category_id FROM images WHERE id = 1")[0]
    by_cat = client.predict(label_state="any", category_id=cat, limit=100, api_name="/image_queue")["items"]
    assert by_cat and all(r["category_id"] == cat for r in by_cat)


def test_video_queue_metric_range(client, app_server):
    from storage import metric_results

    _, ws = app_server
    from curation.current import current_keys

    cur = current_keys(ws)["motionx"]
    metric_results.put_result(ws, metric="motionx", version=cur["version"], params_hash=cur["params_hash"],
                              video_id=2, value=0.1, status="ok")
    # a stale row (an older version) is neither shown nor filtered on
    metric_results.put_result(ws, metric="motionx", version="0.1", params_hash="old", video_id=3, value=0.05,
                              status="ok")
    low = client.predict(label_state="any", metric="motionx", metric_max=0.15, api_name="/video_queue")["items"]
    assert [r["id"] for r in low] == [2] and low[0]["motionx"] == pytest.approx(0.1)


def test_images_ui_endpoints(client, app_server):
    """The Images tab's own endpoints: load the queue, label with the Good button, undo, navigate."""
    _, ws = app_server
    c = gradio_client.Client(app_server[0], verbose=False)
    out = c.predict("id", "unlabelled", 0, 0, 100, "", "", False, ["Product mask"], api_name="/images_load")
    assert 'data-image-id="1"' in out[0]
    # the key-press endpoints answer with the next item only (view, info, progress, reasons, note); the
    # "Saved" message, up-next strip and fresh progress come from the follow-up the page asks for
    out = c.predict(["blurry"], "looks soft", "ui-ann", "key-ui-1", ["Product mask"], api_name="/image_good")
    assert len(out) == 5 and 'data-image-id="1"' not in out[0] and 'class="iv"' in out[0]
    assert out[3] == [] and out[4] == ""                        # reasons and note cleared for the next item
    ev = events(ws, annotator="ui-ann")[0]
    assert ev["item_id"] == 1 and ev["reasons"] == ["blurry"] and ev["note"] == "looks soft"
    out = c.predict("ui-ann", "key-ui-2", [], api_name="/image_undo")
    assert 'data-image-id="1"' in out[0]
    out = c.predict([], api_name="/image_next")
    assert 'data-image-id="1"' not in out[0]
    out = c.predict([], api_name="/image_prev")
    assert 'data-image-id="1"' in out[0]


def test_video_and_compare_endpoints(client, app_server):
    _, ws = app_server
    c = gradio_client.Client(app_server[0], verbose=False)
    out = c.predict("any", "", "", 0, 100, "id", ["Frame counter"], api_name="/videos_load")
    assert 'data-video-id="1"' in out[0] and "motion-svg" in out[1]
    out = c.predict(["insufficient motion"], "", "vid-ann", "vkey-1", [], api_name="/video_reject")
    # the next video with its curve, source, scorecard and progress; reasons and note cleared
    assert 'data-video-id="1"' not in out[0] and "vid-wrap" in out[0] and out[-2] == []
    ev = events(ws, annotator="vid-ann")
    assert ev[0]["item_kind"] == "video" and ev[0]["reasons"] == ["insufficient motion"]
    frame_path, info = c.predict(video_id=1, frame=10, layers=["Frame counter"], api_name="/video_frame")
    assert info.startswith("Frame 11 of 80")
    out = c.predict("cmp-ann", api_name="/compare_next")
    assert "cmp-v" in out[0]
    out = c.predict("left", "tie", "cmp-ann", "ckey-1", api_name="/compare_choose")
    assert "Saved" in out[-1]
    ev = events(ws, annotator="cmp-ann")
    import json

    p = json.loads(ev[0]["payload"])
    assert ev[0]["item_kind"] == "pair" and p["prompt_following"] == "left" and p["ad_quality"] == "tie"
    assert p["left_model"] != p["right_model"] and {"left_triple", "right_triple"} <= set(p)


def test_pairs_meet_evenly(app_server):
    """Every model pair is drawn before any repeats; left/right order is randomised."""
    from labeling.service import ReviewService

    _, ws = app_server
    svc = ReviewService(ws, seed=3)
    seen = []
    for k in range(6):
        p = svc.next_pair("even")
        assert p is not None
        seen.append(p["left"]["model"])
        svc.judge_pair(left_triple=p["left"]["triple_id"], right_triple=p["right"]["triple_id"],
                       prompt_following="tie", ad_quality="tie", annotator="even")
    assert svc.next_pair("even") is None  # 6 demo cases, each judged once by this annotator
    assert len(set(seen)) == 2


def test_classifier_kept_endpoint(client, app_server):
    _, ws = app_server
    assert ws.query_one("SELECT count(*) FROM predictions")[0] == 0      # no run yet in this module
    out = client.predict(50, api_name="/classifier_kept")
    assert out == "No predictions yet: train a classifier first."


def test_classifier_tab_trains_with_progress(app_server):
    """The Classifier tab's endpoint runs curation.classifier.train in the background and reports the run."""
    from curation.demo import BAD_IMAGES

    url, ws = app_server
    c = gradio_client.Client(url, verbose=False)
    paths = ws.query("SELECT id, path FROM images ORDER BY id")
    for iid, path in paths:
        idx = int(path.rsplit("/", 1)[-1].split("_")[1])
        c.predict(item_kind="image", item_id=iid, value="bad" if idx in BAD_IMAGES else "good",
                  annotator="trainer", client_key=f"train-{iid}", api_name="/label")
    prog, result, figs = c.predict("classical", api_name="/classifier_train")
    assert "done" in prog, prog
    assert '"run"' in result
    hist, plot = c.predict(api_name="/classifier_history")
    assert "classical" in hist
    # the slider counts the newest run's predictions at or above the threshold
    run = ws.query_one("SELECT max(run_id) FROM predictions")[0]
    scores = [r[0] for r in ws.query("SELECT score FROM predictions WHERE run_id = ?", [run])]
    assert len(scores) == 24
    for pct in (0, 50, 100):
        kept = sum(1 for v in scores if v >= pct / 100)
        assert c.predict(pct, api_name="/classifier_kept") == \
            f"**{kept:,}** of 24 scored images would be kept at {pct}%."


def test_statistics_and_export_tabs(client, app_server):
    """Statistics and Export run the CLI's code paths in the background and show their result and figures."""
    import json
    from pathlib import Path

    _, ws = app_server
    prog, result, figs = client.predict(api_name="/stats_run")
    assert "done" in prog, prog
    totals = json.loads(result)["totals"]
    # the demo: 24 images, 6 cases x 2 generator models, one prompt per case
    assert totals == {"images": 24, "triples": 12, "videos": 12, "prompts": 6, "models": ["DemoGen-A", "DemoGen-B"]}
    assert sorted(f["caption"] for f in figs) == ["domains.png", "metrics.png", "prompt_lengths.png",
                                                   "top_terms.png"]
    assert all(Path(f["image"]).is_file() for f in figs)
    # accept three videos whose source images nobody in this module labels bad (images of cases 2-4);
    # the default export keeps exactly their triples
    accepted = [3, 5, 7]
    for vid in accepted:
        client.predict(item_kind="video", item_id=vid, value="accept", annotator="exporter",
                       client_key=f"export-{vid}", api_name="/label")
    expected = {r[0] for r in ws.query("SELECT id FROM triples WHERE video_id IN (3, 5, 7)")}
    assert len(expected) == 3
    out_dir = ws.root / "exports" / "tab"
    prog, result, _ = client.predict(str(out_dir), api_name="/export_run")
    assert "done" in prog, prog
    summary = json.loads(result)
    assert summary["out_dir"] == str(out_dir) and summary["verify"]["ok"]
    assert summary["counts"]["candidates"] == 12 and summary["counts"]["selected"] == 3
    assert sum(summary["counts"]["splits"].values()) == 3
    rows = [json.loads(line) for line in (out_dir / "manifest.jsonl").read_text().splitlines()]
    assert {r["triple_id"] for r in rows} == expected and all(r["label"] == "accept" for r in rows)
    assert "Nothing is running" in client.predict(api_name="/export_run_cancel")


def test_key_pressed_during_a_request_labels_the_item_on_screen(app_server):
    """A label request names the item the designer saw ('<key>@<id>'): a second key pressed while the first
    request was in flight labels that item and does not skip the next one unseen."""
    _, ws = app_server
    c = gradio_client.Client(app_server[0], verbose=False)
    c.predict("id", "any", 0, 0, 100, "", "", False, [], api_name="/images_load")
    out = c.predict([], "", "fast-ann", "fk-1@1", [], api_name="/image_good")    # image 1 on screen -> next
    assert 'data-image-id="2"' in out[0]
    out = c.predict([], "", "fast-ann", "fk-2@1", [], api_name="/image_bad")     # pressed while 1 was shown
    assert 'data-image-id="2"' in out[0]                                         # no advance past unseen 2
    rows = ws.query("SELECT item_id, value FROM label_events WHERE annotator = 'fast-ann' ORDER BY id")
    assert [(int(a), b) for a, b in rows] == [(1, "good"), (1, "bad")]


def test_video_overlay_data_is_computed_for_an_unscored_video(app_server):
    """The background job behind the mask/OCR layers of a video that has no metric traces yet."""
    from labeling.service import ReviewService
    from labeling.ui_videos import VideosTab

    _, ws = app_server
    v = ws.query_dicts("SELECT v.sha256, v.path, i.product, i.path AS source_image_path FROM videos v "
                       "JOIN images i ON i.id = v.source_image_id ORDER BY v.id LIMIT 1")[0]
    data = VideosTab(ReviewService(ws)).ensure_overlay_data(v).result(timeout=300)
    assert not data["errors"] and len(data["frames"]) == 16
    assert all("mask" in f for f in data["frames"])
    # the masks ProductScore would track: its product found in the source image, not the first frame's guess
    assert data["mask_rule"].startswith("ProductScore's") and data["frames"][0]["mask"]["counts"][1:]
    texts = " ".join(b["text"] for f in data["frames"] for b in f["boxes"]).upper()
    assert "NOVA" in texts  # the demo's first case is the "NEW NOVA X" phone ad


def test_dedup_runs_from_the_app(client, app_server):
    """The Statistics tab's workspace jobs are the CLI's code paths: the near-duplicate search run through the
    app's endpoint hashes every image into DuckDB."""
    _, ws = app_server
    client.predict(api_name="/dedup_run")
    n_images = ws.query_one("SELECT count(*) FROM images")[0]
    assert ws.query_one("SELECT count(*) FROM image_hashes")[0] == n_images > 0


def test_an_app_that_made_its_demo_scores_it_in_the_background(demo_workspace):
    """app.create(score_at_start=True) (what `app.py` does right after generating the demo workspace) starts
    scoring the unscored videos in a background job, cancellable like the jobs started from the page."""
    from .conftest import load_app_module

    blocks, _kw, ws = load_app_module().create(demo_workspace, score_at_start=True)
    try:
        job = blocks.jobs.jobs["score-unscored"]
        assert job.name == "Scoring unscored videos"
        blocks.jobs.cancel("score-unscored")
        assert job.done.wait(300)
        assert job.error in (None, "cancelled"), job.error
    finally:
        blocks.close()
        ws.close()
