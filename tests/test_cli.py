"""Decisions from the command line: the `temporal` CLI (tctl's successor) and `boomerang`.

Both run as real subprocesses against the session's dev server, while the worker
runs in this test's event loop (hence asyncio subprocesses, never blocking calls).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.binaries import temporal_cli
from boomerang.client import BoomerangClient
from boomerang.models.decisions import DecisionInput, PipelineStatus
from boomerang.models.pipeline import PipelineInput
from tests.helpers import BRIEF, CHECKPOINTS, wait_for_checkpoint, wait_until
from worker import build_worker

BOOMERANG = Path(sys.executable).parent / "boomerang"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


async def run(*argv: str, env: dict[str, str] | None = None, timeout_s: float = 60) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


@dataclass(frozen=True)
class Stack:
    client: BoomerangClient
    address: str
    task_queue: str

    def temporal(self, *args: str) -> tuple[str, ...]:
        return (str(temporal_cli()), *args, "--address", self.address)

    @property
    def env(self) -> dict[str, str]:
        return {
            "BOOMERANG_TEMPORAL_ADDRESS": self.address,
            "BOOMERANG_TEMPORAL_TASK_QUEUE": self.task_queue,
            "BOOMERANG_TEMPORAL_NAMESPACE": self.client.temporal.namespace,
        }


@asynccontextmanager
async def stack(env: WorkflowEnvironment, backend: LocalBackend, events: EventSink) -> AsyncIterator[Stack]:
    """A worker on a fresh task queue, and what a CLI needs to reach it."""
    task_queue = f"tq-cli-{uuid.uuid4().hex}"
    async with build_worker(env.client, task_queue=task_queue, backend=backend, events=events):
        yield Stack(
            client=BoomerangClient(env.client, task_queue=task_queue),
            address=env.client.service_client.config.target_host,
            task_queue=task_queue,
        )


def _json(**fields: str) -> str:
    return json.dumps(fields)


async def test_temporal_cli_signal_and_update_move_the_run(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    async with stack(dev_env, backend, event_store) as s:
        run_id = await s.client.start_pipeline(PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF))
        await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[0])

        signal = await run(*s.temporal(
            "workflow", "signal", "--workflow-id", run_id, "--name", "approve",
            "--input", _json(checkpoint=CHECKPOINTS[0], approver="alice"),
        ))  # fmt: skip
        assert signal.code == 0, signal.output
        await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[1])

        update = await run(*s.temporal(
            "workflow", "update", "execute", "--workflow-id", run_id, "--name", "decide",
            "--input", _json(checkpoint=CHECKPOINTS[1], approver="bob", decision_id="cli-1"),
        ))  # fmt: skip
        assert update.code == 0, update.output
        assert "applied" in update.out and "cli-1" in update.out
        status = await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[2])

        refused = await run(*s.temporal(
            "workflow", "update", "execute", "--workflow-id", run_id, "--name", "decide",
            "--input", _json(checkpoint=CHECKPOINTS[0], approver="carol"),
        ))  # fmt: skip
        bad_signal = await run(*s.temporal(
            "workflow", "signal", "--workflow-id", run_id, "--name", "approve",
            "--input", _json(checkpoint="approve_everything", approver="mallory"),
        ))  # fmt: skip
        assert bad_signal.code == 0, bad_signal.output  # a signal cannot answer; the run keeps it

        async def refused_signal() -> PipelineStatus | None:
            st = await s.client.status(run_id)
            return st if st.refused else None

        after = await wait_until(refused_signal, what="the bad signal to be refused")

    assert [(d.checkpoint, d.approver, d.via) for d in status.decisions] == [
        (CHECKPOINTS[0], "alice", "signal:approve"),
        (CHECKPOINTS[1], "bob", "update"),
    ]
    assert refused.code != 0
    assert f"checkpoint {CHECKPOINTS[0]} is not pending: already decided (approve by alice)" in refused.output
    assert len(after.decisions) == 2  # the refused update left no trace in the run
    (kept,) = after.refused
    assert kept.via == "signal:approve"
    assert kept.reason.startswith("unknown checkpoint 'approve_everything'")


async def test_boomerang_cli_end_to_end(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    async with stack(dev_env, backend, event_store) as s:
        started = await run(
            str(BOOMERANG), "pipeline", "start", "--tenant", tenant, "--project-id", "clinic",
            "--brief", BRIEF, env=s.env,
        )  # fmt: skip
        assert started.code == 0, started.output
        run_id = started.out.strip()
        assert run_id.startswith("vp-clinic-")
        await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[0])

        async def listed() -> Ran | None:
            ran = await run(str(BOOMERANG), "approvals", "--tenant", tenant, env=s.env)
            assert ran.code == 0, ran.output
            return ran if run_id in ran.out else None

        # The list comes from Temporal's visibility store, which trails the run a little.
        approvals = await wait_until(listed, what=f"{run_id} in `boomerang approvals`")

        decided = await run(
            str(BOOMERANG), "decide", run_id, CHECKPOINTS[0], "approve", "--by", "alice",
            "--comment", "clear enough", env=s.env,
        )  # fmt: skip
        again = await run(
            str(BOOMERANG), "decide", run_id, CHECKPOINTS[0], "approve", "--by", "alice", env=s.env
        )
        unknown = await run(
            str(BOOMERANG), "decide", "vp-no-such-run", CHECKPOINTS[0], "approve", "--by", "alice",
            env=s.env,
        )  # fmt: skip
        await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[1])
        shown = await run(str(BOOMERANG), "status", run_id, "--json", env=s.env)

    # The approver reads what the checkpoint gates, the advice and what each option does.
    header, waiting, summary, *advice = approvals.out.splitlines()
    assert header.split()[:2] == [run_id, tenant]
    assert waiting.strip().startswith(f"waiting: {CHECKPOINTS[0]} (opening 1)")
    assert "problem:" in summary and "solution:" in summary
    assert advice[0].strip().startswith("recommended: approve (the brief states a problem and a solution")
    assert any(a.split()[:2] == ["approve", "accept"] and "Phase 1 · VPC Discovery" in a for a in advice)
    assert decided.code == 0, decided.output
    assert decided.out.startswith(f"applied: approve on {CHECKPOINTS[0]} (opening 1)")
    assert again.code == 2
    assert f"refused: checkpoint {CHECKPOINTS[0]} is not pending: already decided" in again.err
    assert unknown.code == 3
    assert "vp-no-such-run" in unknown.err
    assert shown.code == 0, shown.output
    status = PipelineStatus.model_validate(json.loads(shown.out))
    assert status.run_id == run_id and status.tenant == tenant
    (decision,) = status.decisions
    assert (decision.checkpoint, decision.approver, decision.comment, decision.via) == (
        CHECKPOINTS[0], "alice", "clear enough", "client",
    )  # fmt: skip
    assert [cp.name for cp in status.pending] == [CHECKPOINTS[1]]


async def test_temporal_cli_refusals_are_one_line_that_says_what_is_allowed(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    async with stack(dev_env, backend, event_store) as s:
        run_id = await s.client.start_pipeline(PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF))
        await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[0])

        def update(name: str, **fields: str) -> tuple[str, ...]:
            return s.temporal(
                "workflow", "update", "execute", "--workflow-id", run_id, "--name", name,
                "--input", _json(**fields),
            )  # fmt: skip

        wrong_checkpoint = await run(*update("decide", checkpoint="approve_everything", approver="alice"))
        wrong_value = await run(
            *update("decide", checkpoint=CHECKPOINTS[0], approver="alice", decision="aprove")
        )
        wrong_name = await run(*update("approval", checkpoint=CHECKPOINTS[0], approver="alice"))
        status = await s.client.status(run_id)

    assert wrong_checkpoint.code != 0
    message = f"unknown checkpoint 'approve_everything'; this run has: {', '.join(CHECKPOINTS)}"
    assert wrong_checkpoint.output.count(message) == 1, wrong_checkpoint.output
    # Once, with the one type the workflow gave it: no second, retryable copy from the cause.
    assert "InvalidDecisionError" not in wrong_checkpoint.output
    assert "retryable: true" not in wrong_checkpoint.output

    assert wrong_value.code != 0
    assert (
        "invalid decide update: decision: Input should be 'approve', 'reject', 'iterate', 'pivot' or "
        "'override_proceed'" in wrong_value.output
    ), wrong_value.output
    assert "Failed decoding arguments" not in wrong_value.output
    assert "errors.pydantic.dev" not in wrong_value.output

    assert wrong_name.code != 0
    assert "unknown update 'approval'; this run accepts decide" in wrong_name.output, wrong_name.output
    assert status.decisions == ()


async def test_boomerang_decide_while_the_phase_runs_is_held_and_says_so(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    async with stack(dev_env, backend, event_store) as s:
        run_id = await s.client.start_pipeline(
            PipelineInput(tenant="acme", project_id="clinic", brief=BRIEF, context={"work_seconds": 6})
        )
        await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[0])
        await s.client.decide(run_id, DecisionInput(checkpoint=CHECKPOINTS[0], approver="alice"))
        # Phase 1 works for 6 s and opens CHECKPOINTS[1] next: the decision waits for it.
        held = await run(
            str(BOOMERANG), "decide", run_id, CHECKPOINTS[1], "approve", "--by", "bob", env=s.env
        )
        status = await wait_for_checkpoint(s.client, run_id, CHECKPOINTS[2])

    assert held.code == 0, held.output
    first, *rest = held.out.splitlines()
    assert first.startswith(f"held: approve on {CHECKPOINTS[1]} (opening 1)")
    assert rest == [
        f"{CHECKPOINTS[1]} opens when the running phase finishes; the decision lands then.",
        f"to see that it did: boomerang status {run_id}",
    ]
    assert [(d.checkpoint, d.approver) for d in status.decisions] == [
        (CHECKPOINTS[0], "alice"),
        (CHECKPOINTS[1], "bob"),
    ]
