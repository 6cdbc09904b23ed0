"""The Videos tab's calibration panel and its endpoints: Calibrate as a job, the preview of what Apply writes, Apply
as one batch of rule labels on exactly the previewed videos (a designer's video untouched), Undo apply, the
"Metric vs designer" order, and the panel in Chromium.

The demo's 12 videos get MotionX values by hand; alice accepts the 4 above 0.5 and rejects the 4 below of videos
1-8, videos 9-12 are unlabelled (9: 0.95, 10: 0.05, 11: 0.85, 12: 0.15)."""
from __future__ import annotations

import shutil

import pytest

from curation.current import current_keys
from labeling.jobs import JobRunner
from labeling.service import ReviewService
from labeling.ui_calibration import CalibrationPanel
from curation.calibrate import calibrate
from storage import calibrations, labels, metric_results, videos

from .conftest import load_app_module, serve_app

gradio_client = pytest.importorskip("gradio_client")

MOTION = {1: 0.9, 2: 0.1, 3: 0.8, 4: 0.2, 5: 0.7, 6: 0.3, 7: 0.65, 8: 0.25, 9: 0.95, 10: 0.05, 11: 0.85, 12: 0.15}


def _prepare(ws) -> None:
    k = current_keys(ws)["motionx"]
    for vid, mx in MOTION.items():
        metric_results.put_result(ws, metric="motionx", version=k["version"], params_hash=k["params_hash"],
                                  video_id=vid, value=mx, status="ok")
        if vid <= 8:
            labels.append_event(ws, item_kind="video", item_id=vid, value="accept" if mx > 0.5 else "reject",
                                annotator="alice")


