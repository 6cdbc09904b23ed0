"""The review app's package: label service, overlays, and the Gradio tab builders."""
