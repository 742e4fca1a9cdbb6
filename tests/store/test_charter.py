# ruff: noqa: RUF001  (look-alike letters are what these tests are made of)
"""Nothing Ledger-only reaches the Charter, however it is spelt.

Blocked names and Ledger-only values are injected into messages in any case,
with zero-width characters, separators and look-alike letters drawn from the
table below, which is written here independently of the implementation's
Unicode data: a look-alike the implementation forgets makes these tests fail.
"""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boomerang.models.events import LEDGER_ONLY_KINDS, CostBreakdown, EventKind, RunEvent
from boomerang.store.charter import CharterRow, charter_row
from boomerang.store.message_guard import MIN_VALUE_LEN
from boomerang.store.queries import charter_for_run
from boomerang.store.recorder import EventStore, open_pool
from tests.store import new_run

BLOCKED = ("gpu_cost", "llm_cost", "total_cost", "provider", "model_name", "cost", "traceback")
LOOKALIKES = {
    "a": "аα𝐚ａ𝒂",
    "c": "сϲ𝐜ｃ",
    "d": "ԁ𝐝ｄ",
    "e": "еҽ𝐞ｅ",
    "g": "ɡ𝐠ｇ",
    "h": "һ𝐡ｈ",
    "i": "іɩ𝐢ｉ",
    "k": "κ𝐤ｋ",
    "l": "ӏ𝐥ｌ",
    "m": "𝐦ｍ",
    "n": "𝐧ｎ",
    "o": "оο𝐨ｏ",
    "p": "рρ𝐩ｐ",
    "r": "𝐫ｒ",
    "s": "ѕ𝐬ｓ",
    "t": "𝐭ｔ",
    "u": "𝐮ｕ",
    "v": "ν𝐯ｖ",
    "x": "х𝐱ｘ",
    "y": "у𝐲ｙ",
}
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff")
_BACK = {glyph: latin for latin, glyphs in LOOKALIKES.items() for glyph in glyphs}
ALPHABET = st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/éß中" + "".join(LOOKALIKES.values())
)


def skeleton(text: str) -> str:
    """The test's own notion of 'reads the same', built from the table above."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(
        c for ch in text if (c := _BACK.get(ch, ch)).isalnum() and unicodedata.category(ch) != "Mn"
    )


@st.composite
def disguised(draw: st.DrawFn, text: str) -> str:
    """`text` in random case, with look-alikes, invisible characters and separators."""
    rnd = draw(st.randoms(use_true_random=True))  # seeded by one draw: fast
    out = []
    for ch in text:
        glyphs = LOOKALIKES.get(ch.lower(), "")
        choice = rnd.randrange(4)
        if choice == 1 and glyphs:
            ch = rnd.choice(glyphs)
        elif choice == 2:
            ch = ch.upper()
        out.append(ch)
        if rnd.randrange(6) == 0:
            out.append(rnd.choice([*INVISIBLE, " ", "-", "."]))
    return "".join(out)


words = st.text(ALPHABET, min_size=1, max_size=12)
keys = st.one_of(words, st.sampled_from(BLOCKED).flatmap(disguised))
scalars = st.one_of(
    words,
    st.sampled_from(BLOCKED),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=5,
)
money = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False)
costs = st.builds(
    CostBreakdown,
    gpu_seconds=money,
    gpu_type=st.none() | words,
    gpu_cost=money,
    llm_cost=money,
    provider=st.none() | words,
    model_name=st.none() | words,
    input_tokens=st.integers(0, 10**6),
    price_table_version=st.none() | words,
)


def _needles(event: RunEvent) -> list[str]:
    """Every Ledger-only value of `event` as text (keys and scalars at any depth)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                found.append(str(k))
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            found.append(value)
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool) and value:
            found.append(str(value))

    walk(event.details)
    walk(event.approver)
    if event.cost is not None:
        c = event.cost
        walk([c.provider, c.model_name, c.gpu_type, c.price_table_version, c.gpu_seconds,
              c.gpu_cost, c.llm_cost, c.total_cost, c.input_tokens])  # fmt: skip
    return found


