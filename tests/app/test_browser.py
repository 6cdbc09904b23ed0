"""Real-browser end-to-end tests: Playwright driving Debian's Chromium (never a downloaded browser)."""
from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_app(browser, url: str, annotator: str):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#image-view .iv-img", timeout=60_000)
    box = page.locator("#annotator textarea, #annotator input").first
    box.fill(annotator)
    box.press("Tab")
    page.locator("#image-view").click()  # focus leaves the text box: keys are live
    return ctx, page


def current_image(page) -> str:
    return page.locator("#image-view .iv").get_attribute("data-image-id")


def wait_image_change(page, old: str, timeout: float = 20.0) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        loc = page.locator("#image-view .iv")
        if loc.count() and loc.get_attribute("data-image-id") not in (None, old):
            return loc.get_attribute("data-image-id")
        time.sleep(0.05)
    raise AssertionError(f"image did not change from {old}")


def test_keyboard_labelling_video_overlays_and_curve(browser, app_server, artifacts):
    url, ws = app_server
    ctx, page = open_app(browser, url, "browser-ann")
    labelled = []
    for key, value in (("g", "good"), ("b", "bad"), ("g", "good")):
        iid = current_image(page)
        page.keyboard.press(key)
        wait_image_change(page, iid)
        labelled.append((int(iid), value))
    # the follow-up the page asks for once the new image is drawn: the message, a fresh progress count,
    # the up-next strip, and the overlays still being computed when the image first showed
    last, shown = labelled[-1][0], current_image(page)
    page.wait_for_function("(t) => (document.querySelector('#img-status') || {}).innerText?.includes(t)",
                           arg=f"Saved: image {last} → good", timeout=30_000)
    from storage.review_store import label_progress
    n = label_progress(ws, "image")["labelled"]
    page.wait_for_function("(t) => (document.querySelector('#img-progress') || {}).innerText?.startsWith(t)",
                           arg=f"{n} of ", timeout=30_000)
    n_events = ws.query_one("SELECT count(*) FROM label_events")[0]       # the header counts follow too
    page.wait_for_function("(t) => (document.querySelector('#app-counts') || {}).innerText?.includes(t)",
                           arg=f"{n_events:,} labels", timeout=8_000)     # well inside its 15 s timer
    ahead = page.locator("#img-upnext [data-jump]").evaluate_all("els => els.map(e => e.dataset.jump)")
    assert ahead and shown not in ahead and str(last) not in ahead
    page.wait_for_selector("#image-view .ov-mask", timeout=120_000)
    assert page.locator("#image-view .ov-status").count() == 0
    # typing in the note box must not label anything
    page.locator("#img-note textarea, #img-note input").first.fill("gbs")
    page.locator("#image-view").click()
    page.screenshot(path=str(artifacts / "app_images.png"), full_page=True)
    rows = ws.query("SELECT item_id, value FROM label_events WHERE annotator = 'browser-ann' ORDER BY id")
    assert [(int(a), b) for a, b in rows] == labelled

    page.get_by_role("tab", name="Videos").click()
    page.wait_for_selector("#vid-player video", timeout=60_000)
    for name in ("Product mask", "OCR boxes"):
        before = page.locator("#vid-player video").get_attribute("src")
        page.locator("#vid-layers").get_by_label(name).click()
        page.wait_for_function(
            "(b) => { const v = document.querySelector('#vid-player video'); return v && v.getAttribute('src') !== b; }",
            arg=before, timeout=120_000)
    # the frame counter is drawn by the page over the video: ticking it off re-encodes nothing
    page.locator("#vid-layers").get_by_label("Frame counter").click()
    page.wait_for_function("() => document.body.classList.contains('pl-no-counter')", timeout=10_000)
    svg = page.locator("#vid-curve svg.motion-svg")
    svg.scroll_into_view_if_needed()
    bb = svg.bounding_box()
    svg.click(position={"x": bb["width"] * 0.5, "y": bb["height"] * 0.5})
    page.wait_for_selector("#vid-frame img", timeout=60_000)
    assert "Frame" in page.locator("#vid-frame-info").inner_text()
    # accept from the keyboard: the next video at once, then the message and up-next list
    page.locator("#vid-source").click()
    vid = page.locator("#vid-player .vid-wrap").get_attribute("data-video-id")
    page.keyboard.press("a")
    page.wait_for_function("(v) => { const w = document.querySelector('#vid-player .vid-wrap'); "
                           "return w && w.dataset.videoId !== v; }", arg=vid, timeout=30_000)
    page.wait_for_function("(t) => (document.querySelector('#vid-status') || {}).innerText?.includes(t)",
                           arg=f"Saved: video {vid} → accept", timeout=30_000)
    assert ws.query("SELECT value FROM label_events WHERE item_kind = 'video' AND item_id = ? "
                    "AND annotator = 'browser-ann'", [int(vid)]) == [("accept",)]
    page.screenshot(path=str(artifacts / "app_videos.png"), full_page=True)
    page.get_by_role("tab", name="Compare").click()
    page.wait_for_selector("#cmp-videos video.cmp-v", timeout=60_000)
    page.locator("#cmp-head").click()
    page.keyboard.press("1")
    page.keyboard.press("0")
    page.wait_for_function("() => (document.querySelector('#cmp-status') || {}).innerText?.includes('Saved')",
                           timeout=30_000)
    page.screenshot(path=str(artifacts / "app_compare.png"), full_page=True)
    n = ws.query_one("SELECT count(*) FROM label_events WHERE item_kind = 'pair' AND annotator = 'browser-ann'")[0]
    assert n == 1
    ctx.close()


