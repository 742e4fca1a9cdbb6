"""Attempts that died without writing their cost, found and settled by the next attempt.

A compute attempt normally writes its own `compute_attempt` Ledger row as it ends
(ok, failed, cancelled). A worker killed mid-call writes nothing, yet the machine ran
and the money was spent. So every attempt heartbeats an `AttemptBeat` (which attempt,
when it started, when it beat), and the next attempt — before it beats or dispatches
anything — writes a row for each earlier attempt, under the very key that attempt
would have used (`<workflow>/<run>/<activity>/attempt-<n>`):

- an attempt that did write its row: the key is taken, nothing is written (exactly once);
- the attempt whose beat the server kept: costed for the time until its heartbeat
  stopped (`beat_at - started_at`), a lower bound of what it ran;
- an attempt that never beat: it died before dispatching (beating comes first), so it
  spent nothing: a row with no cost, status `lost`.

Because an attempt settles its predecessors before its first beat, the beat the server
holds always comes from an attempt whose own predecessors are settled; only the
attempts from that one on need a row. On Modal the heartbeat is the call checkpoint
instead, and the retry re-attaches to the same call: that attempt's row carries the
provider's own figure for the whole call (the function's start to end), so the dead
attempts before it get rows without cost, naming the call that bills them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class AttemptBeat(BaseModel):
    """What an attempt heartbeats: enough for the next one to cost it if it dies."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    attempt: int
    started_at: float  # wall clock (epoch seconds): it travels to another worker
    beat_at: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.beat_at - self.started_at)


@dataclass(frozen=True)
class LostAttempt:
    """An earlier attempt that may have died unrecorded, with what it is known to have run."""

    attempt: int
    seconds: float
    reason: str
    call_id: str | None = None


@dataclass(frozen=True)
class AttemptSlot:
    """One of several compute attempts a single activity attempt makes (a sweep chunk's
    items): its own Ledger key and attempt number, since the activity's are shared."""

    key: str
    attempt: int


def attempt_key(workflow_id: str | None, workflow_run_id: str | None, activity_id: str, attempt: int) -> str:
    """The Ledger key of one attempt: the same whoever writes it, so it is written once."""
    return f"{workflow_id}/{workflow_run_id}/{activity_id}/attempt-{attempt}"


def lost_attempts(details: Sequence[Any], attempt: int) -> list[LostAttempt]:
    """The earlier attempts of an activity now on `attempt`, given the heartbeat it inherited."""
    if attempt <= 1:
        return []
    last = details[-1] if details else None
    beat = _beat(last)
    if beat is None or beat.attempt >= attempt:
        call_id = last.get("call_id") if isinstance(last, dict) else None
        reason = (
            f"worker lost; billed by the attempt that re-attached to call {call_id}"
            if isinstance(call_id, str)
            else "worker lost before its first heartbeat; nothing was dispatched"
        )
        call = call_id if isinstance(call_id, str) else None
        return [LostAttempt(n, 0.0, reason, call) for n in range(1, attempt)]
    found = [LostAttempt(beat.attempt, beat.seconds, "worker lost; costed until its heartbeat stopped")]
    found += [
        LostAttempt(n, 0.0, "worker lost before its first heartbeat; nothing was dispatched")
        for n in range(beat.attempt + 1, attempt)
    ]
    return found


def _beat(value: Any) -> AttemptBeat | None:
    if not isinstance(value, dict):
        return None
    try:
        return AttemptBeat.model_validate(value)
    except ValidationError:
        return None
