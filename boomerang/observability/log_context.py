"""Every log line an activity writes names its run, workflow, activity, attempt and tenant.

    Worker(client, ..., interceptors=[LogContextInterceptor()])

The interceptor binds those fields in structlog's context variables for the length of
each activity attempt, so structlog lines and (through `boomerang.logs`) standard-library
lines from inside it carry them without the activity passing them along. The tenant and
run id come from the activity's input when it says (an `attribution`, or its own
`tenant`/`run_id` fields); otherwise the run id is the workflow id. Workflow lines get
the same names from the `extra` that `workflow.logger` attaches (`boomerang.logs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)


class LogContextInterceptor(Interceptor):
    """Binds run_id, workflow, activity, attempt and tenant around each activity attempt."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindingActivityInbound(next)


class _BindingActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with structlog.contextvars.bound_contextvars(**activity_fields(input.args)):
            return await super().execute_activity(input)


def activity_fields(args: Sequence[Any]) -> dict[str, Any]:
    """The running activity's identifiers; call inside an activity."""
    info = activity.info()
    fields: dict[str, Any] = {
        "run_id": info.workflow_id,
        "workflow": info.workflow_type,
        "activity": info.activity_type,
        "attempt": info.attempt,
    }
    for arg in args[:1]:  # one input model per activity (STYLE.md)
        who = getattr(arg, "attribution", arg)
        for name in ("run_id", "tenant"):
            value = getattr(who, name, None)
            if isinstance(value, str) and value:
                fields[name] = value
    return fields