@pytest.fixture(scope="module")
def served(tmp_path_factory, _demo_workspace_template):
    root = tmp_path_factory.mktemp("calib_ws") / "ws"
    shutil.copytree(_demo_workspace_template, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVFX_DEVICE", "cpu")
        with serve_app(load_app_module(), root, _prepare) as s:
            yield s


def _rule_events(ws) -> list[dict]:
    return [e for e in labels.events(ws, item_kind="video") if e["annotator"].startswith("rule:")]


def _live_rule_labels(ws) -> list[dict]:
    return [r for r in labels.current_labels(ws, "video") if r["annotator"].startswith("rule:")]


def test_calibrate_preview_apply_and_undo_through_the_endpoints(served):
    url, ws = served
    c = gradio_client.Client(url, verbose=False)
    before = c.predict(direction="both", api_name="/calibration")
    assert before["calibration"] is None
    assert before["requirement"]["have"] == {"accept": 4, "reject": 4, "no_metrics": 0}
    status, summary, _ = c.predict(direction="both", api_name="/calibration_run")
    assert "done in" in status and "learnt from 8 labelled videos (4 accepted, 4 rejected), 4-fold CV" in summary
    # a designer labels video 12 (MotionX 0.15) accept after the calibration: the rule must leave it alone
    labels.append_event(ws, item_kind="video", item_id=12, value="accept", annotator="bob")
    view = c.predict(direction="both", api_name="/calibration")
    prev = view["preview"]
    assert view["calibration"]["n_labels"] == 8 and set(view["operating_points"]) == {"motionx", "model"}
    listed = {d: [e["video_id"] for e in prev["videos"][d]] for d in ("reject", "accept")}
    # the unlabelled videos, each the way alice's cut goes; the surest first (P(accept) of 0.95 above 0.85's)
    assert listed == {"reject": [10], "accept": [9, 11]} and prev["candidates"] == 3
    assert prev["names"]["10"]["media_path"].endswith("case20_b_colour_change.mp4")

    rep = c.predict(direction="both", api_name="/calibration_apply")
    cal_id = view["calibration"]["id"]
    events = _rule_events(ws)
    assert rep["written"] == len(events) == 3
    assert {(e["item_id"], e["value"]) for e in events} == {(10, "reject"), (9, "accept"), (11, "accept")}
    assert {e["annotator"] for e in events} == {f"rule:{cal_id}"} and len({e["session"] for e in events}) == 1
    assert labels.resolved_label(ws, "video", 12)["annotators"] == ["bob"]          # the designer's, untouched
    assert all(labels.resolved_label(ws, "video", v)["annotators"] == ["alice"] for v in range(1, 9))
    assert labels.resolved_label(ws, "video", 9)["by_rule"] is True

    # metric vs designer: bob's accept at a low P(accept) leads the reviewed queue; the rule's own labels trail
    q = c.predict(label_state="labelled", order="disagreement", limit=20, api_name="/video_queue")["items"]
    assert q[0]["id"] == 12 and q[0]["p_accept"] < 0.5 and [r["id"] for r in q[-3:]] == [9, 10, 11]
    # the Videos tab's order choice: chosen on the unreviewed queue, it reviews the reviewed ones, video 12 first
    out = c.predict("unlabelled", "", "", 0, 100, "disagreement", ["Frame counter"], api_name="/videos_load")
    assert 'data-video-id="12"' in out[0]

    undone = c.predict(api_name="/calibration_undo")
    assert undone["undone"] == 3 and undone["annotator"] == f"rule:{cal_id}"
    assert not _live_rule_labels(ws)
    assert set(labels.resolved_labels(ws, "video")) == set(range(1, 9)) | {12}
    with pytest.raises(Exception, match="no rule labels to undo"):
        c.predict(api_name="/calibration_undo")


def test_too_few_labels_say_how_many_are_needed(workspace):
    k = current_keys(workspace)["motionx"]
    for n, (mx, value) in enumerate(((0.9, "accept"), (0.8, "accept"), (0.1, "reject"))):
        vid, _ = videos.add_video(workspace, {"sha256": f"{n:064x}", "path": f"/nowhere/{n}.mp4", "bytes": 1})
        metric_results.put_result(workspace, metric="motionx", version=k["version"], params_hash=k["params_hash"],
                                  video_id=vid, value=mx, status="ok")
        labels.append_event(workspace, item_kind="video", item_id=vid, value=value, annotator="alice")
    panel = CalibrationPanel(ReviewService(workspace), JobRunner())
    summary, _ = panel.view()
    assert "has 2 accepted and 1 rejected videos with metric values" in summary
    assert "label 1 more accepted and 2 more rejected first" in summary
    status, *_ = list(panel.h_calibrate("both"))[-1]
    assert "at least 3 of each are needed (1 more accepted, 2 more rejected)" in status
    assert "failed" not in status and "Traceback" not in status


def test_the_panel_renders_its_numbers(served, browser, artifacts):
    url, ws = served
    if calibrations.get(ws) is None:                 # run alone: the panel needs a calibration to show
        calibrate(ws)
    c = gradio_client.Client(url, verbose=False)
    want = c.predict(direction="both", api_name="/calibration")["preview"]
    n = want["reject"] + want["accept"]
    assert n >= 3                                    # 9, 10, 11 (and 12 when bob has not labelled it)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Videos").click()
        page.locator("#calib-panel").get_by_text("Calibration: metric thresholds").click()
        page.wait_for_selector("#calib-summary table", timeout=30000)
        page.wait_for_selector("#calib-preview table", timeout=30000)
        summary = page.inner_text("#calib-summary")
        preview = page.inner_text("#calib-preview")
        page.locator("#calib-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "calibration_panel.png"), full_page=True)
        page.locator("#calib-panel").screenshot(path=str(artifacts / "calibration_panel_only.png"))
        # the buttons: Apply writes the previewed labels as one batch, Undo apply takes them back
        page.click("#calib-apply")
        page.wait_for_function("document.querySelector('#calib-status').innerText.includes('Labelled')",
                               timeout=30000)
        applied = page.inner_text("#calib-status")
        written = len(_live_rule_labels(ws))
        page.click("#calib-undo")
        page.wait_for_function("document.querySelector('#calib-status').innerText.includes('Took back')",
                               timeout=30000)
        undone = page.inner_text("#calib-status")
    finally:
        page.close()
    assert "learnt from 8 labelled videos (4 accepted, 4 rejected)" in summary
    assert "MotionXScore" in summary and "model P(accept)" in summary
    assert f"Apply would label {n} of {want['candidates']} videos" in preview
    assert f"{want['reject']} auto-rejected" in preview and "case20_b_colour_change.mp4" in preview
    assert f"Labelled {n} videos as rule:" in applied and f"Took back {n} labels" in undone
    assert written == n and not _live_rule_labels(ws)
