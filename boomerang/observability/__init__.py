"""What a team running Boomerang needs to see it: metrics, traces, JSON logs, health.

- `metrics.py`: Boomerang's own metrics, derived from the events it records.
- `temporal_runtime.py`: the process's one Temporal `Runtime` (SDK metrics, core logs).
- `fleet.py`: fleet-wide gauges read from Postgres (what waits, how close to expiry).
- `health.py`: the worker's `/metrics`, `/livez` and `/readyz`.
- `tracing.py`: OpenTelemetry, off unless `OTEL_*` says where to send spans.
"""