@st.composite
def leaky_events(draw: st.DrawFn) -> RunEvent:
    details = draw(st.dictionaries(keys, json_values, max_size=4))
    cost = draw(st.none() | costs)
    approver = draw(st.none() | words)
    run_id = new_run()  # not drawn: a replayed example must not reuse a recorded key
    base = RunEvent(
        event_key=f"{run_id}/event",
        run_id=run_id,
        tenant="tenant-prop",
        kind=draw(st.sampled_from(EventKind)),
        occurred_at=datetime(2025, 6, 1, tzinfo=UTC),
        checkpoint="gate",
        decision="approve",
        approver=approver,
        cost=cost,
        details=details,
    )
    values = [v for v in _needles(base) if v.strip()]
    parts = draw(
        st.lists(
            st.one_of(
                words,
                st.sampled_from(BLOCKED).flatmap(disguised),
                *([st.sampled_from(values).flatmap(disguised)] if values else []),
            ),
            max_size=6,
        )
    )
    return base.model_copy(update={"message": " ".join(parts)[:2000]})


def assert_no_leak(row: CharterRow, event: RunEvent) -> None:
    message = skeleton(row.message)
    for name in BLOCKED:
        assert skeleton(name) not in message, (name, row.message)
    for value in _needles(event):
        needle = skeleton(value)
        if len(needle) >= MIN_VALUE_LEN:
            assert needle not in message, (value, row.message)


@settings(max_examples=1000, deadline=None)
@given(leaky_events())
def test_charter_row_never_carries_ledger_only_values(event: RunEvent) -> None:
    row = charter_row(event)
    assert set(CharterRow.model_fields) == {
        "event_key", "run_id", "tenant", "project_id", "event", "status", "phase",
        "checkpoint", "boomer_ang_id", "task_type", "execution_time_s", "message",
        "deadline", "decision", "occurred_at",
    }  # fmt: skip
    assert_no_leak(row, event)


def test_clean_message_is_kept() -> None:
    event = RunEvent(
        event_key="k", run_id="r", tenant="t", kind=EventKind.PHASE_COMPLETED,
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC), message="Desirability phase done.",
        cost=CostBreakdown(provider="acme", model_name="giant-7"), details={"gpu": "H100"},
    )  # fmt: skip
    assert charter_row(event).message == "Desirability phase done."


def test_disguised_provider_is_replaced() -> None:
    event = RunEvent(
        event_key="k", run_id="r", tenant="t", kind=EventKind.TASK_FAILED,
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC), message="Ａｃｍｅ\u200b-LLM timed out",
        cost=CostBreakdown(provider="acme-llm"),
    )  # fmt: skip
    assert charter_row(event).message == "Task failed."


async def test_charter_table_has_only_allowed_columns(pg_conninfo: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_conninfo) as conn:
        cur = await conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'charter' AND table_schema = 'public'"
        )
        columns: dict[str, str] = dict(await cur.fetchall())
    assert set(columns) == {*CharterRow.model_fields, "id", "recorded_at"}
    assert not {"jsonb", "json"} & set(columns.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(leaky_events(), min_size=1, max_size=3))
def test_recorded_charter_never_carries_ledger_only_values(pg_conninfo: str, events: list[RunEvent]) -> None:
    """The same property through `EventStore.record` and the customer's read path."""

    async def record_and_read() -> None:
        pool = await open_pool(pg_conninfo, min_size=1, max_size=1)
        try:
            store = EventStore(pool)
            for event in events:
                await store.record(event)
                rows = await charter_for_run(pool, event.run_id, event.tenant)
                if event.kind in LEDGER_ONLY_KINDS:
                    assert rows == []  # internal bookkeeping never reaches the customer
                    continue
                assert len(rows) == 1
                assert_no_leak(rows[0], event)
        finally:
            await pool.close()

    asyncio.run(record_and_read())
