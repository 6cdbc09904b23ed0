"""The Videos tab (being built)."""
from __future__ import annotations

import gradio as gr


class VideosTab:
    def __init__(self, svc):
        self.svc = svc

    def build(self, annotator):
        gr.Markdown("The Videos tab is being built.")

    def on_app_load(self, demo, *a):
        pass
