"""Migrations apply once, in order, safely from several processes, and refuse edits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import psycopg
import pytest

from boomerang.store.errors import MigrationChecksumError
from boomerang.store.migrate import apply_migrations, load_migrations

MakeDb = Callable[[], Awaitable[str]]


def test_migrations_are_ordered_package_data() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert migrations[0].name == "0001_ledger"


async def test_second_run_applies_nothing(pg_conninfo: str) -> None:
    assert await apply_migrations(pg_conninfo) == []


async def test_concurrent_apply_runs_each_migration_once(make_database: MakeDb) -> None:
    conninfo = await make_database()
    results = await asyncio.gather(*(apply_migrations(conninfo) for _ in range(4)))
    names = [m.name for m in load_migrations()]
    assert sorted(results, key=len) == [[], [], [], names]
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute("SELECT name FROM schema_migrations ORDER BY version")
        assert [r[0] for r in await cur.fetchall()] == names


async def test_edited_migration_is_refused(make_database: MakeDb) -> None:
    conninfo = await make_database()
    await apply_migrations(conninfo)
    edited = load_migrations()
    edited[1] = dataclasses.replace(edited[1], sql=edited[1].sql + "\n-- edited\n")
    with pytest.raises(MigrationChecksumError, match=edited[1].name):
        await apply_migrations(conninfo, migrations=edited)


async def test_failed_migration_leaves_nothing(make_database: MakeDb) -> None:
    conninfo = await make_database()
    broken = [*load_migrations()]
    bad = dataclasses.replace(broken[0], version=9999, name="9999_bad", sql="CREATE TABLE x (); SELECT 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        await apply_migrations(conninfo, migrations=[*broken, bad])
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute("SELECT to_regclass('x'), max(version) FROM schema_migrations")
        assert await cur.fetchone() == (None, broken[-1].version)
