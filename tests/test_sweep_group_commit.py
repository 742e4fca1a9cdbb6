"""Group commit for sweep chunks (activities/group_commit.py): writes within the linger share
one call per key; a bad item fails alone, an outage fails the group at once; a cancelled
caller's write still lands."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from activities.group_commit import GroupCommit, LingeringSink
from boomerang.models.events import EventKind, RunEvent
from boomerang.store.errors import is_outage

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    async def write(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, items))
        await asyncio.sleep(0)
        if any(i < 0 for i in items):
            raise ValueError(f"bad item in {items}")
        return [i * 10 for i in items]


async def test_puts_within_the_linger_share_one_write_per_key() -> None:
    store = Store()
    commit: GroupCommit[str, int, int] = GroupCommit(store.write, linger_s=0.01)
    results = await asyncio.gather(*(commit.put("a" if i % 2 else "b", i) for i in range(6)))
    assert results == [0, 10, 20, 30, 40, 50]
    assert sorted(store.calls) == [("a", [1, 3, 5]), ("b", [0, 2, 4])]


async def test_a_bad_item_fails_alone() -> None:
    store = Store()
    commit: GroupCommit[str, int, int] = GroupCommit(store.write, linger_s=0.01)
    results = await asyncio.gather(*(commit.put("a", i) for i in (1, -1, 2)), return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)
    assert store.calls[0] == ("a", [1, -1, 2]) and ("a", [1]) in store.calls


async def test_a_cancelled_caller_does_not_stop_the_write() -> None:
    store = Store()
    commit: GroupCommit[str, int, int] = GroupCommit(store.write, linger_s=0.01)
    waiting = asyncio.ensure_future(commit.put("a", 7))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await commit.put("a", 8) == 80
    assert store.calls == [("a", [7, 8])]


def test_a_negative_linger_is_refused() -> None:
    with pytest.raises(ValueError, match="linger_s"):
        GroupCommit(Store().write, linger_s=-1)


async def test_when_the_database_is_down_the_group_fails_at_once() -> None:
    # An outage fails every write alike: trying each item alone would wait for it once per item.
    calls: list[list[int]] = []

    async def down(key: str, items: list[int]) -> list[int]:
        calls.append(items)
        raise psycopg.OperationalError("connection refused")

    commit: GroupCommit[str, int, int] = GroupCommit(down, linger_s=0.01, isolate=lambda e: not is_outage(e))
    results = await asyncio.gather(*(commit.put("a", i) for i in (1, 2, 3)), return_exceptions=True)
    assert all(isinstance(r, psycopg.OperationalError) for r in results)
    assert calls == [[1, 2, 3]]
    assert is_outage(PoolTimeout("no connection in 30 s")) and not is_outage(psycopg.DataError("bad"))


async def test_a_lingering_sink_does_not_retry_an_outage_event_by_event() -> None:
    class DownStore:
        calls = 0

        async def record(self, event: RunEvent) -> bool:
            raise AssertionError("batches go through record_many")

        async def record_many(self, events: Sequence[RunEvent]) -> list[bool]:
            self.calls += 1
            raise PoolTimeout("couldn't get a connection after 30.00 sec")

    store = DownStore()
    sink = LingeringSink(store, linger_s=0.01)
    events = [
        RunEvent(event_key=f"k/{i}", run_id="r", tenant="t", kind=EventKind.TASK_STARTED, occurred_at=NOW)
        for i in range(5)
    ]
    results = await asyncio.gather(*(sink.record(e) for e in events), return_exceptions=True)
    assert all(isinstance(r, PoolTimeout) for r in results) and store.calls == 1
