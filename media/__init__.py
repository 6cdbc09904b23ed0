"""The media layer: reading images and videos from disk, below everything that computes on them.

`media.files` probes, hashes and loads files (ingest, filters, metrics' reference images);
`media.decode` is the one video decoder (metrics, overlays, captions) and `media.encode` the one MP4 writer.
`media.mask_draw`, `media.overlay_draw` and `media.motion_curve` draw for people: pure functions of pixels
and data. None of them knows the workspace.
"""
