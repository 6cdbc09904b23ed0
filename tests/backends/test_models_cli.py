"""`python -m curation models status|download|verify` and the resumable, checksummed downloader."""
from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from curation.cli import main
from metrics.backends import registry


def test_status_json_lists_every_backend(models_dir, capsys):
    assert main(["models", "status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["models_dir"] == str(models_dir)
    by = {r["backend"]: r for r in out["backends"]}
    for key in ("ocr", "segmenter", "clip:ViT-B-32", "clip:ViT-L-14", "dino:vit_small_patch14_dinov2", "classical",
                "aesthetic", "text_video", "mllm"):
        assert key in by
        assert set(by[key]) >= {"backend", "kind", "available", "name", "weights", "source", "device", "version",
                                "reason"}
    assert by["ocr"]["available"] and by["ocr"]["name"] == "rapidocr-ppocr"
    assert by["segmenter"]["name"] == "classical-grabcut-v1" and "sam2.1_hiera_tiny.pt" in by["segmenter"]["reason"]
    assert not by["clip:ViT-B-32"]["available"]
    assert by["clip:ViT-B-32"]["weights"] == str(models_dir / "clip/ViT-B-32.safetensors")
    assert any(f["path"].endswith("sam2/sam2.1_hiera_tiny.pt") for f in out["layout"])


def test_models_dir_flag(tmp_path, capsys):
    from metrics.backends import set_models_dir
    d = tmp_path / "elsewhere"
    try:
        assert main(["models", "status", "--json", "--models-dir", str(d)]) == 0
        assert json.loads(capsys.readouterr().out)["models_dir"] == str(d.resolve())
    finally:
        set_models_dir(None)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_download_offline_fails_fast(models_dir, monkeypatch, capsys):
    monkeypatch.setenv("ADVFX_HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    t = time.perf_counter()
    assert main(["models", "download", "clip-b32", "--json", "--no-progress"]) == 1
    assert time.perf_counter() - t < 10
    cap = capsys.readouterr()
    assert "cannot reach 127.0.0.1" in cap.err and "offline" in cap.err
    assert json.loads(cap.out)["results"][0]["status"] == "failed"
    assert not any(models_dir.rglob("*.safetensors"))


def test_download_unknown_key(models_dir, capsys):
    assert main(["models", "download", "nope"]) == 2
    assert "unknown model key" in capsys.readouterr().err


class RangeServer:
    """Serves one blob with Range support and a hub-style X-Linked-Etag sha256 on HEAD. With `cut_after`, the
    first GET announces the whole blob, sends that many bytes and closes the connection."""

    def __init__(self, blob: bytes, etag: str | None, cut_after: int | None = None):
        srv = self
        self.blob, self.etag, self.ranges, self.cut_after = blob, etag, [], cut_after

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _head(self, code, length, start=0):
                self.send_response(code)
                self.send_header("Content-Length", str(length))
                if srv.etag:
                    self.send_header("X-Linked-Etag", f'"{srv.etag}"')
                if code == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(srv.blob) - 1}/{len(srv.blob)}")
                self.end_headers()

            def do_HEAD(self):
                self._head(200, len(srv.blob))

            def do_GET(self):
                rng = self.headers.get("Range")
                srv.ranges.append(rng)
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self._head(206, len(srv.blob) - start, start)
                    self.wfile.write(srv.blob[start:])
                else:
                    self._head(200, len(srv.blob))
                    cut, srv.cut_after = srv.cut_after, None
                    self.wfile.write(srv.blob[:cut])
                    if cut is not None:
                        self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/blob.bin"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_resumes_and_verifies(tmp_path):
    blob = bytes(range(256)) * 4096  # 1 MiB
    sha = hashlib.sha256(blob).hexdigest()
    srv = RangeServer(blob, sha, cut_after=300_000)      # the connection breaks off after 300,000 bytes
    try:
        dest = tmp_path / "clip" / "ViT-B-32.safetensors"
        with pytest.raises(registry.DownloadError, match="interrupted after 300000 bytes"):
            registry.download_file(srv.url, dest, progress=False, chunk=65536)
        part = dest.with_name(dest.name + ".part")
        assert part.exists() and not dest.exists() and part.stat().st_size == 300_000
        rec = registry.download_file(srv.url, dest, progress=False, chunk=65536)
        assert rec["resumed"] and rec["verified"] and rec["sha256"] == sha
        assert srv.ranges[0] is None and srv.ranges[1].startswith("bytes=") and srv.ranges[1] != "bytes=0-"
        assert dest.read_bytes() == blob and not part.exists()
        assert registry.download_file(srv.url, dest, progress=False)["status"] == "present"
    finally:
        srv.close()


def test_download_checksum_mismatch_deletes_partial(tmp_path):
    srv = RangeServer(b"x" * 5000, "0" * 64)
    try:
        dest = tmp_path / "w.pt"
        with pytest.raises(registry.DownloadError, match="checksum mismatch"):
            registry.download_file(srv.url, dest, progress=False)
        assert not dest.exists() and not dest.with_name("w.pt.part").exists()
    finally:
        srv.close()


def test_verify_runs_present_backends(models_dir, capsys):
    rc = main(["models", "verify", "ocr", "classical", "clip:ViT-B-32", "--json"])
    out = json.loads(capsys.readouterr().out)
    res = {r["backend"]: r for r in out["results"]}
    assert res["ocr"]["result"] == "ok" and "VERIFY" in res["ocr"]["detail"]
    assert res["classical"]["result"] == "ok"
    assert res["clip:ViT-B-32"]["result"] == "absent"
    assert rc == 0
