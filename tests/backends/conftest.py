"""Fixtures of the backend tests: an isolated models folder, and a scripted local chat-completions server."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    """An empty models folder used by every loader (via $ADVFX_MODELS; the process cache is keyed by folder)."""
    from metrics.backends import set_models_dir
    d = tmp_path / "models"
    d.mkdir()
    set_models_dir(None)
    monkeypatch.setenv("ADVFX_MODELS", str(d))
    yield d


class ChatServer:
    """A chat-completions server on 127.0.0.1. `script` is a list of replies consumed in order (the last
    one repeats): dicts with status, content (the model text) or raw (body bytes), delay, headers."""

    def __init__(self) -> None:
        self.script: list[dict] = [{"content": '{"score": 3}'}]
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                step = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
                if step.get("delay"):
                    time.sleep(step["delay"])
                status = step.get("status", 200)
                if "raw" in step:
                    payload = step["raw"]
                else:
                    payload = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": step.get("content", "")},
                         "finish_reason": "stop"}]}).encode()
                try:
                    self.send_response(status)
                    for k, v in step.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def chat_server():
    s = ChatServer()
    yield s
    s.close()


@pytest.fixture()
def mllm_env(chat_server, monkeypatch):
    from metrics.backends import clear_cache
    monkeypatch.setenv("ADVFX_MLLM_BASE_URL", chat_server.url)
    monkeypatch.setenv("ADVFX_MLLM_MODEL", "test-vlm")
    monkeypatch.setenv("ADVFX_MLLM_API_KEY", "sk-test")
    clear_cache()
    yield chat_server
    clear_cache()
