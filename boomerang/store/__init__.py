"""PostgreSQL persistence: the Charter (customer), the Ledger (audit) and projections.

conninfo = resolve_conninfo(settings)
await apply_migrations(conninfo)
pool = await open_pool(conninfo)
store = EventStore(pool)
await store.record(event)          # exactly once per event_key
report = await verify(pool)        # hash chains intact?
"""

from boomerang.store.charter import CharterRow, charter_row
from boomerang.store.embedded import EmbeddedPostgres, resolve_conninfo, start_embedded_postgres
from boomerang.store.errors import (
    InvalidEventError,
    MigrationChecksumError,
    MigrationOrderError,
    RetentionError,
    StoreError,
)
from boomerang.store.integrity import (
    BreakReason,
    ChainBreak,
    ChainHead,
    VerifyReport,
    anchor,
    verify,
    verify_against_anchor,
)
from boomerang.store.migrate import apply_migrations
from boomerang.store.queries import (
    charter_for_run,
    ledger_for_run,
    pending_approvals,
    run_summary,
)
from boomerang.store.recorder import EventStore, open_pool
from boomerang.store.retention import drop_expired_partitions

__all__ = [
    "BreakReason",
    "ChainBreak",
    "ChainHead",
    "CharterRow",
    "EmbeddedPostgres",
    "EventStore",
    "InvalidEventError",
    "MigrationChecksumError",
    "MigrationOrderError",
    "RetentionError",
    "StoreError",
    "VerifyReport",
    "anchor",
    "apply_migrations",
    "charter_for_run",
    "charter_row",
    "drop_expired_partitions",
    "ledger_for_run",
    "open_pool",
    "pending_approvals",
    "resolve_conninfo",
    "run_summary",
    "start_embedded_postgres",
    "verify",
    "verify_against_anchor",
]
