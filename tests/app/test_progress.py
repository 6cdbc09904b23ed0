"""The Images tab's progress line: cached on the key-press path (a full count costs tens of ms at 100,000
images), made fresh by the follow-up event that runs after every label."""
from __future__ import annotations

import uuid

import gradio as gr

from labeling.service import ReviewService
from labeling.ui_common import new_nav
from labeling.ui_images import ImagesTab, _filters
from storage import Workspace
from storage.review_store import label_progress

TOGGLES = ["Filter flags", "Classifier score"]


def test_follow_up_redraws_a_fresh_progress_line_after_fast_labels(demo_workspace):
    with Workspace.open(demo_workspace) as ws:
        tab = ImagesTab(ReviewService(ws))
        req = gr.Request(username=None, session_hash="fast-keys")
        st = new_nav(_filters("id", "unlabelled", None, 0, 100, None, None, False))
        tab.advance(st)
        tab.progress_html()                                   # the cache holds "0 labelled" now
        for handler in (tab.h_good, tab.h_bad, tab.h_good):  # three labels well inside the cache's second
            st = handler(st, [], "", "fast", uuid.uuid4().hex, TOGGLES, req)[0]
        assert label_progress(ws, "image")["labelled"] == 3
        progress = tab.h_after(st)[0]                             # the follow-up the page asks for
        assert "<b>3</b> of 24 images labelled" in progress and "good 2 · bad 1" in progress


def test_live_progress_matches_a_full_count_through_labels_undos_and_skips(demo_workspace):
    from storage.review_store import label_progress_live

    with Workspace.open(demo_workspace) as ws:
        svc = ReviewService(ws)
        assert label_progress_live(ws, "image") == label_progress(ws, "image")
        steps = [("a", 1, "good"), ("a", 2, "bad"), ("b", 1, "bad"), ("a", 3, "skip"), ("a", None, "undo"),
                 ("b", 4, "good"), ("b", None, "undo"), ("a", 2, "good"), ("b", None, "undo")]
        for who, item, value in steps:
            if value == "undo":
                svc.undo(annotator=who, item_kinds=("image",))
            else:
                svc.label(item_kind="image", item_id=item, value=value, annotator=who)
            assert label_progress_live(ws, "image") == label_progress(ws, "image"), (who, item, value)
        with ws.transaction() as cur:      # an event written by another code path (an import) is seen too
            cur.execute("INSERT INTO label_events (item_kind, item_id, value, annotator) "
                        "VALUES ('image', 5, 'bad', 'c')")
        live = label_progress_live(ws, "image")
        assert live == label_progress(ws, "image") and live["labelled"] == 3       # items 1, 2 and 5


def test_the_selected_frame_and_scoring_log_clear_when_another_video_is_drawn(demo_workspace):
    """The Videos tab's follow-up after the page draws a video: a frame picked on the previous video's curve and
    that video's scoring log are cleared; a redraw of the same video (an overlay toggle) keeps them."""
    from labeling.ui_videos import VideosTab

    with Workspace.open(demo_workspace) as ws:
        tab = VideosTab(ReviewService(ws))
        st = new_nav()
        st["hist"], st["i"] = [1, 2], 1                       # video 2 on screen, video 1 before it
        *_, frame, info, log, shown = tab.h_after(st, 1)
        assert (frame, info, log, shown) == (None, "", "", 2)
        *_, frame, info, log, shown = tab.h_after(st, 2)
        assert all(isinstance(x, type(gr.skip())) for x in (frame, info, log)) and shown == 2


def test_a_finished_export_is_readable_in_the_page_and_downloadable_as_a_zip(demo_workspace):
    """Export and Benchmark show their finished report in the page and offer the folder as a zip; the
    Statistics tab's label counts are read again when asked (not frozen at start)."""
    import zipfile

    from curation import export
    from labeling.ui_misc import MiscTabs
    from storage import labels

    with Workspace.open(demo_workspace) as ws:
        misc = MiscTabs(ReviewService(ws))
        before = misc.stats_progress_html()
        for vid in (3, 5, 7):
            labels.append_event(ws, item_kind="video", item_id=vid, value="accept", annotator="exporter")
        out = ws.root / "exports" / "page"
        job = misc.jobs.start("export", "Exporting", lambda j: export.export_splits(ws, out, {}))
        assert job.done.wait(120) and job.error is None, job.error
        text, archive = misc.report_view("export")
        assert "3 of 12 items selected" in text and "| train |" in text
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
        assert "README.md" in names and "manifest.jsonl" in names
        assert misc.stats_progress_html() != before        # the three accepted videos counted
