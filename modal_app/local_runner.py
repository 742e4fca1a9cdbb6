"""The loop a local compute process runs: `python -m modal_app.local_runner`.

Reads one JSON request a line on stdin (`{"name": ..., "payload": ...}`) and answers
one JSON line on stdout. The local backend starts it as a separate process, so a
function that overruns its timeout or is cancelled can be stopped by killing the
process, which a thread could never guarantee.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any, TextIO

from modal_app.registry import Registry, load_registry, modules_from_env


def handle(registry: Registry, line: str) -> dict[str, Any]:
    """One request line -> one reply: `Registry.call`'s `{"ok": ...}` / `{"error": ...}`."""
    try:
        request = json.loads(line)
        name, payload = request["name"], request["payload"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return {"error": {"type": type(exc).__name__, "message": f"malformed request: {exc}",
                          "permanent": True, "traceback": ""}}  # fmt: skip
    return registry.call(name, payload)


def serve(registry: Registry, requests: TextIO, replies: TextIO) -> None:
    for line in requests:
        replies.write(json.dumps(handle(registry, line)) + "\n")
        replies.flush()


if __name__ == "__main__":
    # The parent backend owns this process's lifetime (it kills it on timeout or
    # cancellation); a Ctrl-C meant for the parent must not tear it down mid-reply.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    protocol_out = sys.stdout
    # Whatever a function prints goes to stderr, never into the reply stream.
    sys.stdout = sys.stderr
    # The same registry the worker built: its user modules come in the environment.
    serve(load_registry(modules_from_env()), sys.stdin, protocol_out)
