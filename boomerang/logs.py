"""structlog set-up with a processor that keeps secrets out of every log line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any

import structlog

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(r"(token|secret|password|passwd|api[_-]?key|authorization|dsn|database_url)", re.I)
# Credentials inside URLs (postgresql://user:pass@host) and bearer tokens in free text.
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)([^@\s]+)(@)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _BEARER.sub(r"\1" + REDACTED, _URL_PASSWORD.sub(r"\1" + REDACTED + r"\3", value))
    if isinstance(value, Mapping):
        return {k: REDACTED if _SECRET_KEYS.search(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = REDACTED if _SECRET_KEYS.search(key) else scrub(event_dict[key])
    return event_dict


# What temporalio's workflow.logger and activity.logger attach to a record's `extra`.
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")
_TEMPORAL_NAMES = {"workflow_id": "run_id", "workflow_type": "workflow", "activity_type": "activity",
                   "attempt": "attempt"}  # fmt: skip


def temporal_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A standard-library record from Temporal's loggers names its run, workflow, activity
    and attempt with the same keys as the activity context (which wins where both say)."""
    record = event_dict.get("_record")
    for extra in _TEMPORAL_EXTRAS:
        info = getattr(record, extra, None)
        if isinstance(info, Mapping):
            for key, name in _TEMPORAL_NAMES.items():
                if key in info:
                    event_dict.setdefault(name, info[key])
    return event_dict


def stdlib_formatter(*, json: bool) -> logging.Formatter:
    """How a standard-library record is written: the same fields, redaction and renderer as structlog's."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    tracebacks: list[Any] = [structlog.processors.format_exc_info] if json else []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Inside an activity: run_id, activity, attempt, tenant (observability.log_context).
            structlog.contextvars.merge_contextvars,
            temporal_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tracebacks,
            redact_secrets,
            renderer,
        ],
    )


def configure_logging(*, level: str = "INFO", json: bool = False) -> None:
    """One format for every line the process writes, secrets redacted in each.

    structlog's own lines, and through a root handler every library that logs with
    `logging` (the Temporal SDK, its Rust core once forwarded, uvicorn, psycopg's
    pool, warnings). With `json`, uncaught exceptions are one JSON line too, and the
    default Temporal runtime forwards core logs instead of printing them in colour.
    """
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    numeric = logging.getLevelNamesMapping()[level.upper()]
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    # Tracebacks become a string field in JSON; the console renderer prints them itself.
    tracebacks: list[Any] = [structlog.processors.format_exc_info] if json else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            *tracebacks,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(json=json))
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)
    if json:
        sys.excepthook = _log_uncaught
        from boomerang.observability.temporal_runtime import forward_core_logs_by_default

        forward_core_logs_by_default()


_OURS = "_boomerang_handler"


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("boomerang").critical("uncaught exception", exc_info=(kind, exc, tb))
