"""Pipelines from a file, and every run carrying its own spec."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.local_backend import LocalBackend
from activities.records import EventSink
from boomerang.client import BoomerangClient
from boomerang.constants import PIPELINE_WORKFLOW
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.pipeline import PipelineInput, PipelineSpec
from boomerang.pipelines import startup_validation_pipeline
from boomerang.spec_files import SpecFileError, load_spec, parse_spec
from tests.helpers import BRIEF, wait_for_checkpoint
from tests.test_cli import BOOMERANG, run, stack

EXAMPLE = Path(__file__).parent.parent / "examples" / "two_phase_pipeline.yaml"


def test_the_example_file_is_a_two_phase_pipeline() -> None:
    spec = load_spec(EXAMPLE)
    assert [(p.name, p.function) for p in spec.phases] == [
        ("brief", "phase_0_onboarding"),
        ("economics", "phase_4_viability"),
    ]
    assert [c.name for p in spec.phases for c in p.checkpoints] == ["approve_brief", "go_no_go"]
    assert spec.phases[0].checkpoints[0].timeout.days == 3
    # JSON reads the same.
    assert parse_spec(spec.model_dump_json(), as_json=True) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nphases: []\n", "spec: phases: Tuple should have at least 1 item"),
        (
            "name: x\nphases:\n  - {name: Bad Name, title: t, function: f}\n",
            "spec: phases.0.name: String should match pattern",
        ),
        (
            "name: x\nphases:\n  - {name: a, title: t, function: f,\n"
            "     checkpoints: [{name: c, title: t, optoins: []}]}\n",
            "spec: unknown fields: phases.0.checkpoints.0.optoins",
        ),
        ("name: [unclosed\n", "spec: not valid YAML"),
    ],
)
def test_a_bad_file_names_the_field(text: str, message: str) -> None:
    with pytest.raises(SpecFileError) as caught:
        parse_spec(text)
    assert str(caught.value).startswith(message), str(caught.value)


async def test_pipeline_start_with_a_spec_file_runs_that_pipeline(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nphases: []\n")
    async with stack(dev_env, backend, event_store) as s:
        args = ("pipeline", "start", "--tenant", "acme", "--project-id", "clinic", "--brief", BRIEF)
        started = await run(str(BOOMERANG), *args, "--spec", str(EXAMPLE), env=s.env)
        refused = await run(str(BOOMERANG), *args, "--spec", str(bad), env=s.env)
        assert started.code == 0, started.output
        run_id = started.out.strip()
        for checkpoint in ("approve_brief", "go_no_go"):
            await wait_for_checkpoint(s.client, run_id, checkpoint)
            await s.client.decide(run_id, DecisionInput(checkpoint=checkpoint, approver="alice"))
        result = await s.client.result(run_id)
    assert result.status is RunStatus.COMPLETED and set(result.outputs) == {"brief", "economics"}
    # Typer boxes the message and wraps it at the terminal's width: read it as one line.
    said = " ".join(refused.err.replace("│", " ").split())
    assert refused.code == 2 and "phases: Tuple should have at least 1 item" in said


async def test_every_run_carries_its_spec_and_ignores_fields_it_does_not_know(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    async with stack(dev_env, backend, event_store) as s:
        run_id = await s.client.start_pipeline(PipelineInput(tenant="acme", project_id="p", brief=BRIEF))
        # A newer client's input, with a field this worker does not know: it starts and runs.
        newer = PipelineInput(tenant="acme", project_id="p", brief=BRIEF).model_dump(mode="json")
        newer["spec"] = startup_validation_pipeline().model_dump(mode="json")
        newer["spec"]["phases"][0]["added_later"] = True
        newer["priority"] = "high"
        newer_id = f"vp-newer-{uuid.uuid4().hex[:8]}"
        await s.client.temporal.start_workflow(PIPELINE_WORKFLOW, newer, id=newer_id, task_queue=s.task_queue)
        await wait_for_checkpoint(s.client, newer_id, "approve_founders_brief")
        history = await s.client.temporal.get_workflow_handle(run_id).fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    carried = json.loads(first.data)["spec"]
    assert PipelineSpec.model_validate(carried) == startup_validation_pipeline()


def test_the_frozen_spec_of_older_runs_is_todays_default_until_someone_edits_it() -> None:
    # If this fails, the default changed: that is fine, runs carry their own now. Only
    # SPEC_OF_RUNS_WITHOUT_ONE must not change (recorded histories replay against it).
    from workflows.legacy_spec import SPEC_OF_RUNS_WITHOUT_ONE

    assert SPEC_OF_RUNS_WITHOUT_ONE.name == "startup_validation"
    assert len([c for p in SPEC_OF_RUNS_WITHOUT_ONE.phases for c in p.checkpoints]) == 10


async def test_a_client_with_an_inbox_puts_its_link_in_the_runs_it_starts(
    dev_env: WorkflowEnvironment, backend: LocalBackend, event_store: EventSink
) -> None:
    async with stack(dev_env, backend, event_store) as s:
        client = BoomerangClient(
            s.client.temporal, task_queue=s.task_queue, inbox_base_url="http://inbox.test"
        )
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="p", brief=BRIEF))
        await wait_for_checkpoint(client, run_id, "approve_founders_brief")
        history = await client.temporal.get_workflow_handle(run_id).fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert json.loads(first.data)["inbox_url"] == "http://inbox.test"
