"""Recorded histories replay against today's ValidationPipeline without nondeterminism.

The JSON files in tests/histories/ were produced by `python -m tests.histories.record_history`
with the workflow code of the time. The older ones, each folder recorded before a
change that `workflow.patched` gates (runs like them may still be in flight for days,
so they must replay too):

- before_core_redesign/: before the pipeline became an executor of its state machine
  and before runs carried their own spec (`spec` is None in their input);
- before_publish_on_change/: before runs upserted only the search attributes that
  changed ("publish-on-change");
- before_tasks_inline/: while a phase's specialist task ran as a child `BoomerAngTask`
  ("phase-tasks-inline");
- before_events_with_dispatch/: while the events queued at a dispatch were written by a
  local activity first ("events-with-dispatch").

A change that alters the commands a running workflow issues (a new activity, a
reordered timer) breaks replay of runs already in flight in production; this test is
where that shows, before a deploy does. When a change is meant to be incompatible,
gate it with `workflow.patched` or rerun the script and commit the new histories.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from boomerang.constants import PIPELINE_WORKFLOW
from boomerang.models.decisions import PipelineResult, RunStatus
from boomerang.models.pipeline import Decision, PipelineInput
from boomerang.pipelines import startup_validation_pipeline
from workflows.pipeline import TASKS_INLINE, ValidationPipeline
from workflows.recording import EVENTS_WITH_DISPATCH
from workflows.reporting import PUBLISH_ON_CHANGE

# Only light imports here: the sandbox re-imports this module to validate the
# stand-in workflow below, and it refuses modules that draw randomness at import.
HISTORIES = Path(__file__).parent / "histories"
PHASES = [p.name for p in startup_validation_pipeline().phases]
CHECKPOINTS = [c.name for p in startup_validation_pipeline().phases for c in p.checkpoints]
OLDER = (
    "before_core_redesign",
    "before_publish_on_change",
    "before_tasks_inline",
    "before_events_with_dispatch",
)


def _load(name: str) -> WorkflowHistory:
    # The workflow id the run had (child ids derive from it), whichever folder it is in.
    text = (HISTORIES / f"{name}.json").read_text()
    return WorkflowHistory.from_json(f"history-{Path(name).name}", text)


def _result(history: WorkflowHistory) -> PipelineResult:
    last = history.events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    payloads = last.workflow_execution_completed_event_attributes.result.payloads
    (result,) = pydantic_data_converter.payload_converter.from_payloads(payloads, [PipelineResult])
    assert isinstance(result, PipelineResult)
    return result


def _replayer(*workflows: type) -> Replayer:
    return Replayer(workflows=list(workflows), data_converter=pydantic_data_converter)


@pytest.mark.parametrize(
    "name",
    [
        *(f"{folder}/{n}" for folder in OLDER for n in ("happy_path", "rejected", "expired")),
        "happy_path",
        "rejected",
        "expired",
    ],
)
async def test_recorded_history_replays(name: str) -> None:
    result = await _replayer(ValidationPipeline).replay_workflow(_load(name))
    assert result.replay_failure is None


def test_the_older_histories_are_of_runs_without_a_spec_and_the_new_ones_carry_it() -> None:
    def started_input(history: WorkflowHistory) -> PipelineInput:
        first = history.events[0].workflow_execution_started_event_attributes.input.payloads
        (inp,) = pydantic_data_converter.payload_converter.from_payloads(first, [PipelineInput])
        assert isinstance(inp, PipelineInput)
        return inp

    assert started_input(_load("before_core_redesign/happy_path")).spec is None
    assert started_input(_load("happy_path")).spec == startup_validation_pipeline()


@pytest.mark.parametrize("prefix", [*(f"{folder}/" for folder in OLDER), ""])
def test_happy_path_history_covers_every_checkpoint_iterate_and_pivot(prefix: str) -> None:
    result = _result(_load(f"{prefix}happy_path"))
    assert result.status is RunStatus.COMPLETED
    assert list(result.outputs) == list(PHASES)
    assert {d.checkpoint for d in result.decisions} == set(CHECKPOINTS)
    decisions = {d.decision for d in result.decisions}
    assert {Decision.ITERATE, Decision.PIVOT, Decision.OVERRIDE_PROCEED} <= decisions
    assert {"update", "signal:approve", "signal:decide"} <= {d.via for d in result.decisions}


def _patches(name: str) -> set[str]:
    return {
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in _load(name).events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    }


def test_only_the_later_histories_upsert_search_attributes_on_change() -> None:
    assert PUBLISH_ON_CHANGE in _patches("happy_path")
    assert PUBLISH_ON_CHANGE in _patches("before_tasks_inline/happy_path")
    assert PUBLISH_ON_CHANGE not in _patches("before_publish_on_change/happy_path")


def test_only_the_current_histories_run_the_phase_task_inside_the_run() -> None:
    def children(name: str) -> int:
        started = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        return sum(e.event_type == started for e in _load(name).events)

    assert TASKS_INLINE in _patches("happy_path") and children("happy_path") == 0
    assert TASKS_INLINE in _patches("before_events_with_dispatch/happy_path")
    # The older happy path ran phase 1's research task as a child, on each of its passes.
    assert TASKS_INLINE not in _patches("before_tasks_inline/happy_path")
    assert children("before_tasks_inline/happy_path") >= 1


def test_rejected_and_expired_histories_end_as_named() -> None:
    assert _result(_load("rejected")).status is RunStatus.REJECTED
    expired = _result(_load("expired"))
    assert expired.status is RunStatus.EXPIRED
    assert expired.decisions == ()


@workflow.defn(name=PIPELINE_WORKFLOW)
class ReorderedPipeline:
    """Stands in for an incompatible edit: a timer where the first event was recorded."""

    @workflow.run
    async def run(self, inp: PipelineInput) -> None:
        del inp
        await workflow.sleep(timedelta(seconds=1))


async def test_replay_catches_an_incompatible_change() -> None:
    with pytest.raises(workflow.NondeterminismError):
        await _replayer(ReorderedPipeline).replay_workflow(_load("happy_path"))


def test_only_the_current_histories_hand_their_events_to_the_dispatch() -> None:
    def first_local_activity_before_first_dispatch(name: str) -> bool:
        """Whether the workflow task that starts the first phase also ran a local activity."""
        for e in _load(name).events:
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                return False
            if (
                e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            ):
                return True
        return False

    assert EVENTS_WITH_DISPATCH in _patches("happy_path")
    assert not first_local_activity_before_first_dispatch("happy_path")
    assert EVENTS_WITH_DISPATCH not in _patches("before_events_with_dispatch/happy_path")
    assert first_local_activity_before_first_dispatch("before_events_with_dispatch/happy_path")
