"""The process's one Temporal `Runtime`: SDK metrics into Prometheus, core logs into Python.

A `Runtime` is process-wide and owns a thread pool, so `main()` builds one and hands
it to every client it connects (`boomerang.connect.connect_temporal(runtime=...)`).

- Metrics: the SDK's own (workflow task failures, activity latency, slots, polls...)
  go into a `MetricBuffer`; `TemporalMetricsCollector` drains it into the same
  Prometheus registry as Boomerang's metrics, so one `/metrics` serves both.
- Logs: the Rust core's lines are forwarded to the `temporalio.core` Python logger
  instead of being printed in colour on stderr, so they take the process's format
  (JSON in production) and its secret redaction.

    telemetry = TemporalTelemetry(metrics=True)
    client = await connect_temporal(settings, runtime=telemetry.runtime)
    registry.register(telemetry.collector)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    LogForwardingConfig,
    LoggingConfig,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

CORE_LOGGER = "temporalio.core"
# Seconds: the SDK's histograms are durations (schedule-to-start, execution latency...).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Families the alerts and dashboard name, declared before the SDK first reports them
# (a workflow task failure may never happen in a healthy fleet).
DECLARED = {
    "temporal_workflow_task_execution_failed": "counter",
    "temporal_activity_execution_failed": "counter",
}
_BAD_NAME = re.compile(r"[^a-zA-Z0-9_]")
LabelSet = tuple[tuple[str, str], ...]


def _name(raw: str) -> str:
    name = _BAD_NAME.sub("_", raw)
    return name if name.startswith("temporal_") else f"temporal_{name}"


def _labels(attributes: Mapping[str, object]) -> LabelSet:
    return tuple(sorted((_BAD_NAME.sub("_", str(k)), str(v)) for k, v in attributes.items()))


@dataclass
class _Histogram:
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    count: float = 0.0
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.buckets[i] += 1


@dataclass
class _Family:
    kind: str  # counter | gauge | histogram
    doc: str
    values: dict[LabelSet, float] = field(default_factory=dict)
    histograms: dict[LabelSet, _Histogram] = field(default_factory=dict)


class TemporalMetricsCollector(Collector):
    """Prometheus families accumulated from a drained `MetricBuffer`."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._families = {name: _Family(kind, name) for name, kind in DECLARED.items()}

    def drain(self) -> int:
        """Fold what the SDK buffered into the totals; call often (the buffer is bounded)."""
        updates = self._buffer.retrieve_updates()
        for update in updates:
            metric = update.metric
            name = _name(metric.name)
            kind = (
                "counter"
                if metric.kind == BUFFERED_METRIC_KIND_COUNTER
                else "gauge"
                if metric.kind == BUFFERED_METRIC_KIND_GAUGE
                else "histogram"
            )
            family = self._families.setdefault(name, _Family(kind, metric.description or name))
            key = _labels(update.attributes)
            value = float(update.value)
            if kind == "counter":
                family.values[key] = family.values.get(key, 0.0) + value
            elif kind == "gauge":
                family.values[key] = value
            else:
                family.histograms.setdefault(key, _Histogram()).observe(value)
        return len(updates)

    def collect(self) -> Iterator[Metric]:
        self.drain()
        for name, family in sorted(self._families.items()):
            metric = Metric(name, family.doc, family.kind)
            if family.kind == "counter":
                for key, value in family.values.items():
                    metric.add_sample(f"{name}_total", dict(key), value)
            elif family.kind == "gauge":
                for key, value in family.values.items():
                    metric.add_sample(name, dict(key), value)
            else:
                for key, h in family.histograms.items():
                    labels = dict(key)
                    for bound, count in zip(BUCKETS, h.buckets, strict=True):
                        metric.add_sample(f"{name}_bucket", {**labels, "le": repr(bound)}, count)
                    metric.add_sample(f"{name}_bucket", {**labels, "le": "+Inf"}, h.count)
                    metric.add_sample(f"{name}_count", labels, h.count)
                    metric.add_sample(f"{name}_sum", labels, h.total)
            yield metric


class TemporalTelemetry:
    """One `Runtime` for this process, with its metrics collector when `metrics` is on."""

    def __init__(self, *, metrics: bool, core_log_level: str = "WARN") -> None:
        self.buffer = MetricBuffer(100_000, MetricBufferDurationFormat.SECONDS) if metrics else None
        self.runtime = Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level=core_log_level, other_level="ERROR"),
                    forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
                ),
                metrics=self.buffer,
            )
        )
        self.collector = TemporalMetricsCollector(self.buffer) if self.buffer is not None else None


def forward_core_logs_by_default() -> None:
    """Make the default Runtime forward core logs to Python logging (JSON when asked).

    For processes that connect without building their own Runtime (the API, the CLI).
    A client connected before this keeps the runtime it had.
    """
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
            )
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
