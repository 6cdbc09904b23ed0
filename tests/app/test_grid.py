"""Images → Grid: many images labelled in one action (label_many), one event each, undone as one batch; the grid
in a real browser (click, shift-click, keys)."""
from __future__ import annotations

import pytest

from .conftest import GRID_FLAGGED as FLAGGED
from .conftest import GRID_SCORES as SCORES

N_IMAGES = 24                       # the demo workspace


@pytest.fixture(scope="module")
def grid_server(labelling_server):
    """(url, workspace) of the app on a demo copy with a classifier run (SCORES) and two failed filters (FLAGGED)
    stored; shared with test_bestof.py (conftest.labelling_server), whose labels are of triples and videos."""
    return labelling_server


def current(ws, ids):
    return {int(r[0]): r[1] for r in ws.query("SELECT item_id, value FROM current_labels WHERE item_kind = 'image' "
                                              "AND list_contains(?::BIGINT[], item_id)", [list(ids)])}


def test_label_many_is_one_event_each_and_one_undo(grid_server):
    from gradio_client import Client

    from labeling.service import NO_ANNOTATOR

    url, ws = grid_server
    c = Client(url, verbose=False)
    ids = [3, 7, 11, 15, 19]
    out = c.predict(ids, "bad", ["blurry"], "script-ann", "many-1", api_name="/label_many")
    assert out["labelled"] == 5 and out["item_ids"] == ids and not out["duplicate"]
    rows = ws.query("SELECT item_id, value, reasons, annotator, session FROM label_events "
                    "WHERE annotator = 'script-ann' ORDER BY id")
    assert [(int(r[0]), r[1], list(r[2]), r[3]) for r in rows] == [(i, "bad", ["blurry"], "script-ann") for i in ids]
    assert len({r[4] for r in rows}) == 1                                  # one batch
    again = c.predict(ids, "bad", ["blurry"], "script-ann", "many-1", api_name="/label_many")
    assert again["duplicate"] and ws.query_one("SELECT count(*) FROM label_events "
                                               "WHERE annotator = 'script-ann'")[0] == 5
    assert current(ws, ids) == {i: "bad" for i in ids}
    res = c.predict(annotator="script-ann", item_kind="image", api_name="/undo")
    assert res["n"] == 5 and sorted(res["item_ids"]) == ids
    assert current(ws, ids) == {}
    assert c.predict(annotator="script-ann", item_kind="image", api_name="/undo") == {}
    with pytest.raises(Exception, match=NO_ANNOTATOR[:30]):
        c.predict([1, 2], "good", [], "  ", api_name="/label_many")
    with pytest.raises(Exception, match="no image with id 9999"):
        c.predict([1, 9999], "good", [], "script-ann", api_name="/label_many")
    assert ws.query_one("SELECT count(*) FROM label_events WHERE item_kind = 'image' AND item_id = 1")[0] == 0


@pytest.mark.browser
def test_grid_select_label_undo_and_cursor(browser, grid_server, artifacts):
    url, ws = grid_server
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#image-view .iv-img", timeout=60_000)
    box = page.locator("#annotator textarea, #annotator input").first
    box.fill("grid-ann")
    box.press("Tab")
    page.get_by_role("tab", name="Grid").click()
    page.wait_for_function("() => document.querySelectorAll('#grid-view .tile').length > 0", timeout=30_000)
    tiles = page.locator("#grid-view .tile")
    ids = [int(x) for x in tiles.evaluate_all("ts => ts.map(t => t.dataset.tile)")]
    free = set(range(1, N_IMAGES + 1)) - set(current(ws, range(1, N_IMAGES + 1)))
    assert sorted(ids) == sorted(free)                           # the unlabelled queue, one page of 24 at most
    for k, i in enumerate(ids):                                  # each tile shows its own score and flags
        assert tiles.nth(k).locator(".ov-score").inner_text() == f"{100 * SCORES[i]:.0f}%"
        flag = tiles.nth(k).locator(".flag")
        assert ([flag.inner_text()] if flag.count() else []) == ([f"⚑ {FLAGGED[i][0]}"] if i in FLAGGED else [])

    def labels_shown():
        return {int(a): b for a, b in tiles.evaluate_all("ts => ts.map(t => [t.dataset.tile, t.dataset.label])")}

    def wait_labels(want: dict):
        page.wait_for_function(
            "(want) => Object.entries(want).every(([id, v]) => "
            "(document.querySelector(`#grid-view .tile[data-tile='${id}']`) || {dataset: {}}).dataset.label === v)",
            arg={str(k): v for k, v in want.items()}, timeout=15_000)

    tiles.nth(0).click()
    tiles.nth(2).click(modifiers=["Shift"])
    assert page.locator("#grid-view .tile.selected").count() == 3
    page.keyboard.press("b")
    chosen = ids[:3]
    wait_labels({i: "bad" for i in chosen})
    rows = ws.query("SELECT item_id, value, session FROM label_events WHERE annotator = 'grid-ann' ORDER BY id")
    assert sorted(int(r[0]) for r in rows) == sorted(chosen) and {r[1] for r in rows} == {"bad"}
    assert len({r[2] for r in rows}) == 1
    assert page.locator("#grid-view .tile.selected").count() == 0

    page.keyboard.press("z")
    wait_labels({i: "" for i in chosen})
    assert current(ws, chosen) == {}
    assert page.locator("#grid-view .tile.cursor").get_attribute("data-tile") == str(chosen[0])  # on the undone

    cols = page.evaluate("() => { const ts = [...document.querySelectorAll('#grid-view .tile')]; "
                         "return ts.filter(t => t.offsetTop === ts[0].offsetTop).length; }")
    assert 2 <= cols < len(ids)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    target = 2 + cols
    assert page.locator("#grid-view .tile.cursor").get_attribute("data-idx") == str(target)
    page.keyboard.press("g")
    wait_labels({ids[target]: "good"})
    assert page.locator("#grid-view .tile.cursor").get_attribute("data-idx") == str(target + 1)   # moved on
    assert current(ws, ids) == {ids[target]: "good"}
    assert {k: v for k, v in labels_shown().items() if v} == {ids[target]: "good"}
    page.locator("#grid-view .tile").nth(5).click()                    # a selection, shown in the screenshot
    page.locator("#grid-view .tile").nth(8).click(modifiers=["Shift"])
    page.locator("#grid-view .grid-tiles").screenshot(path=str(artifacts / "grid_selection.png"))
    # the single view (still in the page, behind its tab) computes its first image's overlays since the page
    # loaded; let its request finish before the server and the workspace close under it
    page.wait_for_selector("#image-view .ov-status", state="detached", timeout=120_000)
    ctx.close()
