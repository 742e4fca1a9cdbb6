"""Group commit for sweep chunks (activities/group_commit.py): writes within the linger share
one call per key; a bad item fails alone; a cancelled caller's write still lands."""

from __future__ import annotations

import asyncio

import pytest

from activities.group_commit import GroupCommit


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
