"""Grid labelling throughput: images labelled per minute, one at a time vs the Images grid, in a real browser.

    .venv/bin/python bench/bench_grid.py [--single 48] [--grid 96] [--images 10000] [--out bench/results/grid_labelling]

Two workspaces: the demo (`python -m curation demo`: 24 images) and a 10,000-image one (the demo plus bench_app's
bulk rows: every row points at one of the demo's files, with a classifier score and a filter result; 2,000
earlier label events, so 8,000 images are still unlabelled). For each workspace and each way of labelling, a
fresh copy of the workspace and the app as its own process (`python app.py`), driven by Debian's Chromium
through Playwright with real key presses and mouse clicks:

- one at a time: G (B for every 6th image) on the Images tab, waiting each time until the next image is on
  screen and decoded (what the designer waits for before judging it);
- grid (page of 24): A (select page), click 4 tiles to deselect them, G, click the same 4, B, wait until all
  24 tiles show their stored label, N for the next page and wait until its pictures are decoded.

Both use the same mix, 20 good + 4 bad per 24, and the same queue (unlabelled, uncertainty order; mask and
OCR overlays off in the single view, which the grid does not draw). The clock runs from the first key press to
the last label shown as stored; the labels are then counted in DuckDB. No human time is in these numbers (no
looking, no deciding): the table measures what the tool costs per image, and the .md says what that means for
a designer. Writes <out>.md and <out>.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_app import ARGS, CHROMIUM, app_process, bulk_fill  # noqa: E402

PAGE = 24
BAD_AT = (3, 9, 14, 20)             # tile positions labelled bad on each page: 4 of 24, as every 6th image below
ANNOTATOR = "bench-grid"
DECODED = ("() => { if (document.querySelector('#grid-view .grid-page .empty-state')) return true; "
           "const ims = [...document.querySelectorAll('#grid-view .tile img')]; "
           "return ims.length > 0 && ims.every(i => i.complete && i.naturalWidth > 0); }")
SHOWN = "() => (document.querySelector('#image-view .iv') || {dataset: {}}).dataset.item || null"


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#image-view .iv-img", timeout=120_000)
    # the first image's overlays are computed once on load (fresh workspace): let that finish first
    page.wait_for_selector("#image-view .ov-status:not(.warn)", state="detached", timeout=300_000)
    box = page.locator("#annotator textarea, #annotator input").first
    box.fill(ANNOTATOR)
    box.press("Tab")
    return page


def one_at_a_time(page, k: int) -> tuple[int, float]:
    """k images by key, each waited for; returns (labelled, seconds)."""
    for name in ("Product mask", "OCR boxes"):
        page.locator("#img-overlays").get_by_label(name).uncheck()
    page.locator("#image-view").click()
    done = 0
    t0 = time.perf_counter()
    for n in range(k):
        old = page.evaluate(SHOWN)
        if old is None:
            break                                    # the queue is done
        page.keyboard.press("b" if n % 6 == 5 else "g")
        page.wait_for_function(
            "(old) => { const v = document.querySelector('#image-view .iv'); const e = document.querySelector("
            "'#image-view .empty-state'); if (e) return true; if (!v || v.dataset.item === old) return false; "
            "const im = v.querySelector('img.iv-img'); return im && im.complete && im.naturalWidth > 0; }",
            arg=old, timeout=30_000)
        done += 1
    return done, time.perf_counter() - t0


def grid(page, k: int) -> tuple[int, float]:
    """k images (pages of 24) on the grid; returns (labelled, seconds)."""
    page.get_by_role("tab", name="Grid").click()
    page.wait_for_function(DECODED, timeout=60_000)
    tiles = page.locator("#grid-view .tile")
    done = 0
    t0 = t_end = time.perf_counter()
    while done < k:
        n = tiles.count()
        if n == 0:
            break
        gen = page.locator("#grid-view .grid-page").get_attribute("data-page")
        bad = [i for i in BAD_AT if i < n]
        page.keyboard.press("a")
        for i in bad:
            tiles.nth(i).click()
        page.keyboard.press("g")
        for i in bad:
            tiles.nth(i).click()
        page.keyboard.press("b")
        page.wait_for_function("(n) => [...document.querySelectorAll('#grid-view .tile')]"
                               ".filter(t => t.dataset.label === 'good' || t.dataset.label === 'bad').length === n",
                               arg=n, timeout=30_000)
        done += n
        t_end = time.perf_counter()           # the clock stops at the last label shown as stored
        if done >= k:
            break
        page.keyboard.press("n")
        page.wait_for_function("(g) => { const p = document.querySelector('#grid-view .grid-page'); "
                               "return p && p.dataset.page !== g; }", arg=gen, timeout=30_000)
        page.wait_for_function(DECODED, timeout=30_000)
    return done, t_end - t0


def measure(template: Path, mode: str, k: int, work: Path) -> dict:
    from playwright.sync_api import sync_playwright

    from storage import Workspace

    root = work / f"{template.name}_{mode}"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root)
    with app_process(root, "--no-demo") as (base, _proc), sync_playwright() as p:
        url = base + "/"
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = open_page(b, url)
        load0 = os.getloadavg()[0]
        n, secs = (one_at_a_time if mode == "single" else grid)(page, k)
        b.close()
    with Workspace.open(root, read_only=True) as ws:
        stored = int(ws.query_one("SELECT count(*) FROM current_labels WHERE annotator = ?", [ANNOTATOR])[0])
        bad = int(ws.query_one("SELECT count(*) FROM current_labels WHERE annotator = ? AND value = 'bad'",
                               [ANNOTATOR])[0])
    shutil.rmtree(root, ignore_errors=True)
    return {"mode": mode, "asked": k, "labelled": n, "stored": stored, "bad": bad, "seconds": round(secs, 2),
            "per_minute": round(60 * n / secs, 1) if secs else None, "loadavg_1m": round(load0, 2)}


def human_model(rows: dict) -> tuple[list[str], list[float]]:
    """What the measured tool time means for a designer, under stated assumptions (not measured): the table
    rows and the modelled ratios."""
    key, click = 0.28, 1.2          # keystroke-level model: a key press; pointing at a tile and clicking it
    out = ["| judging time per image (assumed) | one at a time /min | grid /min | grid ÷ one at a time |",
           "|---:|---:|---:|---:|"]
    s, g = rows["single"], rows["grid"]
    tool_s = s["seconds"] / s["labelled"]
    tool_g = g["seconds"] / g["labelled"]
    ratios = []
    for judge in (0.0, 0.5, 1.0, 2.0):
        per_s = judge + key + tool_s
        per_g = judge + (4 * key + 2 * len(BAD_AT) * click) / PAGE + tool_g
        ratios.append(per_s / per_g)
        out.append(f"| {judge:.1f} s | {60 / per_s:.0f} | {60 / per_g:.0f} | {per_s / per_g:.1f}× |")
    return out, ratios


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=48, help="images labelled one at a time (per workspace)")
    ap.add_argument("--grid", type=int, default=96, help="images labelled on the grid (per workspace)")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--work", default=None, help="folder for the workspaces (default: a temporary one)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "grid_labelling"))
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM}")

    from curation.demo import build_demo_workspace
    from storage import Workspace, curation_store

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_grid_"))
    demo, big = work / "demo", work / "w10k"
    for d in (demo, big):
        shutil.rmtree(d, ignore_errors=True)
    build_demo_workspace(demo)                      # what `python -m curation demo --workspace DIR` builds
    shutil.copytree(demo, big)
    with Workspace.open(big) as ws:
        n_videos = int(ws.query_one("SELECT count(*) FROM videos")[0])
        fill = bulk_fill(ws, args.images, n_videos, prior_labels=2000)
        curation_store.refresh_filter_state(ws)    # bulk filter rows: the tiles' flags read the derived state
        fill["unlabelled"] = int(ws.query_one(
            "SELECT count(*) FROM images WHERE id NOT IN (SELECT item_id FROM resolved_labels "
            "WHERE item_kind = 'image')")[0])
    print(f"workspaces ready: demo 24 images; 10k {fill}", file=sys.stderr)

    results: dict = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "chromium": CHROMIUM, "page": PAGE, "bad_per_page": len(BAD_AT), "workspaces": {}}
    for name, template, n_images in (("demo", demo, 24), ("10k", big, fill["images"])):
        rows = {}
        for mode, k in (("single", args.single), ("grid", args.grid)):
            rows[mode] = measure(template, mode, k, work)
            print(f"{name} {mode}: {rows[mode]}", file=sys.stderr)
        rows["ratio"] = round(rows["grid"]["per_minute"] / rows["single"]["per_minute"], 2)
        rows["images"] = n_images
        results["workspaces"][name] = rows
    shutil.rmtree(work, ignore_errors=True) if not args.work else None

    ok = all(w["ratio"] >= 3 for w in results["workspaces"].values())
    results["goal_grid_3x"] = ok
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    md = ["# Grid labelling throughput (images)", "",
          f"{results['date']} · {results['machine']} · Debian Chromium headless through Playwright.", "",
          "| workspace | images | way | labelled | stored | seconds | images / min | grid ÷ one at a time |",
          "|---|---:|---|---:|---:|---:|---:|---:|"]
    for name, w in results["workspaces"].items():
        for mode in ("single", "grid"):
            r = w[mode]
            md.append(f"| {name} | {w['images']:,} | {'one at a time' if mode == 'single' else 'grid (24)'} | "
                      f"{r['labelled']} | {r['stored']} | {r['seconds']} | {r['per_minute']} | "
                      f"{w['ratio'] if mode == 'grid' else ''} |")
    loads = [w[m]["loadavg_1m"] for w in results["workspaces"].values() for m in ("single", "grid")]
    md += ["", f"Goal, grid at least 3× faster: **{'yes' if ok else 'NO'}**. Machine load while measuring (1-minute "
               f"load average on {os.cpu_count()} cores, other work running): {min(loads)}–{max(loads)}.", "",
           "One at a time: G (B on every 6th image), waiting each time for the next image to be on screen and "
           "decoded. Grid: A (select page), click 4 tiles off, G, click the 4 on, B, wait until every tile shows "
           "its stored label, N and wait for the next page's pictures. Same mix (20 good + 4 bad per 24), same "
           "queue (unlabelled, uncertainty order). The demo has 24 images, so it labels 24 each way there. "
           "'stored': the annotator's current labels counted in DuckDB afterwards. The 10k workspace's rows point "
           "at the demo's 24 files, so the browser decodes few distinct pictures; a real workspace adds a "
           "thumbnail fetch per tile (cached under thumbs/ for large images).", "",
           "These are the tool's own costs: the script does not look or decide. A designer adds judging time per "
           "image in both ways, and key presses and clicks. Under assumed action times (a key press 0.28 s, "
           "pointing at a tile and clicking 1.2 s, the keystroke-level model's figures) and the same judging "
           "time per image in both ways, the 10k rows above give:", ""]
    table, ratios = human_model(results["workspaces"]["10k"])
    results["modelled_designer_ratio"] = [round(r, 2) for r in ratios]
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    md += table
    w = results["workspaces"]["10k"]
    saved = w["single"]["seconds"] / w["single"]["labelled"] - w["grid"]["seconds"] / w["grid"]["labelled"]
    extra = (4 * 0.28 + 2 * len(BAD_AT) * 1.2) / PAGE - 0.28
    md += ["", f"Modelled this way the grid is {ratios[0]:.1f}× at no judging time and {ratios[-1]:.1f}× at 2 s "
               f"per image: per image it saves {saved:.2f} s of tool time and costs {extra:+.2f} s of the "
               "designer's own actions (per page A, G, B, N and 8 clicks for the 4 bad tiles, against one key per "
               "image). Beyond that a designer gains from the grid only where judging a page of thumbnails at a "
               "glance is quicker than judging 24 full-size images, which a script cannot measure."]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
