"""Batch work of the studio: ingest, demo generation, curation and export. CLI: `python -m curation`."""
