"""Tests of the compute layer: LLM client, specialists, numerics, pricing, the Modal app.

`ChatServer` is a real HTTP server on 127.0.0.1 speaking the chat-completions
protocol from a script of replies, so the client is tested over a socket, not a mock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modal_app.contracts import TaskRequest
from tests.http_server import serving


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)


def completion(text: str = "hello", *, prompt_tokens: int = 12, completion_tokens: int = 5) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": "openai/gpt-4.1-nano",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ChatServer:
    """Answers POSTs with the scripted replies in order; records what it was sent."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                server.seen.append(
                    Seen(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(self.rfile.read(length)),
                    )
                )
                reply = (
                    server.replies.pop(0)
                    if server.replies
                    else Reply(500, {"error": {"message": "script ran out"}})
                )
                raw = reply.body if isinstance(reply.body, str | bytes) else json.dumps(reply.body)
                data = raw.encode() if isinstance(raw, str) else raw
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1"

    @contextmanager
    def running(self) -> Iterator[ChatServer]:
        with serving(self.httpd):
            yield self


def task(task_type: str, boomer_ang_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A JSON `TaskRequest`, as a backend sends it to `invoke`."""
    return TaskRequest(
        run_id="run-1", task_id="task-1", boomer_ang_id=boomer_ang_id, task_type=task_type, payload=payload
    ).model_dump(mode="json")
