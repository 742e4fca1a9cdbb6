"""What can go wrong for a caller of Boomerang, one exception per failure."""

from __future__ import annotations

from modal_app.errors import BoomerangError

__all__ = [
    "BoomerangError",
    "CancelRefusedError",
    "CheckpointNotOpenYetError",
    "InvalidDecisionError",
    "RunStuckError",
    "RunUnresponsiveError",
    "TaskFailedError",
    "UnknownRunError",
]


class UnknownRunError(BoomerangError):
    """No run has that id (or it belongs to another tenant)."""


class RunStuckError(BoomerangError):
    """The run cannot make progress: its workflow task fails every time (e.g. an input
    this worker cannot decode). The message gives the failure in one line."""


class RunUnresponsiveError(BoomerangError):
    """The run did not answer in time: no worker is polling its task queue, or all are busy."""


class InvalidDecisionError(BoomerangError):
    """The run refused a decision; the message says why."""


class CheckpointNotOpenYetError(InvalidDecisionError):
    """The checkpoint is the one the running phase opens next: send the decision again
    shortly (`BoomerangClient.decide` does, within its wait)."""


class TaskFailedError(BoomerangError):
    """A specialist task failed or was refused (unknown type, bad payload, over budget)."""


class CancelRefusedError(BoomerangError):
    """The run would not be cancelled (it has finished otherwise); the message says why."""
