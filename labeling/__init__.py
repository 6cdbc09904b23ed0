"""The review app's package: label service and the Gradio tab builders (overlays: curation.overlays)."""
