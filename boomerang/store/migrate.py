"""Apply the numbered SQL files in `migrations/`, each once, in order.

Each file runs in its own transaction together with the `schema_migrations` row
that records it, so a failed migration leaves nothing half-applied. A session
advisory lock serializes processes that start at the same moment (two workers
booting): the second waits, then finds everything applied. The checksum of every
applied file is compared on each run; an edited migration is an error, because
the database no longer matches the code that describes it.

    applied = await apply_migrations(conninfo)   # ["0001_ledger", ...] or []

New migrations are new files, `NNNN_what.sql`; nothing else needs to change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import psycopg
import structlog

from boomerang.store.errors import MigrationChecksumError, MigrationOrderError

log = structlog.get_logger(__name__)

# Any fixed 64-bit number, shared by every process that migrates this database.
_LOCK_KEY = 0x626F6F6D6D6967  # "boommig"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped in the package, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files("boomerang.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationOrderError(f"migration file {entry.name!r} is not NNNN_name.sql")
            continue
        found.append(Migration(int(match.group(1)), entry.name.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationOrderError(f"duplicate migration versions in {[m.name for m in found]}")
    return found


async def apply_migrations(conninfo: str, *, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    todo = list(migrations) if migrations is not None else load_migrations()
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            return await _apply_locked(conn, todo)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _apply_locked(conn: psycopg.AsyncConnection, todo: list[Migration]) -> list[str]:
    await conn.execute(_CREATE_TABLE)
    cur = await conn.execute("SELECT version, name, checksum FROM schema_migrations")
    applied = {int(v): (str(n), str(c)) for v, n, c in await cur.fetchall()}
    done: list[str] = []
    for migration in todo:
        if migration.version in applied:
            name, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise MigrationChecksumError(
                    f"migration {migration.name} was applied as {name} with checksum "
                    f"{checksum[:12]}…, the file now has {migration.checksum[:12]}…; "
                    "never edit an applied migration, add a new one"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
        log.info("migration_applied", migration=migration.name)
        done.append(migration.name)
    return done
