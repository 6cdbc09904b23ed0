"""A designer's day (issue 20), in Chromium at 1600x1000 (and 1440x900 where the layout matters), on one app
started for this file: a demo workspace with two transparent (RGBA) product pictures (one with a triple, so it
is a Best-of-N case), MotionX scored for video 1 (its motion curve) and every other metric result stored with
known values per model, so the Benchmark tab's leaderboard is known before it is drawn."""
from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from .conftest import load_app_module, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# per model, per metric: the value (0-1) of every one of its videos; video 1's MotionX is really scored (its
# curve), so MotionX's column is only known to rank DemoGen-A first
VALUES = {"DemoGen-A": {"motionx": .9, "tsscore": .9, "productscore": .7, "aesscore": .6, "gmescore": .3,
                        "crscore": .8, "clipscore": .25},
          "DemoGen-B": {"motionx": .1, "tsscore": .9, "productscore": .75, "aesscore": .6, "gmescore": .35,
                        "crscore": .1, "clipscore": .2}}
# column -> (metric, the marks of DemoGen-A and DemoGen-B by the paper's rule: ties share the best mark and leave
# no second)
COLUMNS = {"MotionXScore": ("motionx", ("best", "second")), "TSScore": ("tsscore", ("best", "best")),
           "ProductScore": ("productscore", ("second", "best")), "AesScore": ("aesscore", ("best", "best")),
           "GmeScore": ("gmescore", ("second", "best")), "CRScore": ("crscore", ("best", "second")),
           "CLIPScore*": ("clipscore", ("best", "second"))}


def rgba_picture(path, side: int) -> None:
    """A red disc on a fully transparent square: every corner pixel is transparent."""
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=(230, 60, 50, 255))
    im.save(path)


@pytest.fixture(scope="module")
def day_server(tmp_path_factory, _demo_workspace_template):
    from curation import executors
    from curation.current import current_keys
    from curation.ingest import ingest
    from storage import Workspace, metric_results

    media = tmp_path_factory.mktemp("rgba_media")
    rgba_picture(media / "rgba_small.png", 400)       # shown as it is
    rgba_picture(media / "rgba_large.png", 1800)      # shown through a thumbnail and a display copy

    root = tmp_path_factory.mktemp("day_ws") / "ws"
    shutil.copytree(_demo_workspace_template, root)
    # ingested before the app starts: it serves pictures from the folders its workspace held then
    with Workspace.open(root) as ws:
        (video,) = ws.query_one("SELECT v.path FROM videos v JOIN triples t ON t.video_id = v.id "
                                "WHERE t.model = 'DemoGen-A' AND v.id <> 1 ORDER BY v.id LIMIT 1")
        rows = [{"image": str(media / "rgba_small.png"), "category": "Electronics & Mobility / Smartphones",
                 "product": "Red dot"},
                {"image": str(media / "rgba_large.png"), "video": video, "model": "DemoGen-A",
                 "prompt": "The red dot bounces", "category": "Electronics & Mobility / Smartphones",
                 "product": "Red dot"}]
        (media / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        assert not ingest(ws, [media / "manifest.jsonl"], source="test").failed

    def prepare(ws):
        executors.run_scoring(ws, ["motionx"], video_ids=[1])
        cur = current_keys(ws)
        (motion_backend,) = ws.query_one("SELECT backend FROM metric_results WHERE metric = 'motionx'")
        models = dict(ws.query("SELECT DISTINCT video_id, model FROM triples"))
        metric_results.put_results(ws, [
            {"metric": m, "version": cur[m]["version"], "params_hash": cur[m]["params_hash"], "video_id": v,
             "value": VALUES[model][m], "status": "ok",
             "backend": motion_backend if m == "motionx" else f"test-{m}"}
            for v, model in models.items() for m in cur if (v, m) != (1, "motionx")])

    with serve_app(load_app_module(), root, prepare) as served:
        yield served


def open_page(browser, url: str, tab: str | None = None, width: int = 1600, height: int = 1000,
              annotator: str = "day-ann"):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.goto(url, wait_until="load")
    box = page.locator("#annotator textarea, #annotator input").first
    box.wait_for(timeout=60_000)
    box.fill(annotator)
    box.press("Tab")
    if tab:
        page.get_by_role("tab", name=tab).click()
    return ctx, page


def wait_text(page, selector: str, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s) || {}).innerText?.includes(t)",
                           arg=[selector, text], timeout=timeout)


