"""`/metrics` of a worker and an API that ran a pipeline: the right series, the right values."""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from boomerang.models.events import EventKind, RunEvent
from boomerang.observability.labels import OTHER, label
from boomerang.observability.metrics import ObservedEvents, WorkerMetrics, channel
from boomerang.store.recorder import EventStore
from tests.fixtures.temporal import WEBHOOK_SECRET
from tests.observability.conftest import BRIEF, Observed

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


def test_probes_answer(observed: Observed) -> None:
    assert observed.livez.status_code == 200
    assert observed.readyz.status_code == 200
    assert observed.readyz.json() == {"status": "ok", "temporal": True, "database": True}


def test_checkpoints_and_decisions_are_counted_by_channel(observed: Observed) -> None:
    m = samples(observed.worker_metrics)
    for checkpoint in ("approve_founders_brief", "approve_customer_profile"):
        assert value(m, "boomerang_checkpoints_opened_total", checkpoint=checkpoint) == 1
        assert value(m, "boomerang_checkpoint_decision_seconds_count", checkpoint=checkpoint) == 1
        seconds = value(m, "boomerang_checkpoint_decision_seconds_sum", checkpoint=checkpoint)
        assert 0 < seconds < 120
    # The API and the Python client both decide the client's way; the API counts its own too.
    assert value(m, "boomerang_decisions_total", channel="client", decision="approve") == 1
    assert value(m, "boomerang_decisions_total", channel="client", decision="reject") == 1
    assert value(m, "boomerang_decisions_total") == 2
    assert value(m, "boomerang_refused_inputs_total", channel="signal") == 1
    assert value(m, "boomerang_pipelines_total", status="started") == 1
    assert value(m, "boomerang_pipelines_total", status="rejected") == 1
    assert value(m, "boomerang_checkpoint_expiries_total") == 0
    api = samples(observed.api_metrics)
    assert value(api, "boomerang_api_decisions_total", outcome="accepted") == 1
    assert value(api, "boomerang_api_requests_total", route="/kickoff", status="202") == 1


def test_compute_attempts_and_spend_match_the_ledger(observed: Observed) -> None:
    m = samples(observed.worker_metrics)
    attempts = value(m, "boomerang_compute_attempts_total", backend="local", outcome="ok")
    assert attempts == observed.ledger_attempts >= 2  # onboarding, vpc_discovery (+ its research task)
    assert value(m, "boomerang_compute_attempts_total", function="phase_0_onboarding") == 1
    assert value(m, "boomerang_compute_duration_seconds_count", backend="local") == attempts
    assert value(m, "boomerang_compute_queue_wait_seconds_count", backend="local") == attempts
    # Each compute process counts its first call as a cold start, and there is at least one.
    assert 1 <= value(m, "boomerang_compute_cold_starts_total") <= attempts
    spend = value(m, "boomerang_spend_usd_total", tenant=observed.tenant)
    assert math.isclose(spend, float(observed.ledger_total), rel_tol=1e-9, abs_tol=1e-12)


def test_temporal_sdk_metrics_share_the_endpoint(observed: Observed) -> None:
    m = samples(observed.worker_metrics)
    # The Temporal SDK's own metrics, from the worker's Runtime, on the same endpoint.
    assert value(m, "temporal_workflow_completed_total", workflow_type="ValidationPipeline") >= 1
    assert value(m, "temporal_activity_execution_latency_count", activity_type="dispatch") >= 2
    assert value(m, "temporal_worker_task_slots_available", worker_type="ActivityWorker") > 0


def test_the_api_serves_fleet_gauges(observed: Observed) -> None:
    api = samples(observed.api_metrics)
    assert value(api, "boomerang_fleet_gauges_up") == 1
    assert ("boomerang_dead_letters_stored", frozenset()) in api


def test_no_label_holds_a_token_secret_brief_or_url(observed: Observed) -> None:
    for text in (observed.worker_metrics, observed.api_metrics):
        assert observed.token not in text
        assert observed.token.split("_")[1] not in text  # not even the token's prefix
        assert WEBHOOK_SECRET.get_secret_value() not in text
        assert "OBSERVABILITY-BRIEF" not in text and BRIEF[:20] not in text
        assert "s3cr3t-query" not in text and "127.0.0.1" not in text
        assert observed.run_id not in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("approve_founders_brief", "approve_founders_brief"),
        ("acme-co", "acme-co"),
        (None, "none"),
        ("We build an API for clinics", OTHER),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", OTHER),
        ("bmr_0123456789ab_secret", OTHER),
        ("http://127.0.0.1/x?token=1", OTHER),
        ("x" * 65, OTHER),
    ],
)
def test_label_values_are_identifiers_only(raw: str | None, expected: str) -> None:
    assert label(raw) == expected


def test_channels() -> None:
    assert [channel(v) for v in ("update", "signal:approve", "expiry", None, "x")] == [
        "update",
        "signal",
        "expiry",
        "other",
        "other",
    ]


async def test_webhook_attempts_count_by_outcome_once_each(event_store: EventStore) -> None:
    """What `deliver_webhook` and `dead_letter_webhook` record, counted once however often retried."""
    metrics = WorkerMetrics(backend="local", tenant_labels=False)
    events = ObservedEvents(event_store, metrics)
    run = f"obs-wh-{uuid.uuid4().hex[:10]}"
    attempts = [("delivery/0001", "retrying"), ("delivery/0002", "delivered"), ("delivery/0001", "disabled"),
                ("dead_letter", "dead_lettered")]  # fmt: skip
    for n, (suffix, status) in enumerate(attempts):
        event = RunEvent(
            event_key=f"{run}/webhook-{n // 2}/{suffix}", run_id=run, tenant="acme",
            kind=EventKind.WEBHOOK_DELIVERED if status == "delivered" else EventKind.WEBHOOK_FAILED,
            occurred_at=datetime.now(UTC), status=status, message="Notification of task_completed",
            details={"url": "http://127.0.0.1/hooks?token=s3cr3t-query"},
        )  # fmt: skip
        assert await events.record(event) is True
        assert await events.record(event) is False  # a retried activity: written once, counted once
    text = generate_latest(metrics.registry).decode()
    m = samples(text)
    assert value(m, "boomerang_webhook_deliveries_total", outcome="retrying") == 1
    assert value(m, "boomerang_webhook_deliveries_total", outcome="delivered") == 1
    assert value(m, "boomerang_webhook_deliveries_total", outcome="disabled") == 1
    assert value(m, "boomerang_webhook_dead_letters_total") == 1
    assert "s3cr3t-query" not in text and run not in text


DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
_NAME = re.compile(r"\b((?:boomerang|temporal)_[a-z0-9_]+)\b")


def exported_names(*texts: str) -> set[str]:
    """Every series name a scrape can hold, from its `# TYPE` lines (families with no samples too)."""
    names: set[str] = set()
    for text in texts:
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
            if kind == "counter":  # the text format names a counter's family with its _total
                names.add(name if name.endswith("_total") else f"{name}_total")
            elif kind == "histogram":
                names |= {name + s for s in ("_bucket", "_sum", "_count")}
            else:
                names.add(name)
    return names


def test_every_metric_the_dashboard_and_alerts_name_is_exported(observed: Observed) -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    named = {n for e in exprs for n in _NAME.findall(e)}
    assert len(named) >= 20
    missing = named - exported_names(observed.worker_metrics, observed.api_metrics)
    assert not missing, f"named in deploy/observability but not exported: {sorted(missing)}"
