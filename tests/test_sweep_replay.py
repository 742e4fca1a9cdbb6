"""Recorded `Sweep` histories replay against today's workflow without nondeterminism.

`sweep_items_*` were recorded (tests/histories/record_sweep_history.py) when every item
was a `run_sweep_item` activity; a sweep like them still in flight when the chunked
code deploys must finish the way it started (`workflow.patched("sweep-chunks")`).
`sweep_chunks_*` are the chunked dispatch. Each pair is a run that continued as new
and the run that finished.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.sweep import Sweep

HISTORIES = Path(__file__).parent / "histories"


def _load(name: str) -> WorkflowHistory:
    prefix = name.rsplit("_", 2)[0]  # the workflow id the recorder used: history-<prefix>
    return WorkflowHistory.from_json(f"history-{prefix}", (HISTORIES / f"{name}.json").read_text())


def _activities(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


@pytest.mark.parametrize("kind", ["sweep_items", "sweep_chunks"])
@pytest.mark.parametrize("run", ["first_run", "last_run"])
async def test_recorded_sweep_history_replays(kind: str, run: str) -> None:
    replayer = Replayer(workflows=[Sweep], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_load(f"{kind}_{run}"))
    assert result.replay_failure is None


def test_the_histories_are_of_the_two_dispatch_paths() -> None:
    items = _activities(_load("sweep_items_first_run"))
    assert items.count("run_sweep_item") == 4 and "run_sweep_chunk" not in items
    chunks = _activities(_load("sweep_chunks_first_run"))
    assert "run_sweep_item" not in chunks and chunks.count("run_sweep_chunk") >= 2
    last = _load("sweep_items_first_run").events[-1].event_type
    assert last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