def pixel(locator, x: int, y: int) -> tuple[int, int, int]:
    """The colour the page shows at (x, y) of an element (its screenshot, 1 CSS px = 1 px)."""
    return Image.open(io.BytesIO(locator.screenshot())).convert("RGB").getpixel((x, y))


def light(rgb) -> bool:
    return min(rgb) >= 200                            # the checkerboard's #eee / #fafafa, never black


def loaded(locator) -> bool:
    """The <img> (or the one inside the element) was fetched and decoded: a broken one shows no picture."""
    return locator.evaluate("e => { const i = e.tagName === 'IMG' ? e : e.querySelector('img'); "
                            "return !!i && i.complete && i.naturalWidth > 0; }")


def checkered(locator) -> bool:
    """The element's own background is the checkerboard (what its transparent pixels show)."""
    return "conic-gradient" in locator.evaluate("e => getComputedStyle(e).backgroundImage")


def test_statistics_figures_are_shown_whole(browser, day_server, artifacts):
    url, _ = day_server
    ctx, page = open_page(browser, url, "Statistics")
    page.locator("#stats-run button, button#stats-run").first.click()
    wait_text(page, "#stats-progress", "done in", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('#stats-figures img').length >= 4", timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('#stats-figures img')].every(i => i.complete "
                           "&& i.naturalWidth > 0)", timeout=30_000)
    figs = page.locator("#stats-figures img").evaluate_all(
        "is => is.map(i => [getComputedStyle(i).objectFit, i.naturalWidth, i.naturalHeight])")
    # contain: the whole figure in its thumbnail (cover cut off the radar's and the panels' edges)
    assert {f[0] for f in figs} == {"contain"}, figs
    page.locator("#stats-figures").screenshot(path=str(artifacts / "day_stats_figures.png"))
    ctx.close()


def test_benchmark_leaderboard_is_a_table_with_the_papers_marks(browser, day_server, artifacts):
    url, ws = day_server
    ctx, page = open_page(browser, url, "Benchmark")
    page.locator("#bench-run button, button#bench-run").first.click()
    wait_text(page, "#bench-progress", "done in", timeout=180_000)
    page.wait_for_selector("#bench-report table.lb", timeout=30_000)
    table = page.locator("#bench-report table.lb")
    heads = table.locator("thead th").evaluate_all("ths => ths.map(t => [t.innerText.trim(), t.title])")
    assert [h[0].split("\n")[0] for h in heads] == ["Type", "Model"] + list(COLUMNS)
    for (name, (metric, _)), (text, title) in zip(COLUMNS.items(), heads[2:]):
        # each column names the backend and version that produced it: a sub-header and the tooltip
        backend = "opencv" if metric == "motionx" else f"test-{metric}"
        assert backend in text.splitlines()[-1] and title.startswith(f"{name}: {backend}"), (name, text, title)
    rows = table.locator("tbody tr").evaluate_all(
        "trs => trs.map(tr => [...tr.querySelectorAll('td:not(.type)')].map(td => "
        "[td.innerText.trim(), td.className, getComputedStyle(td).fontWeight, "
        "td.querySelector('u') ? getComputedStyle(td.querySelector('u')).textDecorationLine : '']))")
    assert [r[0][0] for r in rows] == ["DemoGen-A", "DemoGen-B"]
    for k, (model, *cells) in enumerate(rows):
        for (name, (metric, marks)), (text, cls, weight, deco) in zip(COLUMNS.items(), cells):
            mark = marks[k]
            assert cls == mark, (model[0], name, cls)
            assert (int(weight) >= 700) == (mark == "best") and (deco == "underline") == (mark == "second"), \
                (model[0], name, weight, deco)
            if metric != "motionx":                        # the stored values, in % at two decimals
                assert text == f"{100 * VALUES[model[0]][metric]:.2f}", (model[0], name, text)
    # report.md stays as written (Markdown marks), in the folder the tab zips
    (report_md,) = list((Path(ws.root) / "exports").glob("bench_*/report.md"))
    assert re.search(r"\| DemoGen-A \| \*\*\d+\.\d\d\*\* \| \*\*90\.00\*\* \| <u>70\.00</u> \|", report_md.read_text())
    # in the page it is that table, once: the report's first table, not also its Markdown rendering
    assert page.locator("#bench-report table.lb").count() == 1
    assert "lb" in page.locator("#bench-report table").first.get_attribute("class")
    page.locator("#bench-report .lb-page").screenshot(path=str(artifacts / "day_leaderboard.png"))
    ctx.close()


