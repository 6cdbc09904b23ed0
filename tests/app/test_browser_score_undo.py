"""Real-browser tests (Playwright driving Debian's Chromium) of app features that were documented but only
reachable by hand: the Videos tab's "Score this video" button, the Benchmark tab, and undo [Z] on the Videos
and Compare tabs. Every check ends in DuckDB, read through the app's own open workspace.

The workspace holds one demo case (an ad and its two models' videos), so scoring and the benchmark take
seconds, not minutes, on 2 cores."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import load_app_module, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CASE = "case12"                                     # text that stays vs text that deforms: every metric has text
NAMES = {"motionx": "MotionX", "tsscore": "TSScore", "productscore": "ProductScore", "aesscore": "AesScore",
         "gmescore": "GmeScore", "crscore": "CRScore", "clipscore": "CLIPScore*"}   # the six, then the extra


@pytest.fixture(scope="module")
def one_case_app(tmp_path_factory, demo_media):
    """(url, ws) of the app launched in-process on a workspace of one demo case: its ad, two models' videos."""
    tmp = tmp_path_factory.mktemp("one_case")
    rows = [json.loads(ln) for ln in (demo_media / "manifest.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["video"].startswith(f"videos/{CASE}_")]
    assert len(rows) == 2
    manifest = tmp / "case.jsonl"
    manifest.write_text("".join(json.dumps({**r, "image": str(demo_media / r["image"]),
                                            "video": str(demo_media / r["video"])}) + "\n" for r in rows))
    root = tmp / "ws"
    p = subprocess.run([sys.executable, "-m", "curation", "ingest", "--workspace", str(root), str(manifest)],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert p.returncode == 0, p.stderr
    with serve_app(load_app_module(), root) as served:
        yield served


def open_tab(browser, url: str, annotator: str, tab: str):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.goto(url)
    box = page.locator("#annotator textarea, #annotator input").first
    box.wait_for(timeout=60_000)
    box.fill(annotator)
    box.press("Tab")
    page.get_by_role("tab", name=tab).click()
    return ctx, page


def wait_text(page, selector: str, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s) || {}).innerText?.includes(t)",
                           arg=[selector, text], timeout=timeout)


def current_video(page) -> int:
    return int(page.locator("#vid-player .vid-wrap").get_attribute("data-video-id"))


def scorecard(page) -> dict[str, str]:
    """Metric name -> the Score cell, as the page shows it."""
    cells = page.locator("#vid-scorecard table.scorecard tr").evaluate_all(
        "trs => trs.slice(1).map(tr => Array.from(tr.cells).map(c => c.innerText.trim()))")
    return {c[0]: c[1] for c in cells}


def test_score_button_and_benchmark_tab(browser, one_case_app):
    url, ws = one_case_app
    ctx, page = open_tab(browser, url, "scorer", "Videos")
    page.wait_for_selector("#vid-player .vid-wrap", timeout=60_000)
    vid = current_video(page)
    assert set(scorecard(page).values()) == {"—"}               # nothing scored yet
    assert "No MotionX trace yet" in page.locator("#vid-curve").inner_text()

    page.locator("#vid-score button, button#vid-score").first.click()
    wait_text(page, "#vid-score-status", "done in", timeout=300_000)
    page.wait_for_selector("#vid-curve svg.motion-svg", timeout=30_000)    # the curve from the new trace
    stored = ws.query("SELECT metric, status, value FROM metric_results WHERE video_id = ?", [vid])
    assert sorted(m for m, _, _ in stored) == sorted(NAMES)      # one result per metric (one triple)
    assert {m for m, s, _ in stored if s == "ok"} >= {"motionx", "tsscore", "productscore"}
    shown = scorecard(page)
    for metric, status, value in stored:
        want = f"{100 * value:.1f}%" if status == "ok" else status
        assert shown[NAMES[metric]].startswith(want), (metric, shown[NAMES[metric]], want)
    other = ws.query_one("SELECT count(*) FROM metric_results WHERE video_id <> ?", [vid])[0]
    assert other == 0                                            # the button scores this video only

    page.get_by_role("tab", name="Benchmark").click()
    page.locator("#bench-run button, button#bench-run").first.click()
    wait_text(page, "#bench-progress", "done in", timeout=300_000)
    wait_text(page, "#bench-result", '"leaderboard"', timeout=30_000)
    shown_json = page.locator("#bench-result").inner_text()      # the summary, as the tab shows it
    assert re.search(r'"cases": 1,', shown_json)
    assert re.search(r'"models": \[\s*"DemoGen-A",\s*"DemoGen-B"\s*\]', shown_json)
    assert page.locator("#bench-figures img").count() >= 1        # the radar chart
    ctx.close()

    # the report the tab wrote: one leaderboard row per model of the workspace, each the stored scores of
    # that model's one video (the benchmark scored the video the button did not)
    reports = sorted((Path(ws.root) / "exports").glob("bench_*/summary.json"))
    assert len(reports) == 1
    summary = json.loads(reports[0].read_text())
    by_model = dict(ws.query("SELECT model, video_id FROM triples"))
    assert sorted(r["model"] for r in summary["leaderboard"]) == sorted(by_model) == ["DemoGen-A", "DemoGen-B"]
    for row in summary["leaderboard"]:
        stored = dict((m, (s, v)) for m, s, v in ws.query(
            "SELECT metric, status, value FROM metric_results WHERE video_id = ?", [by_model[row["model"]]]))
        assert sorted(stored) == sorted(NAMES)
        for metric in NAMES:
            status, value = stored[metric]
            cell = row[metric]
            if status == "ok":
                assert cell["n"] == 1 and cell["pct"] == pytest.approx(100 * value, abs=1e-6), (row["model"], metric)
            else:
                assert cell["pct"] is None and cell["status"] == status, (row["model"], metric, cell)


def label_rows(ws, annotator: str, kind: str) -> list[tuple]:
    return ws.query("SELECT id, item_id, value, undoes FROM label_events WHERE annotator = ? AND item_kind = ? "
                    "ORDER BY id", [annotator, kind])


def test_video_and_compare_undo_from_the_keyboard(browser, one_case_app):
    url, ws = one_case_app
    ctx, page = open_tab(browser, url, "undoer", "Videos")
    page.wait_for_selector("#vid-player .vid-wrap", timeout=60_000)
    vid = current_video(page)
    page.locator("#vid-source").click()           # focus leaves the text box: keys are live
    page.keyboard.press("a")
    wait_text(page, "#vid-status", f"Saved: video {vid} → accept")
    page.wait_for_function("(v) => { const w = document.querySelector('#vid-player .vid-wrap'); "
                           "return w && +w.dataset.videoId !== v; }", arg=vid, timeout=30_000)
    page.keyboard.press("z")                      # Undo [Z]
    wait_text(page, "#vid-status", f"Undone: video {vid} (accept)")
    assert current_video(page) == vid             # the undone video is shown again
    assert "Current:" not in page.locator("#vid-source").inner_text()
    (acc, item, value, undoes), (undo, item2, value2, target) = label_rows(ws, "undoer", "video")
    assert (item, value, undoes) == (vid, "accept", None)
    assert (item2, value2, target) == (vid, "undo", acc) and undo > acc
    assert ws.query("SELECT * FROM current_labels WHERE item_kind = 'video' AND item_id = ? "
                    "AND annotator = 'undoer'", [vid]) == []

    page.get_by_role("tab", name="Compare").click()
    page.wait_for_selector("#cmp-videos video.cmp-v", timeout=60_000)
    page.locator("#cmp-head").click()
    page.keyboard.press("1")                      # prompt following: left
    page.keyboard.press("0")                      # ad quality: tie, which saves the pair
    wait_text(page, "#cmp-status", "Saved (event ")
    (judged, _, pf_value, _), = label_rows(ws, "undoer", "pair")
    wait_text(page, "#cmp-results", "1/0/0")      # one prompt-following win for one model
    page.locator("#cmp-head").click()
    page.keyboard.press("z")
    wait_text(page, "#cmp-status", f"Undone pair judgement {judged}")
    wait_text(page, "#cmp-results", "No judgements yet.")
    rows = label_rows(ws, "undoer", "pair")
    assert len(rows) == 2 and rows[1][2] == "undo" and rows[1][3] == judged
    live = ws.query_one("SELECT count(*) FROM label_events e WHERE item_kind = 'pair' AND value <> 'undo' "
                        "AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.value = 'undo' AND u.undoes = e.id)")
    assert live[0] == 0
    ctx.close()
