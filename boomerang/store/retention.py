"""Ledger retention: seven years, by dropping whole monthly partitions.

The ledger is range-partitioned by `recorded_at`, one partition per UTC month
(`ledger_pYYYYMM`, created ahead of need by `boomerang_ensure_ledger_partition`).
Rows never leave by DELETE or TRUNCATE: triggers refuse both for every role,
table owner included. The one way out is `drop_expired_partitions`, run by the
schema owner (a scheduled operations job, never the writer role, which owns
nothing and cannot drop a table). It drops a month only when

* the whole month is older than seven years before `now`;
* every older month is already gone (a chain loses a prefix, never a middle:
  recorded_at never decreases along a stream, so a month holds one run of
  consecutive seqs per stream);
* each stream's last row in that month is covered by an exported anchor
  (`ChainHead.seq` at or past it), and the chain still verifies up to that
  anchor; otherwise it stops and drops nothing more.

Before the drop it records each stream's last dropped (seq, row_hash) in
`ledger_retention_cuts`, so `verify` resumes the surviving rows from that hash.
`ledger_keys` keeps the keys of dropped rows, so an expired event is still
deduplicated. Dropping a partition fires no row trigger: that is the single,
owner-only exception to append-only, and it removes only what retention allows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from boomerang.store.errors import RetentionError
from boomerang.store.integrity import ChainHead, check_anchors

log = structlog.get_logger(__name__)

RETENTION_YEARS = 7
_PARTITION = re.compile(r"^ledger_p(\d{4})(\d{2})$")

_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'public.ledger'::regclass
"""


@dataclass(frozen=True, slots=True)
class _Month:
    name: str
    start: datetime
    end: datetime


def retention_cutoff(now: datetime) -> datetime:
    """The instant before which ledger rows may go: `now` minus seven years."""
    try:
        return now.replace(year=now.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return now.replace(year=now.year - RETENTION_YEARS, day=28)


def _month(name: str) -> _Month | None:
    found = _PARTITION.match(name)
    if found is None:
        return None
    year, month = int(found.group(1)), int(found.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return _Month(name, start, end)


async def _months(conn: psycopg.AsyncConnection[Any]) -> list[_Month]:
    cur = await conn.execute(_PARTITIONS)
    found = (_month(str(r[0])) for r in await cur.fetchall())
    return sorted((m for m in found if m is not None), key=lambda m: m.start)


async def _drop_month(
    conn: psycopg.AsyncConnection[Any], month: _Month, heads: dict[str, ChainHead], now: datetime
) -> bool:
    """Drop one month if its rows are anchored and intact; False if not covered."""
    table = sql.Identifier(month.name)
    cur = await conn.execute(
        sql.SQL("SELECT DISTINCT ON (stream) stream, seq, row_hash FROM {} ORDER BY stream, seq DESC").format(
            table
        )
    )
    lasts = [(str(s), int(q), str(h)) for s, q, h in await cur.fetchall()]
    uncovered = [s for s, q, _ in lasts if s not in heads or heads[s].seq < q]
    if uncovered:
        log.warning("retention_not_anchored", partition=month.name, streams=len(uncovered))
        return False
    report = await check_anchors(conn, [heads[s] for s, _, _ in lasts])
    if not report.ok:
        first = report.first_break
        raise RetentionError(
            f"refusing to drop {month.name}: {first.describe() if first else 'chain broken'}"
        )
    for stream, seq, digest in lasts:
        await conn.execute(
            "INSERT INTO ledger_retention_cuts (stream, seq, row_hash, partition, cut_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream) DO UPDATE SET"
            " seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash,"
            " partition = EXCLUDED.partition, cut_at = EXCLUDED.cut_at",
            (stream, seq, digest, month.name, now),
        )
    await conn.execute(sql.SQL("DROP TABLE {}").format(table))
    return True


async def drop_expired_partitions(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
    *,
    now: datetime,
    anchored_heads: Sequence[ChainHead],
) -> list[str]:
    """Drop ledger months past retention whose rows an anchor covers; returns their names.

    Oldest first, one transaction per month, stopping at the first month that is
    not yet expired or not fully anchored. Must run as the schema owner.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = retention_cutoff(now)
    heads = {h.stream: h for h in anchored_heads}
    dropped: list[str] = []
    async with pool.connection() as conn:
        months = await _months(conn)
        await conn.commit()
        for month in months:
            if month.end > cutoff:
                break
            async with conn.transaction():
                if not await _drop_month(conn, month, heads, now):
                    break
            log.info("retention_dropped", partition=month.name)
            dropped.append(month.name)
    return dropped
