"""A pipeline with a webhook URL: a checkpoint's options reach the endpoint, and so does the end."""

from __future__ import annotations

from typing import Any

import standardwebhooks
from temporalio.testing import WorkflowEnvironment

from boomerang.models.decisions import RunStatus
from boomerang.models.pipeline import Decision, PipelineInput
from tests.fixtures.temporal import StartWorker
from tests.helpers import BRIEF, decide, wait_until
from tests.webhooks import SECRET, Endpoint

FIRST = "approve_founders_brief"


def _bodies(endpoint: Endpoint) -> list[dict[str, Any]]:
    receiver = standardwebhooks.Webhook(SECRET.get_secret_value())
    return [receiver.verify(r.body, r.headers) for r in list(endpoint.received)]


async def test_checkpoint_and_end_of_run_notifications(
    dev_env: WorkflowEnvironment, start_worker: StartWorker
) -> None:
    endpoint = Endpoint()
    with endpoint.running():
        async with start_worker(dev_env) as client:
            inp = PipelineInput.model_validate(
                {"tenant": "acme", "project_id": "clinic", "brief": BRIEF, "webhook_url": endpoint.url}
            )
            run_id = await client.start_pipeline(inp)

            async def seen(kind: str) -> dict[str, Any] | None:
                return next((b for b in _bodies(endpoint) if b["type"] == kind), None)

            opened = await wait_until(lambda: seen("checkpoint_opened"), what="checkpoint_opened webhook")
            await decide(client, run_id, FIRST, Decision.REJECT)
            assert (await client.result(run_id)).status is RunStatus.REJECTED
            await wait_until(lambda: seen("pipeline_rejected"), what="pipeline_rejected webhook")
            decided = await wait_until(lambda: seen("checkpoint_decided"), what="checkpoint_decided webhook")

    data = opened["data"]
    assert (data["run_id"], data["checkpoint"]) == (run_id, FIRST)
    assert data["options"] == ["approve", "reject", "iterate"] and data["recommendation"] == "approve"
    assert data["deadline"] is not None
    # What the approver needs, customer-safe, and the opening a decision should name.
    assert data["opening"] == 1
    context = data["context"]
    assert context["summary"].startswith("3 sentences; problem:")
    assert (context["recommendation"], context["why"]) == (
        "approve", "the brief states a problem and a solution; its riskiest claims are listed",
    )  # fmt: skip
    assert [o["decision"] for o in context["options"]] == ["approve", "reject", "iterate"]
    assert not any(key.endswith("_usd") for key in context)
    assert decided["data"]["decision"] == "reject"
    assert "alice" not in str(decided)  # the approver is Ledger-only
    ids = [r.headers["webhook-id"] for r in endpoint.received]
    assert len(ids) == len(set(ids))  # one delivery per event
