"""Secrets never reach a log line."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from boomerang.logs import REDACTED, redact_secrets, scrub


def test_secret_keys_and_embedded_credentials_are_redacted() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "connecting to postgresql://writer:hunter2@db:5432/boomerang",
            "api_key": "sk-live-123",
            "headers": {"Authorization": "Bearer abc.def", "accept": "json"},
            "note": "sent bearer tok_9f8e7d",
        },
    )
    assert event["event"] == f"connecting to postgresql://writer:{REDACTED}@db:5432/boomerang"
    assert event["api_key"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert event["note"] == f"sent bearer {REDACTED}"


def test_processor_runs_in_the_configured_chain() -> None:
    with capture_logs(processors=[redact_secrets]) as logs:
        structlog.get_logger().info("login", password="pw", user="alice")
    assert logs == [{"event": "login", "password": REDACTED, "user": "alice", "log_level": "info"}]


def test_scrub_leaves_plain_values_alone() -> None:
    assert scrub({"n": 1, "items": ["a", "b"]}) == {"n": 1, "items": ["a", "b"]}
