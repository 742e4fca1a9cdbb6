"""`AnchorLedger`: one anchoring, started by a Temporal Schedule on a cadence.

    await ensure_anchor_schedule(client, task_queue="boomerang", every=timedelta(hours=1))

The schedule (id `boomerang-ledger-anchor`) starts this workflow; it calls the
`anchor_ledger` activity, which writes the heads to a file outside the database.
Overlapping runs are skipped: one anchoring at a time is enough.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.anchoring import AnchorActivities, AnchorResult

ANCHOR_WORKFLOW = "AnchorLedger"
ANCHOR_SCHEDULE_ID = "boomerang-ledger-anchor"


@workflow.defn(name=ANCHOR_WORKFLOW)
class AnchorLedger:
    @workflow.run
    async def run(self) -> AnchorResult:
        return await workflow.execute_activity_method(
            AnchorActivities.anchor_ledger,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )


async def ensure_anchor_schedule(
    client: Client, *, task_queue: str, every: timedelta, schedule_id: str = ANCHOR_SCHEDULE_ID
) -> None:
    """Create the anchoring schedule, or set its cadence if it exists."""
    if every < timedelta(seconds=1):
        raise ValueError(f"every must be at least a second, got {every}")
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(ANCHOR_WORKFLOW, id=f"{schedule_id}-run", task_queue=task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(update)
