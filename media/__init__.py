"""The media layer: reading images and videos from disk, below everything that computes on them.

`media.files` probes, hashes and loads files (ingest, filters, metrics' reference images);
`media.decode` is the one video decoder (metrics, overlays, captions). Neither knows the workspace.
"""
