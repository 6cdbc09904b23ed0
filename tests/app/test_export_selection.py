"""The Export tab's selection, through its handler (labeling.ui_misc.MiscTabs.h_export with labeling/ui_export.py's
controls): images by the current label good (the default), by a minimum classifier score or by the filters
passed, as the CLI selects them; triples with a rule's labels used or ignored. Known by construction on the demo
workspace (24 images; video n is triple n, videos 1-2 made from image 1)."""
from __future__ import annotations

import numpy as np

from labeling.service import ReviewService
from labeling.ui_misc import MiscTabs
from storage import Workspace, classifier_runs, curation_store, labels


def _export(misc: MiscTabs, ws: Workspace, name: str, *args) -> dict:
    steps = list(misc.h_export(str(ws.root / "exports" / name), *args))
    job = misc.jobs.jobs["export"]
    assert job.done.is_set() and job.error is None, (job.error, steps[-1][0])
    assert job.result["verify"]["ok"]
    return job.result


def test_the_selection_sets_the_exported_rows(demo_workspace):
    with Workspace.open(demo_workspace) as ws:
        for iid, value in ((1, "good"), (2, "good"), (3, "good"), (4, "bad")):
            labels.append_event(ws, item_kind="image", item_id=iid, value=value, annotator="alice")
        run = classifier_runs.reserve_run_id(ws)
        ids = np.arange(1, 25)
        classifier_runs.record_run(ws, run, {"version": "test", "n_labels": 4, "label_hash": "h", "features": "t",
                                             "threshold": 0.5}, ids, np.where(np.isin(ids, [4, 5, 6, 7]), 0.9, 0.2))
        curation_store.put_filter_results(ws, [{"image_id": i, "filter": "quality", "params_hash": "h", "value": 0.5,
                                                "passed": i != 2, "reason": "" if i != 2 else "blurry"}
                                               for i in (1, 2, 4, 5, 8, 9)])
        labels.append_event(ws, item_kind="video", item_id=1, value="accept", annotator="alice")
        labels.append_values(ws, item_kind="video", values={2: "accept", 3: "reject"}, annotator="rule:1")
        labels.append_event(ws, item_kind="video", item_id=3, value="reject", annotator="alice")
        misc = MiscTabs(ReviewService(ws))

        # images: good 1-3 by label; image 4 (bad) never, whatever its score (0.9) or filters (passed)
        got = _export(misc, ws, "label", "images")                     # an API caller's two arguments
        assert got["counts"]["selected"] == 3 and got["options"]["passed_filters"] is False
        # score >= 0.5: the good ones count as 1, 5-7 score 0.9, the rest 0.2
        got = _export(misc, ws, "score", "images", "score", 0.5, "use")
        assert got["counts"]["selected"] == 6 and got["options"]["classifier_min"] == 0.5
        assert got["options"]["label_state"] == "not_rejected"
        assert _export(misc, ws, "score_high", "images", "score", 0.95, "use")["counts"]["selected"] == 3
        # filters passed: 1, 5, 8, 9 (2 failed, 4 is bad, the others have no filter result)
        got = _export(misc, ws, "filters", "images", "filters", 0.5, "use")
        assert got["counts"]["selected"] == 4
        assert got["counts"]["dropped"] == {"labelled bad": 1, "failed a filter": 1, "no filter ran": 18}
        # triples: alice accepted 1; the rule accepted 2 (no person labelled it) and its reject of 3 is outranked
        got = _export(misc, ws, "triples_rule", "triples", "label", 0.5, "use")
        assert got["counts"]["selected"] == 2 and got["options"]["rule_labels"] == "use"
        got = _export(misc, ws, "triples_people", "triples", "label", 0.5, "ignore")
        assert got["counts"]["selected"] == 1 and got["options"]["rule_labels"] == "ignore"


def test_the_selection_controls_follow_the_kind(app_server, browser, artifacts):
    """Triples show the rule-label choice; Images the image selection, and the score slider only for "score"."""
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    try:
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Export").click()
        page.wait_for_selector("#export-rule-labels", state="visible", timeout=30000)
        assert not page.is_visible("#export-image-select")
        page.locator("#export-kind").get_by_text("Images").click()
        page.wait_for_selector("#export-image-select", state="visible", timeout=30000)
        assert not page.is_visible("#export-rule-labels") and not page.is_visible("#export-min-score")
        page.locator("#export-image-select").get_by_text("Minimum classifier score").click()
        page.wait_for_selector("#export-min-score", state="visible", timeout=30000)
        page.screenshot(path=str(artifacts / "export_image_selection.png"))
    finally:
        page.close()
