"""Prove the Ledger unchanged: recompute every chain, and compare with anchors.

`verify` recomputes each stream's hashes from its first surviving row (the
genesis hash, or the retention cut's hash) and names the first row that does
not fit, with the reason:

* `hash_mismatch`: the row's content was edited;
* `prev_hash_mismatch`: the row does not follow its predecessor (a row was
  replaced together with its own hash);
* `missing_seq`: a row is gone (deleted); the event key comes from `ledger_keys`;
* `swapped`: the row holds content written at another seq (rows exchanged);
* `duplicate_seq`: two rows claim one seq;
* `head_mismatch` / `anchor_mismatch`: the tail differs from the recorded head
  (or the head was moved back: `ledger_heads` is cross-checked against the rows,
  and a trigger refuses to move it backwards) or from an exported anchor.

Every break is reported, not only the first: after a bad row the check carries on
from that row's stored hash, so one edit does not hide a second one further on,
and every stream is checked.

A superuser who rewrites a row *and every hash after it* passes `verify`; only
a head exported earlier catches that, which is what `anchor` (export the heads,
keep them outside the database) and `verify_against_anchor` are for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, TypeAdapter

from boomerang.store.chain import GENESIS, HASHED_COLUMNS, details_from_db, row_hash

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
Conn = psycopg.AsyncConnection[Any]


class BreakReason(StrEnum):
    HASH_MISMATCH = "hash_mismatch"
    PREV_HASH_MISMATCH = "prev_hash_mismatch"
    MISSING_SEQ = "missing_seq"
    SWAPPED = "swapped"
    DUPLICATE_SEQ = "duplicate_seq"
    HEAD_MISMATCH = "head_mismatch"
    ANCHOR_MISMATCH = "anchor_mismatch"


class ChainBreak(BaseModel):
    """The first row of a stream that does not verify."""

    model_config = ConfigDict(frozen=True)

    stream: str
    seq: int
    event_key: str | None
    reason: BreakReason
    detail: str

    def describe(self) -> str:
        return (
            f"stream {self.stream} seq {self.seq} (event {self.event_key}): "
            f"{self.reason.value}: {self.detail}"
        )


class VerifyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    streams_checked: int
    rows_checked: int
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


class ChainHead(BaseModel):
    """The last row of a stream at anchoring time; export it somewhere safe."""

    model_config = ConfigDict(frozen=True)

    stream: str
    seq: int
    row_hash: str
    at: datetime


HEADS = TypeAdapter(list[ChainHead])


@dataclass(slots=True)
class _StreamResult:
    rows: int
    last_seq: int
    last_hash: str
    breaks: list[ChainBreak]

    @property
    def broken(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


_SELECT_ROWS = sql.SQL(
    "SELECT {}, details::text AS details_text, row_hash FROM ledger WHERE stream = %s"
).format(sql.SQL(", ").join(sql.Identifier(c) for c in HASHED_COLUMNS if c != "details"))


async def _key_at(conn: Conn, stream: str, seq: int) -> str | None:
    cur = await conn.execute(
        "SELECT event_key FROM ledger_keys WHERE stream = %s AND seq = %s", (stream, seq)
    )
    found = await cur.fetchone()
    return None if found is None else str(found[0])


async def _written_seq(conn: Conn, event_key: str) -> int | None:
    cur = await conn.execute("SELECT seq FROM ledger_keys WHERE event_key = %s", (event_key,))
    found = await cur.fetchone()
    return None if found is None else int(found[0])


async def _check_row(conn: Conn, row: dict[str, Any], expected: int, prev: str) -> ChainBreak | None:
    stream, seq, key = row["stream"], row["seq"], row["event_key"]
    if seq < expected:
        return ChainBreak(
            stream=stream, seq=seq, event_key=key, reason=BreakReason.DUPLICATE_SEQ,
            detail=f"seq {seq} appears again after seq {expected - 1}",
        )  # fmt: skip
    if seq > expected:
        return ChainBreak(
            stream=stream, seq=expected, event_key=await _key_at(conn, stream, expected),
            reason=BreakReason.MISSING_SEQ, detail=f"row {expected} is missing (next is {seq})",
        )  # fmt: skip
    content = {**row, "details": details_from_db(row["details_text"])}
    if row_hash(content) != row["row_hash"]:
        written = await _written_seq(conn, key)
        if written is not None and written != seq:
            return ChainBreak(
                stream=stream, seq=seq, event_key=key, reason=BreakReason.SWAPPED,
                detail=f"holds the event written as seq {written}",
            )  # fmt: skip
        return ChainBreak(
            stream=stream, seq=seq, event_key=key, reason=BreakReason.HASH_MISMATCH,
            detail="content does not match row_hash (edited)",
        )  # fmt: skip
    if row["prev_hash"] != prev:
        return ChainBreak(
            stream=stream, seq=seq, event_key=key, reason=BreakReason.PREV_HASH_MISMATCH,
            detail="prev_hash is not the previous row's hash (row replaced)",
        )  # fmt: skip
    return None


async def _verify_stream(conn: Conn, stream: str, *, upto: int | None = None) -> _StreamResult:
    cur = await conn.execute("SELECT seq, row_hash FROM ledger_retention_cuts WHERE stream = %s", (stream,))
    cut = await cur.fetchone()
    expected, prev = (int(cut[0]) + 1, str(cut[1])) if cut else (1, GENESIS)
    result = _StreamResult(rows=0, last_seq=expected - 1, last_hash=prev, breaks=[])
    limit = sql.SQL(" AND seq <= %s" if upto is not None else "")
    query = _SELECT_ROWS + limit + sql.SQL(" ORDER BY seq, row_hash")
    params = (stream, upto) if upto is not None else (stream,)
    async with conn.cursor(row_factory=dict_row) as rows:
        await rows.execute(query, params)
        async for row in rows:
            broken = await _check_row(conn, row, expected, prev)
            if broken is not None:
                result.breaks.append(broken)
                if broken.reason is BreakReason.DUPLICATE_SEQ:
                    continue  # the row already counted at this seq stands
                if broken.reason is BreakReason.MISSING_SEQ:
                    # Resynchronise on the row that is there, judged against its own link.
                    expected, prev = row["seq"], row["prev_hash"]
                    again = await _check_row(conn, row, expected, prev)
                    if again is not None:
                        result.breaks.append(again)
            result.rows += 1
            # Go on from the stored hash, so a later, separate break is found as well.
            prev = result.last_hash = row["row_hash"]
            result.last_seq = expected
            expected += 1
    if upto is None:
        head = await _check_head(conn, stream, result)
        if head is not None:
            result.breaks.append(head)
    return result


async def _check_head(conn: Conn, stream: str, result: _StreamResult) -> ChainBreak | None:
    cur = await conn.execute("SELECT seq, row_hash FROM ledger_heads WHERE stream = %s", (stream,))
    head = await cur.fetchone()
    if head is None:
        return None
    seq, digest = int(head[0]), str(head[1])
    if seq > result.last_seq:
        missing = result.last_seq + 1
        return ChainBreak(
            stream=stream, seq=missing, event_key=await _key_at(conn, stream, missing),
            reason=BreakReason.MISSING_SEQ,
            detail=f"the head is at seq {seq} but the rows end at {result.last_seq}",
        )  # fmt: skip
    if seq == result.last_seq and digest != result.last_hash:
        return ChainBreak(
            stream=stream, seq=seq, event_key=await _key_at(conn, stream, seq),
            reason=BreakReason.HEAD_MISMATCH, detail="last row's hash differs from the head",
        )  # fmt: skip
    if seq < result.last_seq:
        return ChainBreak(
            stream=stream, seq=seq, event_key=await _key_at(conn, stream, seq),
            reason=BreakReason.HEAD_MISMATCH,
            detail=f"the head was moved back to seq {seq} but the rows go on to {result.last_seq}",
        )  # fmt: skip
    return None


async def _snapshot(conn: Conn) -> None:
    """One consistent view: appends landing mid-check must not look like gaps."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


