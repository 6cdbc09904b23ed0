"""Best of N: a case's candidates decided in one action (one accept, the rest rejected: one batch, one undo), the
"no accepted video yet" filter; in a real browser the tiles (muted, looping), keys 2 + Enter, and the Videos tab's
player (Space, '.', speed, arrows while it has focus)."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import BESTOF_CASE_IMAGE as CASE_IMAGE

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def bestof_server(labelling_server):
    """(url, workspace) of the app on a demo copy whose first case (CASE_IMAGE) has three candidates (a third
    model's triple); shared with test_grid.py (conftest.labelling_server), whose labels are of images."""
    return labelling_server


def case_of(ws, image_id: int) -> tuple[str, list[int]]:
    """A case's id and its triple ids, read from the triples table."""
    rows = ws.query("SELECT id, prompt_id FROM triples WHERE image_id = ? ORDER BY id", [image_id])
    return f"{image_id}:{rows[0][1]}", [int(r[0]) for r in rows]


def live(ws, annotator: str) -> dict[int, str]:
    return {int(i): v for i, v in ws.query("SELECT item_id, value FROM live_label_events WHERE item_kind = 'triple' "
                                           "AND annotator = ?", [annotator])}


def test_decide_is_one_accept_the_rest_rejected_and_one_undo(bestof_server):
    url, ws = bestof_server
    c = gradio_client.Client(url, verbose=False)
    cid, ids = case_of(ws, CASE_IMAGE)
    assert len(ids) == 3
    out = c.predict(case_id=cid, triple_ids=[], accepted=[ids[1]], annotator="bo-ann", client_key="bo-1",
                    api_name="/bestof_decide")
    assert out["accepted"] == [ids[1]] and sorted(out["rejected"]) == [ids[0], ids[2]] and not out["duplicate"]
    rows = ws.query("SELECT item_kind, item_id, value, annotator, session FROM label_events "
                    "WHERE annotator = 'bo-ann' ORDER BY id")
    assert sorted((r[0], int(r[1]), r[2], r[3]) for r in rows) == [
        ("triple", ids[0], "reject", "bo-ann"), ("triple", ids[1], "accept", "bo-ann"),
        ("triple", ids[2], "reject", "bo-ann")]
    assert len({r[4] for r in rows}) == 1                                      # one batch
    again = c.predict(case_id=cid, triple_ids=[], accepted=[ids[1]], annotator="bo-ann", client_key="bo-1",
                      api_name="/bestof_decide")
    assert again["duplicate"] and ws.query_one("SELECT count(*) FROM label_events WHERE annotator = 'bo-ann'")[0] == 3
    res = c.predict(annotator="bo-ann", item_kind="triple", api_name="/undo")
    assert res["n"] == 3 and sorted(res["item_ids"]) == ids
    assert live(ws, "bo-ann") == {}
    with pytest.raises(Exception, match="not one of the case's candidates"):
        c.predict(case_id=cid, triple_ids=[], accepted=[9999], annotator="bo-ann", api_name="/bestof_decide")
    with pytest.raises(Exception, match="Annotator"):
        c.predict(case_id=cid, triple_ids=[], accepted=[ids[0]], annotator=" ", api_name="/bestof_decide")
    assert ws.query_one("SELECT count(*) FROM label_events WHERE annotator = 'bo-ann'")[0] == 6   # 3 + 3 undos


def test_open_filter_drops_a_case_once_it_has_an_accepted_video(bestof_server):
    url, ws = bestof_server
    c = gradio_client.Client(url, verbose=False)
    (img_a,), (img_b,) = ws.query("SELECT DISTINCT image_id FROM triples WHERE image_id <> ? ORDER BY 1 LIMIT 2",
                                  [CASE_IMAGE])
    cid_a, ids_a = case_of(ws, img_a)
    cid_b, ids_b = case_of(ws, img_b)

    def open_cases():
        return [r["case_id"] for r in c.predict(open_only=True, api_name="/bestof_cases")["cases"]]

    assert {cid_a, cid_b} <= set(open_cases())
    c.predict(triple_ids=ids_a, accepted=[ids_a[0]], annotator="bo-filter", api_name="/bestof_decide")
    # an accepted video counts too: the label rule reads a video label for each of its triples
    (video_b,) = ws.query_one("SELECT video_id FROM triples WHERE id = ?", [ids_b[-1]])
    c.predict(item_kind="video", item_id=video_b, value="accept", annotator="bo-filter", api_name="/label")
    now = open_cases()
    assert cid_a not in now and cid_b not in now and cid_of(ws, CASE_IMAGE) in now
    every = c.predict(api_name="/bestof_cases")["cases"]
    assert [r["case_id"] for r in every][-2:] == sorted([cid_a, cid_b], key=lambda x: int(x.split(":")[0]))
    assert {r["case_id"]: r["n_accepted"] for r in every}[cid_a] == 1


def cid_of(ws, image_id: int) -> str:
    return case_of(ws, image_id)[0]


@pytest.mark.browser
def test_best_of_n_and_player_in_the_browser(browser, bestof_server, artifacts):
    url, ws = bestof_server
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = ctx.new_page()
    page.goto(url)
    box = page.locator("#annotator textarea, #annotator input").first
    box.fill("bo-browser")
    box.press("Tab")

    page.get_by_role("tab", name="Best of N").click()
    page.wait_for_selector("#bo-view .bo-tile video", timeout=30_000)
    case = page.locator("#bo-view .bo-case").get_attribute("data-case")
    image_id = int(case.split(":")[0])
    tiles = [int(t) for t in page.locator("#bo-view .bo-tile").evaluate_all("ts => ts.map(t => t.dataset.tile)")]
    assert sorted(tiles) == case_of(ws, image_id)[1]
    props = page.locator("#bo-view .bo-tile video").evaluate_all("vs => vs.map(v => [v.muted, v.loop])")
    assert props and all(m and lp for m, lp in props)
    page.wait_for_function("() => Array.from(document.querySelectorAll('#bo-view video'))"
                           ".every(v => !v.paused && v.readyState >= 2)", timeout=15_000)
    page.locator("#bo-progress").click()                                        # focus away from any text box
    page.keyboard.press(" ")                                                   # one key pauses every candidate
    assert page.locator("#bo-view .bo-tile video").evaluate_all("vs => vs.map(v => v.paused)") == [True] * len(tiles)
    page.keyboard.press(" ")
    page.keyboard.press("2")
    assert "selected" in page.locator("#bo-view .bo-tile").nth(1).get_attribute("class")
    page.locator("#bo-view .bo-tiles").screenshot(path=str(artifacts / "bestof_selected.png"))
    page.keyboard.press("Enter")
    want = {t: ("accept" if t == tiles[1] else "reject") for t in tiles}
    t0 = time.monotonic()
    while live(ws, "bo-browser") != want and time.monotonic() - t0 < 15:
        time.sleep(0.1)
    assert live(ws, "bo-browser") == want
    page.wait_for_function("(c) => (document.querySelector('#bo-view .bo-case') || {dataset: {}}).dataset.case !== c",
                           arg=case, timeout=15_000)                           # on to the next case
    page.keyboard.press("z")
    t0 = time.monotonic()
    while live(ws, "bo-browser") and time.monotonic() - t0 < 15:
        time.sleep(0.1)
    assert live(ws, "bo-browser") == {}                                          # one Z undid all of them
    page.wait_for_function("(c) => (document.querySelector('#bo-view .bo-case') || {dataset: {}}).dataset.case === c",
                           arg=case, timeout=15_000)                           # back on the undone case

    page.get_by_role("tab", name="Videos").click()
    page.wait_for_function("() => { const v = document.querySelector('#vid-player video'); "
                           "return v && v.readyState >= 2 && !v.paused; }", timeout=30_000)   # opens playing
    video = page.locator("#vid-player video")
    assert video.evaluate("v => [v.muted, v.loop]") == [True, True]
    vid = int(page.locator("#vid-player .vid-wrap").get_attribute("data-video-id"))
    fps = float(ws.query_one("SELECT fps FROM videos WHERE id = ?", [vid])[0])
    page.locator("#vid-source").click()
    page.keyboard.press(" ")
    assert video.evaluate("v => v.paused") is True
    page.keyboard.press(" ")
    assert video.evaluate("v => v.paused") is False
    page.keyboard.press(" ")
    assert video.evaluate("v => v.paused") is True
    video.evaluate("(v, t) => new Promise(r => { v.addEventListener('seeked', r, {once: true}); v.currentTime = t; })",
                   10.5 / fps)
    page.keyboard.press(".")
    page.wait_for_function("() => !document.querySelector('#vid-player video').seeking", timeout=5_000)
    assert abs(video.evaluate("v => v.currentTime") - 11.5 / fps) < 0.01           # one frame on, still paused
    assert video.evaluate("v => v.paused") is True
    page.locator("#vid-player .pl-rate[data-rate='0.5']").click()
    assert video.evaluate("v => v.playbackRate") == 0.5
    assert "frame 12" in page.locator("#vid-player .pl-counter").inner_text()
    page.locator("#vid-player").screenshot(path=str(artifacts / "bestof_player.png"))
    page.locator("#vid-player video").click()                                  # the player has focus
    paused = video.evaluate("v => v.paused")
    page.keyboard.press(" ")                                                   # once, not also by the native controls
    assert video.evaluate("v => v.paused") is (not paused)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    time.sleep(0.5)
    assert int(page.locator("#vid-player .vid-wrap").get_attribute("data-video-id")) == vid
    # the frame counter is drawn by the page: unticking it hides it, keeps the video, and is remembered
    src = video.get_attribute("src")
    page.locator("#vid-layers").get_by_label("Frame counter").click()
    page.wait_for_function("() => document.body.classList.contains('pl-no-counter')", timeout=5_000)
    assert json.loads(page.evaluate("() => localStorage.getItem('advfx-video-layers')")) == []
    time.sleep(0.3)
    assert video.get_attribute("src") == src
    page.locator("#vid-source").click()
    page.keyboard.press("n")                                                   # N: the next video
    page.wait_for_function("(v) => { const w = document.querySelector('#vid-player .vid-wrap'); "
                           "return w && w.dataset.videoId !== v; }", arg=str(vid), timeout=15_000)
    # what the page restores the layers from when it loads next (labeling/ui_videos.py, RESTORE_LAYERS_JS)
    assert page.evaluate("() => window.advfxPlayer.storedLayers(['Frame counter'])") == []
    ctx.close()
