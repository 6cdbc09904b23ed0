"""The Compare tab (being built)."""
from __future__ import annotations

import gradio as gr


class CompareTab:
    def __init__(self, svc):
        self.svc = svc

    def build(self, annotator):
        gr.Markdown("The Compare tab is being built.")

    def on_app_load(self, demo, *a):
        pass
