"""Chat completions over an OpenAI-compatible API (OpenRouter by default), with usage.

    client = chat_client_from_env()          # offline when no key is set
    reply = client.complete([ChatMessage(role="user", content="hi")], model="gpt-4.1-nano")
    reply.text, reply.usage                  # usage feeds the price table

429 and 5xx are retried a bounded number of times, waiting what `Retry-After` asks
(seconds or an HTTP date) or else an exponential backoff; the sleep function is
injectable so tests need no wall clock. 400/401/403/404 are permanent. With no API
key, `OfflineChatClient` answers deterministically from the prompt and records
`provider="offline"`, so every specialist still runs (and costs 0) without a network.
The key is sent in the Authorization header and never logged.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx
import structlog
from pydantic import BaseModel, ConfigDict

from modal_app import text
from modal_app.contracts import PermanentError, TokenUsage
from modal_app.errors import BoomerangError

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
OFFLINE_PROVIDER = "offline"
OFFLINE_MODEL = "offline-echo"
# Price-table names -> OpenRouter slugs; other names are sent as given.
OPENROUTER_SLUGS = {
    "gpt-4.1-nano": "openai/gpt-4.1-nano",
    "claude-3.5-haiku": "anthropic/claude-3.5-haiku",
    "deepseek-v3.2": "deepseek/deepseek-v3.2",
}
_PERMANENT_STATUS = frozenset({400, 401, 403, 404, 422})

log = structlog.get_logger(__name__)


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ChatReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    usage: TokenUsage


class LLMError(BoomerangError):
    """The chat API did not give a usable answer; a later retry may."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LLMPermanentError(LLMError, PermanentError):
    """The request itself was refused (bad request, bad key, no such model)."""


