"""Fixtures of the metric tests: synthetic videos with known motion, a local chat-completions server."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest


def texture(size: int, seed: int = 0) -> np.ndarray:
    """A textured RGB image (blurred noise at two scales): dense flow is well defined everywhere."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.resize(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 1.5)
    return np.clip(0.6 * big.astype(np.float32) + 0.4 * fine.astype(np.float32), 0, 255).astype(np.uint8)


def pan_frames(n: int, vx: float, vy: float, size: int = 256, canvas: int = 512, seed: int = 0) -> list[np.ndarray]:
    """A camera pan: a window of `size` px moving over a larger texture at (vx, vy) px per frame."""
    import cv2

    tex = texture(canvas, seed)
    out = []
    x0, y0 = (canvas - size) / 2 - vx * n / 2, (canvas - size) / 2 - vy * n / 2
    for t in range(n):
        m = np.float32([[1, 0, -(x0 + vx * t)], [0, 1, -(y0 + vy * t)]])
        out.append(cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out


def write_video(path: Path, frames: list[np.ndarray], fps: int = 16) -> Path:
    from media.encode import write_mp4

    write_mp4(path, frames, fps=fps)
    return path


class ChatServer:
    """Answers POST /v1/chat/completions from a script of reply texts (cycled per request)."""

    def __init__(self) -> None:
        self.replies: list[str] = ['{"score": 4}']
        self.requests: list[dict] = []
        srv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                srv.requests.append(body)
                text = srv.replies[(len(srv.requests) - 1) % len(srv.replies)]
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def chat_server():
    srv = ChatServer()
    yield srv
    srv.close()


@pytest.fixture()
def no_model_env(monkeypatch, tmp_path):
    """No weights, no MLLM endpoint: what this offline machine has."""
    monkeypatch.setenv("ADVFX_MODELS", str(tmp_path / "models"))   # the models folder is part of every cache key
    for k in ("ADVFX_MLLM_BASE_URL", "ADVFX_MLLM_MODEL", "ADVFX_MLLM_API_KEY"):
        monkeypatch.delenv(k, raising=False)
