"""Steps the pipeline tests share: wait for a checkpoint, decide, approve through."""

from __future__ import annotations

import asyncio

from boomerang.client import BoomerangClient
from boomerang.models.decisions import DecisionInput, DecisionReceipt, PipelineStatus
from boomerang.models.pipeline import Decision
from boomerang.pipelines import startup_validation_pipeline

CHECKPOINTS = [c.name for p in startup_validation_pipeline().phases for c in p.checkpoints]
BRIEF = (
    "We build an API platform for small clinics. Clinics struggle with manual billing "
    "errors that waste hours. We think they would pay for automation that saves time."
)


async def wait_for(
    client: BoomerangClient, run_id: str, checkpoint: str, *, timeout_s: float = 30
) -> PipelineStatus:
    """Poll the `status` query until `checkpoint` is pending (the run's own condition)."""
    async with asyncio.timeout(timeout_s):
        while True:
            status = await client.status(run_id)
            if any(cp.name == checkpoint for cp in status.pending):
                return status
            await asyncio.sleep(0.02)


async def decide(
    client: BoomerangClient,
    run_id: str,
    checkpoint: str,
    decision: Decision = Decision.APPROVE,
    **kw: object,
) -> DecisionReceipt:
    await wait_for(client, run_id, checkpoint)
    return await client.decide(
        run_id,
        DecisionInput.model_validate(
            {"checkpoint": checkpoint, "approver": "alice", "decision": decision, **kw}
        ),
    )


async def approve_through(client: BoomerangClient, run_id: str, checkpoints: list[str]) -> None:
    for name in checkpoints:
        await decide(client, run_id, name)
