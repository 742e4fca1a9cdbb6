"""The chat client against a real local HTTP server speaking the chat-completions protocol."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from structlog.testing import capture_logs

from modal_app.functions import is_permanent
from modal_app.llm import (
    ChatMessage,
    HttpChatClient,
    LLMError,
    LLMPermanentError,
    OfflineChatClient,
    chat_client_from_env,
    estimate_tokens,
    retry_after_seconds,
)
from tests.compute import ChatServer, Reply, completion

KEY = "sk-test-do-not-log-4242"
HELLO = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Say hello.")]


class Sleeps:
    """Stands in for time.sleep: records each wait instead of taking it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(server: ChatServer, sleeps: Sleeps, **options: object) -> HttpChatClient:
    return HttpChatClient(
        api_key=KEY,
        base_url=server.base_url,
        provider="test-gateway",
        sleep=sleeps,
        **options,  # type: ignore[arg-type]
    )


def test_success_returns_text_and_usage_and_sends_the_key() -> None:
    sleeps = Sleeps()
    with ChatServer(
        [Reply(200, completion("Hello!", prompt_tokens=21, completion_tokens=3))]
    ).running() as srv:
        reply = client(srv, sleeps).complete(HELLO, model="gpt-4.1-nano", max_tokens=50)
    assert reply.text == "Hello!"
    assert reply.usage.model_dump() == {
        "model": "gpt-4.1-nano",
        "provider": "test-gateway",
        "input_tokens": 21,
        "output_tokens": 3,
    }
    (seen,) = srv.seen
    assert seen.path == "/api/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    # The price-table name goes out as OpenRouter's slug.
    assert seen.body["model"] == "openai/gpt-4.1-nano" and seen.body["max_tokens"] == 50
    assert seen.body["messages"][1] == {"role": "user", "content": "Say hello."}
    assert sleeps.waits == []


def test_429_waits_what_retry_after_says_then_succeeds() -> None:
    sleeps = Sleeps()
    replies = [
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}),
        Reply(200, completion()),
    ]
    with ChatServer(replies).running() as srv:
        reply = client(srv, sleeps).complete(HELLO, model="gpt-4.1-nano")
    assert reply.text == "hello" and len(srv.seen) == 2
    assert sleeps.waits == [7.0]


def test_retry_after_as_an_http_date() -> None:
    sleeps = Sleeps()
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    replies = [Reply(429, {"error": {"message": "busy"}}, {"Retry-After": when}), Reply(200, completion())]
    with ChatServer(replies).running() as srv:
        client(srv, sleeps).complete(HELLO, model="gpt-4.1-nano")
    (wait,) = sleeps.waits
    assert 27 <= wait <= 30


def test_retry_after_is_capped() -> None:
    sleeps = Sleeps()
    replies = [Reply(429, {}, {"Retry-After": "3600"}), Reply(200, completion())]
    with ChatServer(replies).running() as srv:
        client(srv, sleeps, max_wait_s=60).complete(HELLO, model="gpt-4.1-nano")
    assert sleeps.waits == [60.0]


def test_500_backs_off_then_succeeds() -> None:
    sleeps = Sleeps()
    replies = [Reply(500, {"error": {"message": "upstream died"}}), Reply(200, completion("ok"))]
    with ChatServer(replies).running() as srv:
        reply = client(srv, sleeps, backoff_s=0.5).complete(HELLO, model="gpt-4.1-nano")
    assert reply.text == "ok"
    assert sleeps.waits == [0.5]


def test_exhausted_retries_raise_a_retryable_error() -> None:
    sleeps = Sleeps()
    replies = [Reply(503, {"error": {"message": "overloaded"}}) for _ in range(4)]
    with (
        ChatServer(replies).running() as srv,
        pytest.raises(LLMError, match=r"HTTP 503: overloaded \(gave up after 4 attempts\)") as caught,
    ):
        client(srv, sleeps, max_attempts=4, backoff_s=0.5).complete(HELLO, model="gpt-4.1-nano")
    assert len(srv.seen) == 4
    assert sleeps.waits == [0.5, 1.0, 2.0]
    assert caught.value.status == 503
    assert not isinstance(caught.value, LLMPermanentError) and not is_permanent(caught.value)


