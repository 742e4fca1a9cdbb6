"""Chunk sizes (workflows/sweep_chunking.py): the lanes never exceed what is free, a
chunk lasts about CHUNK_SECONDS, the end of a segment spreads over the window."""

from __future__ import annotations

import pytest

from workflows.sweep_chunking import CHUNK_SECONDS, MAX_CHUNK_ITEMS, chunk_shape, unfinished


def test_short_items_share_the_window_in_a_few_chunks_of_about_a_second() -> None:
    lanes, items = chunk_shape(window=50, free=50, mean_s=0.1, left=1000)
    assert (lanes, items) == (10, 200)  # five chunks fill the window; each lane runs 20 items
    assert items / lanes * 0.1 == pytest.approx(CHUNK_SECONDS)


def test_long_items_go_one_per_chunk() -> None:
    # A slow item never holds back a faster neighbour's lane, and the stack's cost is small beside it.
    assert chunk_shape(window=50, free=50, mean_s=10, left=1000) == (1, 1)
    assert chunk_shape(window=50, free=50, mean_s=1.4, left=1000) == (1, 1)


def test_lanes_never_exceed_the_free_window() -> None:
    for window in (1, 2, 3, 7, 50, 1000):
        for free in range(1, window + 1, max(1, window // 7)):
            for mean_s in (0.0, 0.001, 0.05, 0.3, 2.0):
                for left in (1, 2, 9, 100, 10_000):
                    lanes, items = chunk_shape(window=window, free=free, mean_s=mean_s, left=left)
                    assert 1 <= lanes <= min(free, items)
                    assert 1 <= items <= min(left, MAX_CHUNK_ITEMS)


def test_the_end_of_a_segment_spreads_over_the_window() -> None:
    # 100 items left, window 50: a chunk takes its lanes' share (2 rounds), not 20 rounds.
    assert chunk_shape(window=50, free=50, mean_s=0.1, left=100) == (10, 20)
    assert chunk_shape(window=50, free=10, mean_s=0.1, left=3) == (3, 3)


def test_work_still_in_flight_counts_in_the_share() -> None:
    # Window 6 over 30 items: three chunks of 2 lanes, 10 items each, all ending together.
    assert chunk_shape(window=6, free=6, mean_s=0.1, left=30) == (2, 10)
    assert chunk_shape(window=6, free=4, mean_s=0.1, left=20, in_flight=10) == (2, 10)
    assert chunk_shape(window=6, free=2, mean_s=0.1, left=10, in_flight=20) == (2, 10)
    # A chunk of 10 items on 2 lanes, 0.3 s old, items of 0.1 s: 4 items left to run.
    assert unfinished(10, 2, 0.3, 0.1) == pytest.approx(4)
    assert unfinished(10, 2, 9.0, 0.1) == 0


def test_instant_items_are_bounded_per_chunk() -> None:
    assert chunk_shape(window=50, free=50, mean_s=0.0, left=100_000) == (10, MAX_CHUNK_ITEMS)


def test_stop_on_failure_runs_one_round() -> None:
    # Every item of the chunk starts at once: after a failure nothing new starts.
    assert chunk_shape(window=50, free=50, mean_s=0.1, left=1000, one_round=True) == (10, 10)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="need window"):
        chunk_shape(window=4, free=0, mean_s=1, left=3)
