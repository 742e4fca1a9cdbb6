"""What a run's input must satisfy before it is started, checked in one place.

Every front door (the HTTP API, the CLI, the Python client) starts runs through
`BoomerangClient`, which calls `admit(inp, policy)` first:

    admit(PipelineInput(...), WebhookUrlPolicy.from_settings(settings))   # raises InputRefused

- `webhook_url` must pass the webhook URL policy (`boomerang/webhooks/urls.py`);
- the input must stay well under Temporal's payload limit (2 MB per payload by
  default, with a warning from 512 KB), field by field: a refusal names the field
  and its size, instead of the server's opaque error once it is sent.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from boomerang.errors import BoomerangError
from boomerang.webhooks.urls import WebhookUrlPolicy, WebhookUrlRefused, check_webhook_url

KIB = 1024
# Per field, then the whole input: workflow histories never carry large payloads.
FIELD_LIMITS = {"context": 64 * KIB, "payload": 256 * KIB, "spec": 256 * KIB, "brief": 256 * KIB}
MAX_INPUT_BYTES = 512 * KIB


class InputRefused(BoomerangError, ValueError):  # reads as what happened
    """A run's input that may not be started; `field` names the part at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def admit(inp: BaseModel, policy: WebhookUrlPolicy) -> None:
    """Raise `InputRefused` when `inp` (a PipelineInput or TaskInput) may not start."""
    url = getattr(inp, "webhook_url", None)
    if url is not None:
        try:
            check_webhook_url(str(url), policy)
        except WebhookUrlRefused as exc:
            raise InputRefused(str(exc), field=exc.field) from None
    dumped = inp.model_dump(mode="json")
    sizes = {name: _size(value) for name, value in dumped.items()}
    for name, limit in FIELD_LIMITS.items():
        if sizes.get(name, 0) > limit:
            raise InputRefused(
                f"{name}: {sizes[name]:,} bytes as JSON, more than the {limit:,} allowed "
                "(keep large data in the artifact store and pass a reference)",
                field=name,
            )
    total = sum(sizes.values())
    if total > MAX_INPUT_BYTES:
        largest = max(sizes, key=lambda n: sizes[n])
        raise InputRefused(
            f"the input is {total:,} bytes as JSON, more than the {MAX_INPUT_BYTES:,} allowed; "
            f"its largest field is {largest} ({sizes[largest]:,} bytes)",
            field=largest,
        )
