"""What stands between a hostile request body and a 5xx: size, JSON, and bounded errors.

    install_hardening(app, max_body_bytes=settings.api_max_body_bytes)

- **Size.** A body over `max_body_bytes` (1 MiB by default) is refused with 413
  before it is read in full: by its `content-length`, or as it streams in.
- **JSON.** A JSON body must be what RFC 8259 allows and what can be stored and
  sent on: `NaN`, `Infinity`, `-Infinity`, numbers that overflow to infinity
  (`1e400`), integers of more than 4,300 digits, lone surrogates (`"a\\ud800b"`)
  and bytes that are not UTF-8 are a 422 naming the problem, never a 500.
- **Errors echo little.** A 422 names each problem with its location and message
  and shows at most `ECHO_CHARS` characters of the offending input, so a 100 MB
  brief is never sent back.
- **Input refused** (`boomerang.admission.InputRefused`: a webhook URL to an
  internal address, a field over its size limit) is a 422 naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from boomerang.admission import InputRefused
from boomerang.errors import BoomerangError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
ECHO_CHARS = 200
MAX_ERRORS = 20


class BodyRefused(BoomerangError):  # reads as what happened
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _no_constant(name: str) -> Any:
    raise BodyRefused(422, f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyRefused(422, f"the number {text[:40]} is too large")
    return value


def _check_text(value: object) -> None:
    """Walk the parsed body; a string that cannot be UTF-8 (a lone surrogate) is refused."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BodyRefused(422, "a string holds a lone surrogate (\\ud800-\\udfff)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_json(body: bytes) -> None:
    """Raise `BodyRefused(422, …)` unless `body` is JSON that can be stored and sent on."""
    try:
        parsed = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except BodyRefused:
        raise
    except RecursionError:
        raise BodyRefused(422, "the JSON body is nested too deeply") from None
    except ValueError as exc:  # bad JSON, bad UTF-8, an integer too long to convert
        raise BodyRefused(422, f"the body is not valid JSON: {str(exc)[:ECHO_CHARS]}") from None
    _check_text(parsed)


class BodyGuard:
    """ASGI middleware: the size limit and the JSON checks, before any route sees the body."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            body = await self._read(headers, receive)
            if "json" in headers.get("content-type", "") and body.strip():
                check_json(body)
        except BodyRefused as exc:
            await _refuse(scope, receive, send, exc)
            return
        await self.app(scope, _replay(body), send)

    async def _read(self, headers: dict[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyRefused(413, f"the body is larger than {self.max_body_bytes:,} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyRefused(413, f"the body is larger than {self.max_body_bytes:,} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: BodyRefused) -> None:
    detail: Any = str(exc)
    if exc.status == 422:
        detail = [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]
    response = JSONResponse({"detail": detail}, status_code=exc.status)
    await response(scope, receive, send)


def _bounded(value: Any) -> Any:
    """An echo of an input that can always be encoded and never grows with the input."""
    if isinstance(value, str | bytes):
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        text = text.encode("utf-8", "replace").decode("utf-8")
        return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}… ({len(text):,} characters)"
    if isinstance(value, bool | int | None):
        return value if not isinstance(value, int) or abs(value) < 10**18 else _bounded(str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _bounded(json.dumps(value, default=str, ensure_ascii=True)[: ECHO_CHARS + 1])


def _bounded_error(error: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "loc": [p if isinstance(p, int) else _bounded(str(p)) for p in error.get("loc", ())][:20],
        "msg": _bounded(str(error.get("msg", ""))),
        "type": str(error.get("type", "value_error")),
    }
    if "input" in error:
        out["input"] = _bounded(error["input"])
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # registered for this type only
    errors = list(exc.errors())
    detail = [_bounded_error(dict(e)) for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        detail.append({"loc": ["body"], "msg": f"{len(errors) - MAX_ERRORS} more errors", "type": "too_many"})
    return JSONResponse({"detail": detail}, status_code=422)


async def _input_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputRefused)  # registered for this type only
    detail = [{"loc": ["body", exc.field], "msg": _bounded(str(exc)), "type": "input_refused"}]
    return JSONResponse({"detail": detail}, status_code=422)


def install_hardening(app: FastAPI, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Add the body guard and the bounded 422 handlers; documents 413 on every route with a body."""
    app.add_middleware(BodyGuard, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputRefused, _input_refused)
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault(
                        "413", {"description": f"The body is larger than {max_body_bytes:,} bytes."}
                    )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
