"""The OpenAI-compatible MLLM client against a local chat-completions server."""
from __future__ import annotations

import base64
import socket
import time

import numpy as np
import pytest

from metrics.backends import BackendUnavailable, MLLMError, get_mllm, parse_score
from metrics.backends.mllm import MLLMClient, MLLMConfig


def client(url, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2.0)
    return MLLMClient(MLLMConfig(base_url=url, model="test-vlm", api_key="sk-test", **kw))


IMG = np.zeros((40, 60, 3), np.uint8)


def test_unconfigured_raises_with_reason(monkeypatch, tmp_path):
    for k in ("ADVFX_MLLM_BASE_URL", "ADVFX_MLLM_MODEL", "ADVFX_MLLM_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(BackendUnavailable, match="ADVFX_MLLM_BASE_URL"):
        get_mllm()
    with pytest.raises(BackendUnavailable, match="mllm.json"):
        get_mllm(tmp_path)


def test_workspace_config_file(monkeypatch, tmp_path, chat_server):
    for k in ("ADVFX_MLLM_BASE_URL", "ADVFX_MLLM_MODEL", "ADVFX_MLLM_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MY_KEY", "sk-from-env")
    (tmp_path / "mllm.json").write_text(f'{{"base_url": "{chat_server.url}", "model": "ws-model", '
                                        f'"api_key_env": "MY_KEY", "timeout": 3}}')
    m = get_mllm(tmp_path)
    assert m.name == "mllm:ws-model" and m.config.timeout == 3.0
    assert m.chat("hi") == '{"score": 3}'
    assert chat_server.requests[-1]["auth"] == "Bearer sk-from-env"


def test_good_reply_and_request_format(mllm_env):
    mllm_env.script = [{"content": '{"score": 4, "reason": "clear product"}'}]
    m = get_mllm()
    assert m.score("Rate the product consistency.", [IMG, IMG], seed=7) == 4
    req = mllm_env.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    body = req["body"]
    # sampled at the endpoint's default: no temperature sent (CRScore's N runs are N judgements)
    assert body["model"] == "test-vlm" and body["seed"] == 7 and "temperature" not in body
    parts = body["messages"][0]["content"]
    assert parts[0]["type"] == "text" and "Rate the product" in parts[0]["text"]
    urls = [p["image_url"]["url"] for p in parts[1:]]
    assert len(urls) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert base64.b64decode(urls[0].split(",", 1)[1])[:2] == b"\xff\xd8"  # a real JPEG


@pytest.mark.parametrize("reply,score", [
    ('Sure. Here is my rating:\n```json\n{"score": 2, "reason": "text garbled"}\n```\nHope it helps!', 2),
    ("After looking at the frames, I'd give it a score of 5 because the text is stable.", 5),
    ("Score: 3/5 - the motion is plausible.", 3),
    ("4", 4),
    ("The product looks fine. Rating: 4 out of 5.", 4),
    ('{"Score": "1"}', 1),
])
def test_score_parsing_with_prose(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize("reply", ['{"score": 7}', '{"score": 3.5}', "I cannot rate this.", '{"score": null}',
                                   "Between 2 and 4, say 3/5 or 4/5", '{"reason": "no score key"'])
def test_score_parsing_rejects(reply):
    with pytest.raises(ValueError):
        parse_score(reply)


def test_malformed_then_valid_is_reasked(chat_server):
    chat_server.script = [{"content": '{"score": oops'}, {"content": '{"score": 5}'}]
    assert client(chat_server.url).score("rate", [IMG]) == 5
    assert len(chat_server.requests) == 2


def test_unparseable_after_retries_raises(chat_server):
    chat_server.script = [{"content": "I'd rather not say."}]
    with pytest.raises(MLLMError, match="no valid 1-5 score after 3 replies"):
        client(chat_server.url, parse_retries=2).score("rate", [IMG])
    assert len(chat_server.requests) == 3


def test_non_json_body_and_non_completion(chat_server):
    chat_server.script = [{"raw": b"<html>bad gateway</html>"}]
    with pytest.raises(MLLMError, match="non-JSON"):
        client(chat_server.url, retries=1).chat("hi")
    chat_server.script = [{"raw": b'{"error": "nope"}'}]
    with pytest.raises(MLLMError, match="not a chat completion"):
        client(chat_server.url).chat("hi")


def test_429_and_5xx_are_retried(chat_server):
    chat_server.script = [{"status": 429, "raw": b'{"error":"rate"}', "headers": {"Retry-After": "0"}},
                          {"status": 503, "raw": b'{"error":"busy"}'},
                          {"status": 500, "raw": b"oops"},
                          {"content": '{"score": 2}'}]
    assert client(chat_server.url, retries=3).score("rate", [IMG]) == 2
    assert len(chat_server.requests) == 4


def test_5xx_exhausts_retries(chat_server):
    chat_server.script = [{"status": 502, "raw": b"bad gateway"}]
    with pytest.raises(MLLMError, match="after 3 attempts: HTTP 502"):
        client(chat_server.url, retries=2).chat("hi")
    assert len(chat_server.requests) == 3


def test_4xx_fails_at_once(chat_server):
    chat_server.script = [{"status": 401, "raw": b'{"error":"bad key"}'}]
    with pytest.raises(MLLMError, match="HTTP 401"):
        client(chat_server.url, retries=3).chat("hi")
    assert len(chat_server.requests) == 1


def test_timeout_is_retried_then_raises(chat_server):
    chat_server.script = [{"delay": 1.0, "content": '{"score": 1}'}]
    t = time.perf_counter()
    with pytest.raises(MLLMError, match="timed out"):
        client(chat_server.url, timeout=0.2, retries=1).chat("hi")
    assert time.perf_counter() - t < 3
    chat_server.requests.clear()
    chat_server.script = [{"delay": 1.0, "content": "x"}, {"content": '{"score": 5}'}]
    assert client(chat_server.url, timeout=0.3, retries=2).score("rate", []) == 5


def test_unreachable_endpoint():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t = time.perf_counter()
    with pytest.raises(MLLMError, match="cannot reach"):
        client(f"http://127.0.0.1:{port}/v1", retries=2).chat("hi")
    assert time.perf_counter() - t < 5