async def _streams(conn: Conn, run_id: str | None) -> list[str]:
    if run_id is not None:
        return [run_id]
    cur = await conn.execute(
        "SELECT stream FROM ledger_heads UNION SELECT DISTINCT stream FROM ledger ORDER BY 1"
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def verify(pool: Pool, run_id: str | None = None) -> VerifyReport:
    """Recompute the chain of `run_id` (or of every stream); report every break of each."""
    rows, breaks = 0, []
    async with pool.connection() as conn, conn.transaction():
        await _snapshot(conn)
        streams = await _streams(conn, run_id)
        for stream in streams:
            result = await _verify_stream(conn, stream)
            rows += result.rows
            breaks.extend(result.breaks)
    return VerifyReport(streams_checked=len(streams), rows_checked=rows, breaks=breaks)


async def anchor(pool: Pool) -> list[ChainHead]:
    """The last row of every stream, read from the chain itself (not from `ledger_heads`,
    which the writer may move): `HEADS.dump_json(heads)` to export."""
    at = datetime.now(UTC)
    async with pool.connection() as conn, conn.transaction():
        await _snapshot(conn)
        cur = await conn.execute(
            "SELECT DISTINCT ON (stream) stream, seq, row_hash FROM ledger ORDER BY stream, seq DESC"
        )
        return [ChainHead(stream=s, seq=q, row_hash=h, at=at) for s, q, h in await cur.fetchall()]


async def _check_anchor(conn: Conn, head: ChainHead) -> tuple[int, ChainBreak | None]:
    cur = await conn.execute(
        "SELECT seq, row_hash FROM ledger_retention_cuts WHERE stream = %s", (head.stream,)
    )
    cut = await cur.fetchone()
    if cut is not None and head.seq <= int(cut[0]):
        if head.seq == int(cut[0]) and head.row_hash != cut[1]:
            return 0, ChainBreak(
                stream=head.stream, seq=head.seq, event_key=None,
                reason=BreakReason.ANCHOR_MISMATCH, detail="retention cut differs from the anchor",
            )  # fmt: skip
        return 0, None  # anchored rows have expired; nothing left to compare
    result = await _verify_stream(conn, head.stream, upto=head.seq)
    if result.last_seq < head.seq:
        missing = result.last_seq + 1
        return result.rows, ChainBreak(
            stream=head.stream, seq=missing, event_key=await _key_at(conn, head.stream, missing),
            reason=BreakReason.MISSING_SEQ, detail=f"anchored up to seq {head.seq}",
        )  # fmt: skip
    if result.last_hash != head.row_hash and result.broken is None:
        return result.rows, ChainBreak(
            stream=head.stream, seq=head.seq, event_key=await _key_at(conn, head.stream, head.seq),
            reason=BreakReason.ANCHOR_MISMATCH,
            detail="chain was rewritten: its hash differs from the anchored one",
        )  # fmt: skip
    if result.last_hash != head.row_hash:
        # Rows inside the anchored range are broken as well: name the anchor's part too.
        return result.rows, ChainBreak(
            stream=head.stream, seq=head.seq, event_key=await _key_at(conn, head.stream, head.seq),
            reason=BreakReason.ANCHOR_MISMATCH,
            detail=f"differs from the anchored hash (and {len(result.breaks)} break(s) before it)",
        )  # fmt: skip
    return result.rows, None


async def verify_against_anchor(pool: Pool, heads: Sequence[ChainHead]) -> VerifyReport:
    """Prove each stream unchanged up to its anchored head (rows after it are not judged)."""
    async with pool.connection() as conn, conn.transaction():
        await _snapshot(conn)
        return await check_anchors(conn, heads)


async def check_anchors(conn: Conn, heads: Sequence[ChainHead]) -> VerifyReport:
    """`verify_against_anchor` inside the caller's transaction."""
    rows, breaks = 0, []
    for head in heads:
        checked, broken = await _check_anchor(conn, head)
        rows += checked
        if broken is not None:
            breaks.append(broken)
    return VerifyReport(streams_checked=len(heads), rows_checked=rows, breaks=breaks)
