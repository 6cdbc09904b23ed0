"""One module per CLI sub-command (see curation.cli)."""
