"""The compute backend contract: run a named function on a JSON payload."""

from __future__ import annotations

from typing import Any, Protocol

from temporalio import activity

from boomerang.errors import BoomerangError
from modal_app.registry import Registry


class ComputeError(BoomerangError):
    """A compute function failed. `permanent` means a retry cannot help."""

    def __init__(self, message: str, *, error_type: str, permanent: bool, traceback: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.permanent = permanent
        self.traceback = traceback


class ComputeTimeoutError(ComputeError):
    """The function ran past its timeout and was stopped."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(
            f"{name} ran past its {timeout_s:g}s timeout and was stopped",
            error_type="Timeout",
            permanent=False,
        )


class ComputeBackend(Protocol):
    @property
    def registry(self) -> Registry:
        """The registry of the functions this backend runs (user modules included)."""
        ...

    async def call(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        timeout_s: float,
        heartbeat_every_s: float | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Run `name` on `payload`; raise `ComputeError` on failure. A backend that
        heartbeats itself does so at least every `heartbeat_every_s`; `tenant` is whom
        the call's in-flight slot is counted against (fairness between tenants)."""
        ...

    async def aclose(self) -> None: ...


def cancel_is_final() -> bool:
    """Whether a cancellation means nobody will come back for the call's result.

    A cancel the workflow asked for, a reset, or an activity the server no longer knows
    are final. A worker shutting down, a heartbeat timeout or a pause are not: Temporal
    will retry the activity and the retry re-attaches, so cancelling would waste the work
    done so far. Outside an activity, a cancelled task is always final.
    """
    if not activity.in_activity():
        return True
    details = activity.cancellation_details()
    return details is not None and (details.cancel_requested or details.reset or details.not_found)