def test_up_next_jump_keeps_the_items_clicked_past(browser, day_server):
    url, ws = day_server
    ctx, page = open_page(browser, url)

    def ahead(sel: str) -> list[int]:
        return page.locator(sel).evaluate_all("els => els.map(e => +e.dataset.jump)")

    page.wait_for_selector("#img-upnext [data-jump]", timeout=60_000)
    before = ahead("#img-upnext [data-jump]")
    page.locator(f"#img-upnext [data-jump='{before[2]}']").click()
    page.wait_for_function("(t) => document.querySelector('#image-view .iv')?.dataset.imageId === t",
                           arg=str(before[2]), timeout=30_000)
    page.wait_for_function("(t) => ![...document.querySelectorAll('#img-upnext [data-jump]')]"
                           ".some(e => e.dataset.jump === t)", arg=str(before[2]), timeout=30_000)
    assert ahead("#img-upnext [data-jump]")[:3] == [before[0], before[1], before[3]]   # still next, in order
    page.locator("#image-view").click()
    page.keyboard.press("g")                          # the jumped-to image labelled: the first one passed comes
    page.wait_for_function("(t) => document.querySelector('#image-view .iv')?.dataset.imageId === t",
                           arg=str(before[0]), timeout=30_000)
    assert ws.query("SELECT item_id FROM label_events WHERE annotator = 'day-ann'") == [(before[2],)]

    page.get_by_role("tab", name="Videos").click()
    page.wait_for_selector("#vid-upnext [data-jump]", timeout=60_000)
    before = ahead("#vid-upnext [data-jump]")
    page.locator(f"#vid-upnext [data-jump='{before[2]}']").click()
    page.wait_for_function("(t) => document.querySelector('#vid-player .vid-wrap')?.dataset.videoId === t",
                           arg=str(before[2]), timeout=30_000)
    page.wait_for_function("(t) => (document.querySelector('#vid-upnext .qrow.current .qid') || {}).innerText "
                           "=== '#' + t", arg=str(before[2]), timeout=30_000)
    assert ahead("#vid-upnext [data-jump]")[:3] == [before[0], before[1], before[3]]
    page.locator("#vid-source").click()
    page.keyboard.press("n")                          # on: the first video clicked past, not the one after
    page.wait_for_function("(t) => document.querySelector('#vid-player .vid-wrap')?.dataset.videoId === t",
                           arg=str(before[0]), timeout=30_000)
    ctx.close()


@pytest.mark.parametrize("width,height", [(1600, 1000), (1440, 900)])
def test_frame_counter_is_under_the_video_not_over_its_ocr_labels(browser, day_server, artifacts, width, height):
    url, _ = day_server
    ctx, page = open_page(browser, url, "Videos", width, height)
    page.wait_for_selector("#vid-player video", timeout=60_000)
    before = page.locator("#vid-player video").get_attribute("src")
    page.locator("#vid-layers").get_by_label("OCR boxes").click()
    page.wait_for_function("(b) => document.querySelector('#vid-player video')?.getAttribute('src') !== b",
                           arg=before, timeout=120_000)
    page.wait_for_selector("#vid-player .ov-status", state="detached", timeout=180_000)
    page.wait_for_function("() => document.querySelector('#vid-player video')?.readyState >= 2", timeout=60_000)
    page.locator("#vid-player video").evaluate("v => new Promise(r => { v.pause(); "
                                               "v.addEventListener('seeked', r, {once: true}); v.currentTime = 1; })")
    wait_text(page, "#vid-player .pl-counter", "frame 17 / 80", timeout=10_000)
    video = page.locator("#vid-player video").bounding_box()
    counter = page.locator("#vid-player .pl-counter").bounding_box()
    assert counter["y"] >= video["y"] + video["height"], (counter, video)     # below the picture, never on it
    assert counter["y"] + counter["height"] <= height                          # and in view with it
    page.locator("#vid-player").screenshot(path=str(artifacts / f"day_counter_{width}.png"))
    ctx.close()


