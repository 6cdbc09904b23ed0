"""A client for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, OpenAI, ...).

Configuration, first found wins: arguments; environment ADVFX_MLLM_BASE_URL / ADVFX_MLLM_MODEL /
ADVFX_MLLM_API_KEY (also ADVFX_MLLM_TIMEOUT, ADVFX_MLLM_RETRIES); a workspace file `<workspace>/mllm.json`
({"base_url": ..., "model": ..., "api_key": ... or "api_key_env": "NAME", "timeout": s, "retries": n}).
Without a base URL and model, `get_mllm` raises BackendUnavailable: features that need the MLLM say so
and never invent output.

Images go as JPEG data URLs (longest side <= 768). Timeouts, connection errors, 429 (Retry-After
honoured, capped) and 5xx are retried with exponential backoff; other 4xx fail at once, except one that
names a parameter of ours as unsupported (reasoning models such as GPT-5 refuse `max_tokens` and any
non-default `temperature`): the request is sent again without it (`max_tokens` becomes
`max_completion_tokens`), and the endpoint's refusals are remembered for the process. Sampling is the
endpoint's default unless a temperature is asked for. `score` asks for the bare 1-5 score and parses it
strictly: a reply that is only the digit, a JSON object with "score", or an explicit "score: N" / "N/5" /
"N out of 5"; anything else is re-asked, then MLLMError.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._common import BackendUnavailable, as_rgb_uint8, status_record

SCORE_INSTRUCTION = "\n\nReply with the score only: one integer from 1 to 5, nothing else."
# A request parameter an endpoint may refuse, and what replaces it (None: just drop it).
ADAPTABLE = {"temperature": None, "max_tokens": "max_completion_tokens", "seed": None, "top_p": None}
_REFUSED: dict[tuple[str, str], set[str]] = {}  # (endpoint, model) -> parameters refused, learnt once per process


class MLLMError(Exception):
    """The endpoint failed (after retries) or its reply could not be parsed; the message says which."""


class _Refused(Exception):
    """HTTP 400 naming one of our request parameters as unsupported."""

    def __init__(self, param: str) -> None:
        super().__init__(param)
        self.param = param


def refused_param(detail: str, body: dict) -> str | None:
    """The parameter of `body` that a 400 reply says is unsupported, or None. Reads OpenAI's error object
    (`error.param` with code/type/message saying "unsupported") and, for servers that only write prose,
    a message naming one of our parameters next to "unsupported" / "not supported"."""
    sent = [k for k in ADAPTABLE if k in body]
    try:
        err = json.loads(detail).get("error")
    except (ValueError, AttributeError):
        err = None
    text = detail
    if isinstance(err, dict):
        text = " ".join(str(err.get(k) or "") for k in ("message", "code", "type"))
        if err.get("param") in sent and re.search(r"unsupported|not supported", text, re.I):
            return err["param"]
    if not re.search(r"unsupported|not supported|does not support", text, re.I):
        return None
    named = [k for k in sent if re.search(rf"(?<![\w]){re.escape(k)}(?![\w])", text)]
    return named[0] if len(named) == 1 else None


@dataclass(frozen=True)
class MLLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    connect_timeout: float = 5.0
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 20.0
    parse_retries: int = 2
    max_tokens: int = 512

    @property
    def endpoint(self) -> str:
        b = self.base_url.rstrip("/")
        return b if b.endswith("/chat/completions") else b + "/chat/completions"


def load_config(workspace: str | Path | None = None, **overrides: Any) -> MLLMConfig | None:
    cfg: dict[str, Any] = {}
    if workspace is not None:
        f = Path(workspace) / "mllm.json"
        if f.exists():
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise BackendUnavailable(f"MLLM config {f} is not valid JSON: {exc}") from None
            if data.get("api_key_env"):
                data["api_key"] = os.environ.get(data.pop("api_key_env"))
            cfg.update({k: v for k, v in data.items() if v is not None})
    env = {"base_url": os.environ.get("ADVFX_MLLM_BASE_URL"), "model": os.environ.get("ADVFX_MLLM_MODEL"),
           "api_key": os.environ.get("ADVFX_MLLM_API_KEY"), "timeout": os.environ.get("ADVFX_MLLM_TIMEOUT"),
           "retries": os.environ.get("ADVFX_MLLM_RETRIES")}
    cfg.update({k: v for k, v in env.items() if v})
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if not cfg.get("base_url") or not cfg.get("model"):
        return None
    for k in ("timeout", "connect_timeout", "backoff", "max_backoff"):
        if k in cfg:
            cfg[k] = float(cfg[k])
    for k in ("retries", "parse_retries", "max_tokens"):
        if k in cfg:
            cfg[k] = int(cfg[k])
    known = set(MLLMConfig.__dataclass_fields__)
    return MLLMConfig(**{k: v for k, v in cfg.items() if k in known})


def image_data_url(image: np.ndarray, max_side: int = 768, quality: int = 90) -> str:
    from PIL import Image
    im = Image.fromarray(as_rgb_uint8(image))
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_JSON_OBJ = re.compile(r"\{[^{}]*\}", re.S)
_PATTERNS = [
    re.compile(r"\bscore\b\W{0,4}(?:is|of|=|:)?\s*\**\s*([1-5])(?:\.0+)?\s*\**(?!\s*\.?\d)(?:\s*/\s*5)?", re.I),
    re.compile(r"(?<![\d.])([1-5])(?:\.0+)?\s*/\s*5(?!\d)"),
    re.compile(r"(?<![\d.])([1-5])\s+out\s+of\s+5\b", re.I),
]


def parse_score(text: str) -> int:
    """The 1-5 integer score in a model reply, or ValueError. Strict: see the module docstring."""
    if text is None:
        raise ValueError("empty reply")
    t = text.strip()
    t = re.sub(r"^```(?:json)?\s*|\s*```$", "", t, flags=re.I).strip()
    cands = [t] + _JSON_OBJ.findall(t)
    for c in cands:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict):
            key = next((k for k in obj if str(k).lower() == "score"), None)
            if key is None:
                continue
            v = obj[key]
            if isinstance(v, bool):
                raise ValueError(f"score is not a number: {v!r}")
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"score is not a number: {v!r}") from None
            if f != int(f) or not 1 <= f <= 5:
                raise ValueError(f"score {v!r} is not an integer from 1 to 5")
            return int(f)
        if isinstance(obj, (int, float)) and not isinstance(obj, bool) and obj == int(obj) and 1 <= obj <= 5:
            return int(obj)
    found = set()
    for p in _PATTERNS:
        found.update(int(m) for m in p.findall(t))
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        raise ValueError(f"ambiguous scores {sorted(found)} in reply")
    raise ValueError(f"no 1-5 score in reply: {t[:120]!r}")


class MLLMClient:
    def __init__(self, config: MLLMConfig) -> None:
        self.config = config
        self.name = f"mllm:{config.model}"
        self.model = config.model
        self.device = "remote"
        self.version = config.base_url

    # -- transport ----------------------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        cfg = self.config
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        last = "no attempt"
        for attempt in range(cfg.retries + 1):
            wait = min(cfg.max_backoff, cfg.backoff * (2 ** attempt))
            req = urllib.request.Request(cfg.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
                    raw = resp.read()
                try:
                    return json.loads(raw.decode("utf-8"))
                except ValueError:
                    last = f"endpoint returned non-JSON body: {raw[:120]!r}"
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:2000].decode("utf-8", "replace")
                if exc.code == 400 and (param := refused_param(detail, body)):
                    raise _Refused(param) from None
                detail = detail[:200]
                if exc.code == 429 or exc.code >= 500:
                    last = f"HTTP {exc.code} {detail}"
                    ra = exc.headers.get("Retry-After") if exc.headers else None
                    if ra:
                        try:
                            wait = min(cfg.max_backoff, max(wait, float(ra)))
                        except ValueError:
                            pass
                else:
                    raise MLLMError(f"{cfg.endpoint} answered HTTP {exc.code}: {detail}") from None
            except (TimeoutError, socket.timeout) as exc:
                last = f"timed out after {cfg.timeout:g} s ({exc})"
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    last = f"timed out after {cfg.timeout:g} s"
                else:
                    last = f"cannot reach the endpoint ({reason})"
            except (ConnectionError, OSError) as exc:
                last = f"connection failed ({exc})"
            if attempt < cfg.retries:
                time.sleep(wait)
        raise MLLMError(f"MLLM request to {cfg.endpoint} failed after {cfg.retries + 1} attempts: {last}")

    # -- API ----------------------------------------------------------------------------------
    def _post_adapting(self, body: dict) -> dict:
        """`_post`, after taking out what this endpoint refused before; a new refusal is learnt and the
        request sent again, once per parameter."""
        refused = _REFUSED.setdefault((self.config.endpoint, self.config.model), set())
        for _ in range(len(ADAPTABLE) + 1):
            body = adapt(body, refused)
            try:
                return self._post(body)
            except _Refused as r:
                if r.param in refused:
                    break
                refused.add(r.param)
        raise MLLMError(f"{self.config.endpoint} refused the request's parameters "
                        f"({', '.join(sorted(refused))}) even after leaving them out")

    def chat(self, prompt: str, images: Sequence[np.ndarray] = (), seed: int = 0, *,
             temperature: float | None = None, max_tokens: int | None = None) -> str:
        """One completion. `temperature=None` samples at the endpoint's default: CRScore's N runs must be N
        judgements, and reasoning models accept no other value."""
        content: list[dict] = [{"type": "text", "text": prompt}]
        for im in images:
            content.append({"type": "image_url", "image_url": {"url": image_data_url(im)}})
        body = {"model": self.config.model, "messages": [{"role": "user", "content": content}],
                "seed": int(seed), "max_tokens": max_tokens or self.config.max_tokens}
        if temperature is not None:
            body["temperature"] = float(temperature)
        resp = self._post_adapting(body)
        try:
            text = resp["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise MLLMError(f"reply is not a chat completion: {json.dumps(resp)[:200]}") from None
        if isinstance(text, list):  # some servers return content parts
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        if not isinstance(text, str) or not text.strip():
            raise MLLMError("the model returned an empty reply")
        return text

    def score(self, prompt: str, images: Sequence[np.ndarray], seed: int = 0) -> int:
        last = ""
        for _ in range(self.config.parse_retries + 1):
            text = self.chat(prompt + SCORE_INSTRUCTION, images, seed=seed)
            try:
                return parse_score(text)
            except ValueError as exc:
                last = f"{exc}"
        raise MLLMError(f"no valid 1-5 score after {self.config.parse_retries + 1} replies: {last}")


def adapt(body: dict, refused: set[str]) -> dict:
    """`body` without the parameters in `refused`, each renamed where the endpoint wants another name."""
    out = dict(body)
    for k in refused:
        if k in out:
            v = out.pop(k)
            if ADAPTABLE.get(k):
                out[ADAPTABLE[k]] = v
    return out


def build_mllm(workspace=None, **overrides) -> MLLMClient:
    cfg = load_config(workspace, **overrides)
    if cfg is None:
        where = f" or {Path(workspace) / 'mllm.json'}" if workspace is not None else ""
        raise BackendUnavailable("no MLLM endpoint configured: set ADVFX_MLLM_BASE_URL and ADVFX_MLLM_MODEL "
                                 f"(and ADVFX_MLLM_API_KEY if needed){where} to an OpenAI-compatible "
                                 "chat-completions server")
    return MLLMClient(cfg)


def mllm_status(workspace=None) -> dict:
    try:
        cfg = load_config(workspace)
    except BackendUnavailable as exc:
        return status_record("mllm", "mllm", available=False, name="mllm", reason=str(exc))
    if cfg is None:
        return status_record("mllm", "mllm", available=False, name="mllm", device="remote",
                             reason="no MLLM endpoint configured: set ADVFX_MLLM_BASE_URL and ADVFX_MLLM_MODEL")
    return status_record("mllm", "mllm", available=True, name=f"mllm:{cfg.model}", weights=None,
                         source=cfg.base_url, device="remote", version=cfg.model,
                         reason=None)