class ChatClient(Protocol):
    provider: str

    def complete(
        self, messages: Sequence[ChatMessage], *, model: str, max_tokens: int = 1024
    ) -> ChatReply: ...


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text: good enough for an offline estimate."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpChatClient:
    """Chat completions over httpx, retrying 429/5xx with bounded, honest waits."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        provider: str = "openrouter",
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        max_wait_s: float = 60.0,
        timeout_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty; use OfflineChatClient when there is none")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.provider = provider
        self._key = api_key
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_wait_s = max_wait_s
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._transport = transport

    def complete(self, messages: Sequence[ChatMessage], *, model: str, max_tokens: int = 1024) -> ChatReply:
        body = {
            "model": OPENROUTER_SLUGS.get(model, model),
            "messages": [m.model_dump() for m in messages],
            "max_tokens": max_tokens,
        }
        headers = {"Authorization": f"Bearer {self._key}"}
        with httpx.Client(timeout=self._timeout_s, transport=self._transport) as http:
            for attempt in range(1, self._max_attempts + 1):
                try:
                    response = http.post(self._url, json=body, headers=headers)
                except httpx.TransportError as exc:
                    failure: LLMError = LLMError(f"chat API unreachable: {type(exc).__name__}: {exc}")
                    wait = self._backoff(attempt)
                else:
                    if response.status_code < 300:
                        return self._parse(response, model)
                    failure = self._http_error(response, model)
                    if isinstance(failure, LLMPermanentError):
                        raise failure
                    hinted = retry_after_seconds(response.headers.get("retry-after"))
                    wait = hinted if hinted is not None else self._backoff(attempt)
                if attempt == self._max_attempts:
                    raise LLMError(
                        f"{failure} (gave up after {attempt} attempts)", status=failure.status
                    ) from failure
                wait = min(wait, self._max_wait_s)
                log.warning("llm.retry", model=model, attempt=attempt, wait_s=wait, error=str(failure))
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _redact(self, text: str) -> str:
        # A misbehaving proxy may echo the request, header included, into its error body.
        return text.replace(self._key, "[redacted]")

    def _backoff(self, attempt: int) -> float:
        return self._backoff_s * 2.0 ** (attempt - 1)

    def _http_error(self, response: httpx.Response, model: str) -> LLMError:
        status = response.status_code
        detail = self._redact(_error_detail(response))
        if status in _PERMANENT_STATUS:
            hint = " (check the API key)" if status in (401, 403) else ""
            return LLMPermanentError(
                f"chat API refused the request for {model}: HTTP {status}: {detail}{hint}", status=status
            )
        return LLMError(f"chat API error for {model}: HTTP {status}: {detail}", status=status)

    def _parse(self, response: httpx.Response, model: str) -> ChatReply:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
            usage = data["usage"]
            tokens_in, tokens_out = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"chat API sent a malformed reply for {model} (no choices[0].message.content "
                f"or usage): {self._redact(response.text[:200])!r}",
                status=response.status_code,
            ) from exc
        if not isinstance(text, str):
            raise LLMError(f"chat API reply for {model} has non-text content", status=response.status_code)
        usage_row = TokenUsage(
            model=model, provider=self.provider, input_tokens=tokens_in, output_tokens=tokens_out
        )
        return ChatReply(text=text, usage=usage_row)


def _error_detail(response: httpx.Response) -> str:
    try:
        data: Any = response.json()
        message = data.get("error", {}).get("message") if isinstance(data, dict) else None
    except ValueError:
        message = None
    return str(message or response.text[:200] or response.reason_phrase)


class OfflineChatClient:
    """No network, no key: a deterministic echo of the request, costed at 0.

    It summarises the last user message (key terms, its sentences as bullets), and
    answers with one fenced code block when the system prompt asks for one, so the
    specialists' parsers see the shape a real model would give them.
    """

    provider = OFFLINE_PROVIDER

    def complete(
        self, messages: Sequence[ChatMessage], *, model: str = OFFLINE_MODEL, max_tokens: int = 1024
    ) -> ChatReply:
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        system = " ".join(m.content for m in messages if m.role == "system")
        text = _offline_answer(prompt, wants_code="fenced code block" in system)
        text = text[: max_tokens * 4]
        usage = TokenUsage(
            model=OFFLINE_MODEL,
            provider=OFFLINE_PROVIDER,
            input_tokens=sum(estimate_tokens(m.content) for m in messages),
            output_tokens=estimate_tokens(text),
        )
        return ChatReply(text=text, usage=usage)


def _offline_answer(prompt: str, *, wants_code: bool) -> str:
    # The prompt's own sentences, list markers dropped, stand in for the model's points.
    sentences = [re.sub(r"^(?:[-*]|\d+[.)])\s+", "", s) for s in text.sentences(prompt)][:8]
    lines = [
        "[offline-echo] No language model was called (no API key is set).",
        f"Key terms: {', '.join(text.keywords(prompt)) or '(none)'}",
        *[f"- {s}" for s in sentences],
    ]
    if wants_code:
        commented = "\n".join(f"# {s}" for s in sentences) or "# (empty request)"
        lines += ["```", "# offline-echo: a model would write the code for this request:", commented, "```"]
    return "\n".join(lines)


def chat_client_from_env(env: Mapping[str, str] | None = None) -> ChatClient:
    """The HTTP client when a key is set (`OPENROUTER_API_KEY` or `BOOMERANG_LLM_API_KEY`).

    Otherwise the offline client. `BOOMERANG_LLM_BASE_URL` points at any
    OpenAI-compatible endpoint. Read here, in the compute container, because that is
    where Modal's secrets arrive as environment variables.
    """
    env = os.environ if env is None else env
    key = env.get("BOOMERANG_LLM_API_KEY") or env.get("OPENROUTER_API_KEY") or ""
    if not key:
        return OfflineChatClient()
    base_url = env.get("BOOMERANG_LLM_BASE_URL") or DEFAULT_BASE_URL
    provider = "openrouter" if "openrouter.ai" in base_url else httpx.URL(base_url).host or "custom"
    return HttpChatClient(api_key=key, base_url=base_url, provider=provider)
