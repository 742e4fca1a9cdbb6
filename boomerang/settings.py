"""All configuration, read once from the environment in `main()` and passed down.

Defaults point at the embedded stack (`boomerang dev`): a Temporal dev server on
localhost:7233 and a PostgreSQL that lives under the state directory. Production
sets `BOOMERANG_TEMPORAL_ADDRESS`, `BOOMERANG_TEMPORAL_NAMESPACE`, TLS or an API
key, `DATABASE_URL` and `BOOMERANG_COMPUTE_BACKEND=modal`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from boomerang.constants import TASK_QUEUE


class ComputeBackendName(StrEnum):
    LOCAL = "local"
    MODAL = "modal"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOMERANG_", extra="ignore")

    state_dir: Path = Field(default=Path(".boomerang"), description="Embedded stack data.")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = TASK_QUEUE
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None
    temporal_ui_port: int = 8233

    # Unprefixed, as every Postgres tool expects. None means the embedded server.
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "BOOMERANG_DATABASE_URL")
    )

    compute_backend: ComputeBackendName = ComputeBackendName.LOCAL
    # User modules that add compute functions and specialists (each exposes
    # `register(registry)`), comma-separated; the worker, its compute processes and
    # the Modal app (at `modal deploy`) all read this same variable.
    compute_modules: str = ""
    local_max_concurrency: int = Field(default=4, ge=1, le=1024)
    # In-flight compute calls: a burst beyond what the remote side is sized for fails
    # there, so calls wait here instead (per function by default, per GPU class, JSON).
    compute_max_in_flight: int | None = Field(default=8, ge=1)
    compute_function_limits: dict[str, int] = Field(default_factory=dict)
    compute_gpu_limits: dict[str, int] = Field(default_factory=dict)
    modal_app_name: str = "boomerang"
    # How often a Modal call is polled (and heartbeated); keep <= heartbeat timeout / 3.
    modal_poll_s: float = Field(default=5.0, gt=0)
    # None: the price table shipped with Boomerang (boomerang/prices/).
    price_table: Path | None = None

    # The HTTP API (`boomerang api`, `boomerang dev`).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8787, ge=0, le=65535)
    # whsec_<base64>: signs outgoing webhooks and verifies compute callbacks.
    webhook_secret: SecretStr | None = None
    # Webhook URLs go to public https addresses only; these hosts (names, addresses or
    # CIDR networks, comma-separated) are exempt, for local development (boomerang/webhooks/urls.py).
    webhook_allow_hosts: str = ""
    webhook_require_https: bool = True
    # The approvals inbox and its notifications (boomerang/inbox/, activities/notify.py).
    # The inbox's public base URL (e.g. https://boomerang.example.com): runs started through
    # the API carry it, and their notices and Temporal UI details link to the inbox item.
    inbox_base_url: str | None = None
    # A Slack-compatible incoming webhook (Slack, Mattermost, ...); a secret, like a token.
    slack_webhook_url: SecretStr | None = None
    # E-mail over SMTP: unset host = no e-mail. Recipients comma-separated.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: str = "boomerang@localhost"
    smtp_to: Annotated[tuple[str, ...], NoDecode] = ()
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    # Where the scheduled Ledger anchors are written (None: <state dir>/anchors); keep it
    # out of reach of the database's operators (boomerang/store/anchors.py).
    ledger_anchor_dir: Path | None = None

    # Large outputs (sweep items, GPU run artifacts): a directory (None: <state dir>/artifacts)
    # or s3://bucket/prefix, credentials from the AWS_* environment (boomerang/artifacts.py).
    artifacts_url: str | None = None
    # An S3-compatible endpoint (MinIO, R2, ...) for an s3:// artifacts URL; None: AWS.
    artifacts_endpoint: str | None = None
    # `boomerang gpu exec`: the largest worktree snapshot sent (compressed), 512 MiB.
    gpu_snapshot_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)

    @property
    def ledger_anchor_path(self) -> Path:
        return self.ledger_anchor_dir or self.state_dir / "anchors"

    # Request bodies larger than this are refused with 413 (boomerang/api/hardening.py).
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Browser origins allowed to call the API (CORS), e.g. https://app.example.com; comma-separated
    # or a JSON list. Empty: no CORS headers at all, so browsers on other origins are refused.
    api_cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    log_level: str = "INFO"
    log_json: bool = False

    # Observability (deploy/README.md). The worker serves /metrics, /livez and /readyz on
    # this port (0: off); the API serves /metrics on its own port.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    api_metrics: bool = True
    # Spend by tenant is one series per tenant: switch it off for very large fleets.
    metrics_tenant_labels: bool = True

    @field_validator("api_cors_origins", "smtp_to", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return tuple(o.strip() for o in text.split(",") if o.strip())
        return value

    @field_validator("api_cors_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            # A wildcard with credentials would hand every site the caller's token.
            if origin == "*":
                raise ValueError("'*' is not allowed: list each origin (credentials go only to those)")
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ValueError(
                    f"{origin!r} is not an origin; use scheme://host[:port], e.g. https://app.example.com"
                )
        return tuple(o.rstrip("/") for o in origins)
