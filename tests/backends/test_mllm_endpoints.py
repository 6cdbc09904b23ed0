"""CRScore against endpoints that behave like reasoning models: no `temperature` but the default, no
`max_tokens` (they want `max_completion_tokens`), sampled judgements, and runs that fail."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from metrics import crscore
from metrics.backends.mllm import MLLMClient, MLLMConfig, MLLMError, refused_param

FRAMES = [np.full((64, 64, 3), 30 * k, np.uint8) for k in range(8)]

OPENAI_TEMPERATURE = {"error": {
    "message": "Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) "
               "value is supported.", "type": "invalid_request_error", "param": "temperature",
    "code": "unsupported_value"}}
OPENAI_MAX_TOKENS = {"error": {
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
               "'max_completion_tokens' instead.", "type": "invalid_request_error", "param": "max_tokens",
    "code": "unsupported_parameter"}}


class ReasoningEndpoint:
    """A chat-completions server on 127.0.0.1 that answers 400 to the parameters in `refuses` (OpenAI's error
    object, or plain prose with `prose=True`) and otherwise replies with `replies` in turn."""

    def __init__(self, replies, refuses=("temperature", "max_tokens"), prose=False):
        self.replies, self.requests = list(replies), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                bad = [k for k in refuses if k in body]
                if bad:
                    status = 400
                    err = OPENAI_TEMPERATURE if bad[0] == "temperature" else OPENAI_MAX_TOKENS
                    payload = (err["error"]["message"] if prose else json.dumps(err)).encode()
                else:
                    status = 200
                    answered = sum(1 for r in outer.requests if not any(k in r for k in refuses))
                    text = outer.replies[min(answered, len(outer.replies)) - 1]
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def endpoint(request):
    made = []

    def make(*a, **k):
        made.append(ReasoningEndpoint(*a, **k))
        return made[-1]
    yield make
    for e in made:
        e.close()


def client(url, model="reasoner", **kw):
    return MLLMClient(MLLMConfig(base_url=url, model=model, retries=0, backoff=0.01, **kw))


def test_sampling_is_the_endpoints_default_unless_asked(endpoint):
    ep = endpoint(["3"], refuses=())
    c = client(ep.url, model="plain")
    c.chat("hi", seed=4)
    assert "temperature" not in ep.requests[0] and ep.requests[0]["seed"] == 4
    assert ep.requests[0]["max_tokens"] == 512
    c.chat("hi", temperature=0.2)
    assert ep.requests[1]["temperature"] == 0.2


def test_refused_parameters_are_left_out_and_remembered(endpoint):
    ep = endpoint(["4"])
    c = client(ep.url, model="gpt-like-1")
    assert c.chat("hi", temperature=0.0, max_tokens=77) == "4"
    # 400 for temperature, 400 for max_tokens, then the request that works
    assert [sorted(k for k in r if k in ("temperature", "max_tokens", "max_completion_tokens"))
            for r in ep.requests] == [["max_tokens", "temperature"], ["max_tokens"], ["max_completion_tokens"]]
    assert ep.requests[-1]["max_completion_tokens"] == 77
    ep.requests.clear()
    assert c.score("rate", FRAMES[:1]) == 4
    assert len(ep.requests) == 1 and "max_tokens" not in ep.requests[0]   # learnt: no second round of 400s


def test_prose_errors_are_understood_too(endpoint):
    ep = endpoint(["2"], prose=True)
    assert client(ep.url, model="gpt-like-2").chat("hi", temperature=0.0) == "2"
    assert len(ep.requests) == 3


def test_a_400_about_something_else_still_fails_at_once():
    body = {"temperature": 0, "max_tokens": 5}
    assert refused_param('{"error": {"message": "Invalid image URL", "param": "messages"}}', body) is None
    assert refused_param("context length exceeded: max_tokens too large", body) is None  # no "unsupported"
    assert refused_param(json.dumps(OPENAI_MAX_TOKENS), body) == "max_tokens"
    assert refused_param(json.dumps(OPENAI_TEMPERATURE), {"max_tokens": 5}) is None      # not ours to drop


def test_score_asks_for_the_bare_score(endpoint):
    ep = endpoint(["5"], refuses=())
    assert client(ep.url, model="plain-2").score("Rate it.", []) == 5
    text = ep.requests[0]["messages"][0]["content"][0]["text"]
    assert text.startswith("Rate it.") and "score only" in text and "JSON" not in text


def test_crscore_samples_three_judgements_from_a_reasoning_endpoint(endpoint):
    ep = endpoint(["2", "4", "5"])
    out = crscore.compute(FRAMES, crscore.CRConfig(), mllm=client(ep.url, model="gpt-like-3"))
    assert out.status == "ok" and out.reason is None
    assert out.value == pytest.approx(((2 + 4 + 5) / 3 - 1) / 4, abs=1e-4)
    judged = [r for r in ep.requests if "max_tokens" not in r and "temperature" not in r]
    assert [r["seed"] for r in judged] == [0, 1, 2]
    assert all(len(r["messages"][0]["content"]) == 1 + len(FRAMES) for r in judged)
    assert out.trace["n_ok"] == 3 and [r["score"] for r in out.trace["runs"]] == [2, 4, 5]


def test_crscore_with_a_failed_run_is_partial(endpoint):
    # the second judgement never parses (3 tries), the others do
    ep = endpoint(["1", "no idea", "no idea", "no idea", "3"], refuses=())
    out = crscore.compute(FRAMES, crscore.CRConfig(), mllm=client(ep.url, model="plain-3"))
    assert out.status == "ok" and out.value == pytest.approx(((1 + 3) / 2 - 1) / 4)
    assert out.trace["partial"] is True and out.trace["n_ok"] == 2 and out.trace["n_runs"] == 3
    assert out.reason.startswith("partial: 2 of 3 judgements (seed 1 failed")


def test_crscore_prompt_leaves_identity_and_text_to_their_metrics():
    text = crscore.build_prompt(crscore.CRConfig(), 8, "cola", "the can spins").lower()
    assert "creativity" in text and "rationality" in text and "plausib" in text
    for word in ("legib", "branding", "identity", "text stays"):
        assert word not in text


def test_unsupported_after_leaving_everything_out_is_an_error():
    class Stubborn(MLLMClient):
        def _post(self, body):
            from metrics.backends.mllm import _Refused
            raise _Refused("seed")
    with pytest.raises(MLLMError, match="refused the request's parameters"):
        Stubborn(MLLMConfig(base_url="http://127.0.0.1:9/v1", model="stubborn")).chat("hi")