def test_malformed_body_is_a_clear_error() -> None:
    sleeps = Sleeps()
    with (
        ChatServer([Reply(200, "<html>gateway hiccup</html>")]).running() as srv,
        pytest.raises(LLMError, match=r"malformed reply for gpt-4.1-nano.*gateway hiccup"),
    ):
        client(srv, sleeps).complete(HELLO, model="gpt-4.1-nano")
    with (
        ChatServer([Reply(200, {"choices": []})]).running() as srv,
        pytest.raises(LLMError, match="malformed reply"),
    ):
        client(srv, sleeps).complete(HELLO, model="gpt-4.1-nano")


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_refused_requests_are_permanent_and_not_retried(status: int) -> None:
    sleeps = Sleeps()
    with (
        ChatServer([Reply(status, {"error": {"message": "nope"}})]).running() as srv,
        pytest.raises(LLMPermanentError, match=f"HTTP {status}: nope") as caught,
    ):
        client(srv, sleeps).complete(HELLO, model="gpt-4.1-nano")
    assert len(srv.seen) == 1 and sleeps.waits == []
    assert caught.value.status == status and is_permanent(caught.value)
    if status == 401:
        assert "check the API key" in str(caught.value)


def test_unreachable_server_is_retried_then_reported() -> None:
    sleeps = Sleeps()
    srv = ChatServer([])
    url = srv.base_url
    srv.httpd.server_close()  # nothing listens on that port now
    dead = HttpChatClient(api_key=KEY, base_url=url, sleep=sleeps, max_attempts=2, timeout_s=5)
    with pytest.raises(LLMError, match=r"unreachable.*gave up after 2 attempts"):
        dead.complete(HELLO, model="gpt-4.1-nano")
    assert sleeps.waits == [0.5]


def test_the_key_never_reaches_logs_or_errors() -> None:
    sleeps = Sleeps()
    # A proxy that echoes the Authorization header into its error body.
    echo = {"error": {"message": f"bad header Bearer {KEY}"}}
    replies = [Reply(429, echo, {"Retry-After": "1"}), Reply(200, completion()), Reply(401, echo)]
    with capture_logs() as logs, ChatServer(replies).running() as srv:
        chat = client(srv, sleeps)
        chat.complete(HELLO, model="gpt-4.1-nano")
        with pytest.raises(LLMPermanentError) as caught:
            chat.complete(HELLO, model="gpt-4.1-nano")
    assert any(entry["event"] == "llm.retry" for entry in logs)
    assert KEY not in repr(logs)
    assert KEY not in str(caught.value) and "[redacted]" in str(caught.value)
    assert KEY not in repr(chat.__dict__.get("provider"))


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds("Sun, 01 Nov 2026 12:00:42 GMT", now=now) == 42.0
    assert retry_after_seconds("Sun, 01 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_offline_provider_is_deterministic_and_named() -> None:
    offline = OfflineChatClient()
    first = offline.complete(HELLO, model="gpt-4.1-nano")
    again = offline.complete(HELLO, model="claude-3.5-haiku")
    assert first == again
    assert first.usage.provider == "offline" and first.usage.model == "offline-echo"
    assert first.usage.input_tokens == estimate_tokens("Be brief.") + estimate_tokens("Say hello.")
    assert first.usage.output_tokens == estimate_tokens(first.text)
    assert first.text.startswith("[offline-echo]") and "- Say hello." in first.text


def test_offline_provider_answers_code_requests_with_a_code_block() -> None:
    asks = [
        ChatMessage(role="system", content="Answer with one fenced code block."),
        ChatMessage(role="user", content="Sort a list. Keep it stable."),
    ]
    reply = OfflineChatClient().complete(asks, model="gpt-4.1-nano").text
    assert "```\n# offline-echo" in reply and "# Sort a list." in reply and reply.endswith("```")


def test_client_from_env() -> None:
    assert isinstance(chat_client_from_env({}), OfflineChatClient)
    assert chat_client_from_env({"OPENROUTER_API_KEY": KEY}).provider == "openrouter"
    custom = chat_client_from_env(
        {"BOOMERANG_LLM_API_KEY": KEY, "BOOMERANG_LLM_BASE_URL": "http://llm.internal:8000/v1"}
    )
    assert isinstance(custom, HttpChatClient) and custom.provider == "llm.internal"
    assert KEY not in repr(custom)
