"""The app serves files only from the workspace and the registered media roots, never anything else, and binds
127.0.0.1 unless told otherwise."""
from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .conftest import REPO, load_app_module


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _file_url(base: str, path: str | Path) -> str:
    return base + "gradio_api/file=" + urllib.parse.quote(str(path))


def test_file_route_serves_media_and_refuses_everything_else(live_app, demo_media, tmp_path):
    url, ws, launch_kw = live_app
    media = Path(ws.query_one("SELECT path FROM images ORDER BY id LIMIT 1")[0])
    assert _get(_file_url(url, media)) == 200                        # a workspace media file is served
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    link = media.parent / "escape_link.txt"
    os.symlink(secret, link)                                          # a symlink escape from the media folder
    link2 = media.parent / "passwd_link"
    os.symlink("/etc/passwd", link2)
    refused = ["/etc/passwd", REPO / "app.py", REPO / "README.md", secret, link, link2, ws.db_path,
               str(media.parent) + "/../../../../../../etc/passwd", Path.home() / ".bashrc"]
    for p in refused:
        code = _get(_file_url(url, p))
        assert code in (400, 403, 404), f"{p} served with {code}"
    # the allowed paths are exactly the workspace and the one media root the demo manifest registered
    assert launch_kw["allowed_paths"] == [str(ws.root), os.path.realpath(demo_media)]
    assert launch_kw["blocked_paths"] == [str(ws.db_path), str(ws.db_path) + ".wal", str(ws.root / "runs"),
                                          str(ws.root / "models")]
    # inside the roots: served; blocked sub-folders and a sibling of a root: refused
    inside = [ws.root / "thumbs" / "probe.txt", Path(demo_media) / "probe.txt"]
    blocked = [ws.root / "runs" / "probe.txt", ws.root / "models" / "probe.txt"]
    sibling = Path(os.path.realpath(demo_media)).parent / "sibling_of_media_root.txt"
    for p in inside + blocked + [sibling]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("probe")
    try:
        for p in inside:
            assert _get(_file_url(url, p)) == 200, f"{p} inside an allowed root was not served"
        for p in blocked + [sibling]:
            code = _get(_file_url(url, p))
            assert code in (400, 403, 404), f"{p} served with {code}"
    finally:
        for p in inside + blocked + [sibling]:
            p.unlink()


def test_media_root_registered_after_start_is_served(live_app, tmp_path):
    """A folder ingested while the app runs is served within a second or two, without a restart; a folder the
    catalogue does not name stays refused."""
    import time

    from storage import catalog

    url, ws, launch_kw = live_app
    new_root, other = tmp_path / "ingested_later", tmp_path / "never_registered"
    for d in (new_root, other):
        d.mkdir()
        (d / "probe.txt").write_text("probe")
    assert _get(_file_url(url, new_root / "probe.txt")) in (400, 403, 404)
    catalog.add_media_root(ws, os.path.realpath(new_root))
    deadline, code = time.monotonic() + 10, None
    while time.monotonic() < deadline and code != 200:
        code = _get(_file_url(url, new_root / "probe.txt"))
        time.sleep(0.3)
    assert code == 200, f"a root registered after start was not served ({code})"
    assert _get(_file_url(url, other / "probe.txt")) in (400, 403, 404)
    assert _get(_file_url(url, ws.db_path)) in (400, 403, 404)           # blocked paths still win
    assert os.path.realpath(new_root) in list(launch_kw["allowed_paths"])


def test_default_bind_is_localhost():
    app = load_app_module()
    args = app.parse_args(["--workspace", "w"])
    assert args.host == "127.0.0.1" and not args.auth