def test_blank_annotator_is_told_where_the_designer_looks(browser, app_server):
    from labeling.service import NO_ANNOTATOR

    url, ws = app_server
    ctx, page = open_app(browser, url, "")
    before, iid = ws.query_one("SELECT count(*) FROM label_events")[0], current_image(page)
    page.keyboard.press("g")
    page.wait_for_function("(t) => (document.querySelector('#img-progress .notice') || {}).innerText === t",
                           arg=NO_ANNOTATOR, timeout=30_000)
    box = page.locator("#img-progress .notice").bounding_box()
    assert box["y"] + box["height"] < page.viewport_size["height"]      # above the item, not below the fold
    assert current_image(page) == iid and ws.query_one("SELECT count(*) FROM label_events")[0] == before
    ctx.close()


def test_two_sessions_lose_nothing(browser, app_server):
    url, ws = app_server
    pages = [open_app(browser, url, f"pair-{k}") for k in range(2)]
    for _ in range(4):
        olds = [current_image(p) for _, p in pages]
        for _, p in pages:
            p.keyboard.press("b")
        for (_, p), old in zip(pages, olds):
            wait_image_change(p, old)
    for k in range(2):
        n = ws.query_one("SELECT count(*) FROM label_events WHERE annotator = ?", [f"pair-{k}"])[0]
        assert n == 4
    for ctx, _ in pages:
        ctx.close()


def test_a_long_session_keeps_no_per_press_state(browser, app_server):
    """Key presses must not leave anything behind that the next press pays for. Gradio 6's run history (a JSON
    array of the last 100 calls in localStorage, re-parsed and re-written on every call) made each press slower
    for its first ~100 presses, and it survived reloads; js_on_load watchers or listeners piling up per item
    would do the same."""
    url, _ = app_server
    ctx, page = open_app(browser, url, "long-session")
    page.evaluate("() => localStorage.setItem('gradio:run-history:v2:1', '[]')")   # left by an older app run
    page.reload()
    page.wait_for_selector("#image-view .iv-img", timeout=60_000)
    page.locator("#image-view").click()
    cdp = ctx.new_cdp_session(page)

    def listeners_after(presses: int) -> int:
        for k in range(presses):   # back and forth: public events like labels, without using up the queue
            old = current_image(page)
            page.keyboard.press("ArrowLeft" if k % 2 else "ArrowRight")
            wait_image_change(page, old)
        page.wait_for_timeout(500)   # the debounced follow-up
        cdp.send("HeapProfiler.collectGarbage")
        return cdp.send("Memory.getDOMCounters")["jsEventListeners"]

    first = listeners_after(4)
    assert listeners_after(16) == first
    assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('gradio:run-history'))") == []
    ctx.close()


@pytest.mark.parametrize("width", [1600, 1440])
def test_item_keys_and_reasons_fit_above_the_fold(browser, app_server, width):
    """At 1600x900 and 1440x900 the item, its label buttons (with their keys) and the reasons are in view
    without scrolling, on Images and on Videos."""
    url, _ws = app_server
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#image-view .iv-stage", timeout=60_000)

    def bottom(sel: str) -> float:
        box = page.locator(sel).first.bounding_box()
        assert box is not None, sel
        return box["y"] + box["height"]

    for sel, text in (("#img-good", "Good"), ("#img-bad", "Bad")):
        assert text in page.locator(sel).inner_text() and "[" in page.locator(sel).inner_text()
        assert bottom(sel) <= 900, sel
    assert bottom("#img-reasons") <= 900 and bottom("#image-view .iv-stage") <= 900
    page.get_by_role("tab", name="Videos").click()
    page.wait_for_selector("#vid-player video", timeout=60_000)
    for sel, text in (("#vid-accept", "Accept"), ("#vid-reject", "Reject")):
        assert text in page.locator(sel).inner_text()
        assert bottom(sel) <= 900, sel
    assert bottom("#vid-reasons") <= 900 and bottom("#vid-player video") <= 900
    ctx.close()


def test_statistics_counts_are_read_when_the_tab_opens(browser, app_server):
    """A label made on Images shows in the Statistics tab's counts when that tab is opened (not the counts of
    when the page was built)."""
    url, ws = app_server
    ctx, page = open_app(browser, url, "stats-ann")
    old = current_image(page)
    page.keyboard.press("g")
    wait_image_change(page, old)
    page.get_by_role("tab", name="Statistics").click()
    n = ws.query_one("SELECT count(*) FROM resolved_labels WHERE item_kind = 'image'")[0]
    page.wait_for_function("(t) => (document.querySelector('#stats-labels') || {}).innerText?.includes(t)",
                           arg=f"{n} of 24", timeout=30_000)
    ctx.close()
