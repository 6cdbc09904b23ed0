"""Metrics of the Ad-VFX curation studio. Model loading lives in `metrics.backends`."""
