"""Classifier, Benchmark, Export and Statistics tabs (being built)."""
from __future__ import annotations

import gradio as gr


class MiscTabs:
    def __init__(self, svc):
        self.svc = svc

    def build_classifier(self):
        gr.Markdown("Classifier: retraining and run history will appear here.")

    def build_benchmark(self):
        gr.Markdown("Benchmark: model rankings will appear here.")

    def build_export(self):
        gr.Markdown("Export: dataset export will appear here.")

    def build_stats(self):
        gr.Markdown("Statistics will appear here.")
