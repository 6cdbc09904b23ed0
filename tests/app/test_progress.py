"""The Images tab's progress line: cached on the key-press path (a full count costs tens of ms at 100,000
images), made fresh by the follow-up event that runs after every label."""
from __future__ import annotations

import uuid

import gradio as gr

from labeling.service import ReviewService
from labeling.ui_images import ImagesTab, _filters, new_state
from storage import Workspace
from storage.review_store import label_progress

TOGGLES = ["Filter flags", "Classifier score"]


def test_follow_up_redraws_a_fresh_progress_line_after_fast_labels(demo_workspace):
    with Workspace.open(demo_workspace) as ws:
        tab = ImagesTab(ReviewService(ws))
        req = gr.Request(username=None, session_hash="fast-keys")
        st = new_state(_filters("id", "unlabelled", None, 0, 100, None, None, False))
        tab._advance(st)
        tab.progress_html()                                   # the cache holds "0 labelled" now
        for handler in (tab.h_good, tab.h_bad, tab.h_good):  # three labels well inside the cache's second
            st = handler(st, [], "", "fast", uuid.uuid4().hex, TOGGLES, req)[0]
        assert label_progress(ws, "image")["labelled"] == 3
        progress = next(tab.h_overlays(st, TOGGLES, req))[2]      # the follow-up's first update
        assert "<b>3</b> of 24 images labelled" in progress and "good 2 · bad 1" in progress
