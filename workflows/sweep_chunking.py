"""How many items a sweep chunk carries, and how many lanes it may run at once: pure.

Every chunk costs the stack about what one item did before (an activity through the
Temporal server, a workflow task to take its result), so a chunk of k items divides
that cost by k. Three forces size it, all from the mean item duration the sweep has
observed (the spec's `expected_seconds` until the first results come back):

- a chunk should last about `CHUNK_SECONDS`: long enough that what a chunk's end costs
  its lanes (the last round's tail, the round trip to the next chunk: about 0.1 s here)
  is a small share of it, short enough that `done` in the progress moves every couple
  of seconds (bench_sweep, 1,000 items of 100 ms at window 50: 1.27x and 1.33x the
  direct loop with 1 s chunks, 1.14x to 1.17x with 2 s);
- lanes per chunk: as many as one lane's items take `CHUNK_SECONDS` (1 for items of
  1.4 s or more, so long items of uneven length never wait for a slow neighbour), and
  at most a `GROUPS`th of the window, so several chunks share it and their tails and
  round trips do not line up;
- a chunk takes no more than its lanes' share of the work left in the segment (a
  batch, or a run before continue-as-new): the items not yet dispatched plus those the
  chunks in flight have not run yet (estimated from their age), so near the end the
  last items spread over the window instead of queueing in one chunk, and the chunks
  of a segment end together.
"""

from __future__ import annotations

import math

CHUNK_SECONDS = 2.0
GROUPS = 5
# Bound a chunk's activity input and result, far under Temporal's 2 MB payload limit:
# a grid item is a few hundred bytes; explicit items may be larger (1 MiB in all).
MAX_CHUNK_ITEMS = 250
MAX_CHUNK_BYTES = 256 * 1024
# A failed item is retried inside its chunk on Temporal's default schedule (1 s, doubling).
BACKOFF_S, BACKOFF_MAX_S = 1.0, 60.0


def chunk_shape(
    *, window: int, free: int, mean_s: float, left: int, in_flight: float = 0, one_round: bool = False
) -> tuple[int, int]:
    """(lanes, items) of the next chunk: `free` lanes of `window` are unused, `left` items
    of the segment are not dispatched, about `in_flight` dispatched ones have not run,
    items take `mean_s` on average; `one_round`: one item a lane, all started at once
    (on_item_failure=stop: after a failure nothing new starts, as with an activity per item)."""
    if min(window, free, left) < 1:
        raise ValueError(f"need window, free and left >= 1; got {window}, {free}, {left}")
    per_lane = max(1, round(CHUNK_SECONDS / max(mean_s, 1e-3)))  # items one lane runs in CHUNK_SECONDS
    lanes = min(free, per_lane, math.ceil(window / GROUPS))
    rounds = 1 if one_round else per_lane
    share = lanes * math.ceil((left + in_flight) / window)
    items = min(lanes * rounds, share, left, MAX_CHUNK_ITEMS)
    return min(lanes, items), items


def unfinished(items: int, lanes: int, age_s: float, mean_s: float) -> float:
    """About how many items of a chunk dispatched `age_s` ago have not run yet."""
    return max(0.0, items - lanes * age_s / max(mean_s, 1e-3))