def test_selected_frame_is_cleared_when_the_next_video_is_drawn(browser, day_server):
    url, _ = day_server
    ctx, page = open_page(browser, url, "Videos")
    page.wait_for_selector("#vid-curve svg.motion-svg", timeout=60_000)      # video 1: scored, with its curve
    svg = page.locator("#vid-curve svg.motion-svg")
    svg.scroll_into_view_if_needed()
    bb = svg.bounding_box()
    svg.click(position={"x": bb["width"] * 0.5, "y": bb["height"] * 0.5})
    page.wait_for_selector("#vid-frame img", timeout=60_000)
    assert "Frame" in page.locator("#vid-frame-info").inner_text()
    vid = page.locator("#vid-player .vid-wrap").get_attribute("data-video-id")
    page.locator("#vid-next").click()
    page.wait_for_function("(v) => document.querySelector('#vid-player .vid-wrap')?.dataset.videoId !== v",
                           arg=vid, timeout=30_000)
    page.wait_for_selector("#vid-frame img", state="detached", timeout=30_000)
    assert page.locator("#vid-frame-info").inner_text().strip() == ""
    ctx.close()


def test_transparent_pictures_show_on_a_checkerboard(browser, day_server, artifacts):
    url, ws = day_server
    small, large = (int(ws.query_one("SELECT id FROM images WHERE path LIKE ?", [f"%{n}"])[0])
                    for n in ("rgba_small.png", "rgba_large.png"))
    ctx, page = open_page(browser, url)
    page.wait_for_selector("#image-view .iv-img", timeout=60_000)
    page.locator("#img-order input").click()
    page.get_by_role("option", name="Newest first").click()
    page.locator("#img-apply").click()
    page.wait_for_function("(t) => document.querySelector('#image-view .iv')?.dataset.imageId === t",
                           arg=str(large), timeout=30_000)
    page.wait_for_function("() => { const i = document.querySelector('#image-view .iv-img'); "
                           "return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
    assert light(pixel(page.locator("#image-view .iv-stage"), 12, 12))       # its display copy keeps the alpha
    strip = page.locator(f"#img-upnext img[data-jump='{small}']")
    strip.wait_for(timeout=30_000)
    page.wait_for_function("(s) => document.querySelector(s)?.complete", arg=f"#img-upnext img[data-jump='{small}']")
    assert loaded(strip) and light(pixel(strip, 4, 4)) and checkered(strip)

    page.get_by_role("tab", name="Grid").click()
    page.wait_for_function("(ts) => ts.every(t => !!document.querySelector(`#grid-view .tile[data-tile='${t}'] img`)"
                           "?.complete)", arg=[str(large), str(small)], timeout=30_000)
    for item in (large, small):                      # a thumbnail (PNG with alpha) and the original
        tile = page.locator(f"#grid-view .tile[data-tile='{item}']")
        tile.screenshot(path=str(artifacts / f"day_rgba_tile_{item}.png"))
        assert loaded(tile) and light(pixel(tile, 12, 12)) and light(pixel(tile, 30, 140)) and checkered(tile), item

    page.get_by_role("tab", name="Best of N").click()
    page.wait_for_selector("#bo-view .bo-case", timeout=30_000)
    page.locator("#bo-search textarea, #bo-search input").first.fill("rgba_large")
    page.locator("#bo-apply").click()
    page.wait_for_function("(t) => (document.querySelector('#bo-view .bo-case') || {dataset: {}}).dataset.case"
                           "?.startsWith(t + ':')", arg=str(large), timeout=30_000)
    page.wait_for_function("() => document.querySelector('#bo-view img.bo-src')?.complete", timeout=30_000)
    src = page.locator("#bo-view img.bo-src")
    assert loaded(src) and light(pixel(src, 3, 3)) and checkered(src)
    page.locator("#bo-view .bo-head").screenshot(path=str(artifacts / "day_rgba_bestof.png"))
    ctx.close()
