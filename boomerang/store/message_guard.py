"""Keep Ledger-only facts out of the customer-facing Charter message.

Charter messages are written by our own code, but code gets things wrong: an
f-string with a provider name, a traceback pasted into a failure message. Before
a message reaches the Charter it is compared with

* the blocked field names (`gpu_cost`, `provider`, `model_name`, `traceback`...),
* every value the event carries in Ledger-only fields (cost provider/model/GPU
  type/price table, approver, non-zero amounts, every key and scalar under
  `details` at any depth),

after folding both sides to a skeleton: NFKC, case folding, diacritics and
invisible characters removed, Unicode confusables (TR39 data, e.g. Cyrillic
U+043E or mathematical bold U+1D41C) mapped to their Latin look-alike, and
punctuation/spaces dropped, so "GPU-Cost" spelt with a zero-width joiner and a
Cyrillic o still reads as `gpucost`. On any hit the message is
replaced with a fixed one for the event kind (or "" if even that would match):
failing closed costs only a less specific message; the Ledger keeps the original.

Values shorter than `MIN_VALUE_LEN` folded characters are not matched: a
details value such as "ok" or 7 would otherwise blank nearly every message.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from importlib import resources

from boomerang.models.events import EventKind, RunEvent

BLOCKED_NAMES: tuple[str, ...] = (
    "gpu_cost",
    "llm_cost",
    "cpu_cost",
    "memory_cost",
    "total_cost",
    "cost",
    "provider",
    "model_name",
    "gpu_seconds",
    "input_tokens",
    "output_tokens",
    "price_table_version",
    "traceback",
)
MIN_VALUE_LEN = 3

_SAFE_MESSAGES: dict[EventKind, str] = {
    EventKind.PIPELINE_STARTED: "Run started.",
    EventKind.PIPELINE_COMPLETED: "Run completed.",
    EventKind.PIPELINE_REJECTED: "Run rejected.",
    EventKind.PIPELINE_EXPIRED: "Run expired.",
    EventKind.PIPELINE_FAILED: "Run failed.",
    EventKind.PIPELINE_CANCELLED: "Run cancelled.",
    EventKind.PHASE_STARTED: "Phase started.",
    EventKind.PHASE_COMPLETED: "Phase completed.",
    EventKind.PHASE_FAILED: "Phase failed.",
    EventKind.CHECKPOINT_OPENED: "Waiting for a decision.",
    EventKind.CHECKPOINT_REMINDED: "Reminder: waiting for a decision.",
    EventKind.CHECKPOINT_EXPIRING: "The decision window closes soon.",
    EventKind.CHECKPOINT_DECIDED: "Decision recorded.",
    EventKind.CHECKPOINT_REFUSED: "Decision refused.",
    EventKind.CHECKPOINT_EXPIRED: "Decision window expired.",
    EventKind.CHECKPOINT_CANCELLED: "Decision closed: the run was cancelled.",
    EventKind.TASK_STARTED: "Task started.",
    EventKind.TASK_COMPLETED: "Task completed.",
    EventKind.TASK_FAILED: "Task failed.",
    EventKind.TASK_CANCELLED: "Task cancelled.",
    EventKind.WEBHOOK_DELIVERED: "Notification delivered.",
    EventKind.WEBHOOK_FAILED: "Notification failed.",
    EventKind.BUDGET_REACHED: "Budget limit reached.",
    EventKind.GPU_RUN_STARTED: "Command started.",
    EventKind.GPU_RUN_COMPLETED: "Command finished.",
    EventKind.GPU_RUN_FAILED: "Command could not be run.",
    EventKind.GPU_RUN_CANCELLED: "Command cancelled.",
}
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cc", "Zs", "Zl", "Zp"})


@cache
def _confusable_map() -> dict[str, str]:
    """Non-ASCII look-alike -> the ASCII letter or digit it imitates (letters win)."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    table: dict[str, str] = {}
    # Digits first, so a glyph that imitates both "0" and "o" ends up as the letter.
    targets = sorted((k for k in data if len(k) == 1 and k.isascii() and k.isalnum()), key=str.isalpha)
    for target in targets:
        for glyph in data[target]:
            char = _pre_fold(glyph["c"].strip("\u200e\u200f"))
            if len(char) == 1 and not char.isascii():
                table[char] = target.casefold()
    return table


def _pre_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in text if unicodedata.category(c) not in _DROPPED_CATEGORIES)


# Glyphs that stay ambiguous after case folding ("I" read as "l", "0" as "o"):
# merged, so the skeleton does not depend on which reading a look-alike took.
_MERGED = {"l": "i", "1": "i", "|": "i", "0": "o"}


def fold(text: str) -> str:
    """The skeleton two strings share when a reader would take them for the same word."""
    table = _confusable_map()
    return "".join(ch for c in _pre_fold(text) if (ch := _MERGED.get(m := table.get(c, c), m)).isalnum())


@cache
def _blocked_skeletons() -> tuple[str, ...]:
    return tuple(fold(name) for name in BLOCKED_NAMES)


def _scalars(value: object) -> Iterator[str]:
    """Every key and scalar under a JSON-like value, as text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _scalars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float | Decimal) and value != 0:
        yield str(value)


def ledger_only_values(event: RunEvent) -> Iterator[str]:
    """The text of every value the Charter must not repeat."""
    yield from _scalars(event.details)
    if event.approver:
        yield event.approver
    cost = event.cost
    if cost is not None:
        yield from _scalars(
            [
                cost.gpu_type,
                cost.provider,
                cost.model_name,
                cost.price_table_version,
                cost.gpu_seconds,
                cost.gpu_cost,
                cost.cpu_cost,
                cost.memory_cost,
                cost.llm_cost,
                cost.total_cost,
                cost.input_tokens,
                cost.output_tokens,
            ]
        )


def leaks(text: str, event: RunEvent) -> bool:
    """Whether `text` names a blocked field or repeats a Ledger-only value of `event`."""
    skeleton = fold(text)
    if not skeleton:
        return False
    if any(name in skeleton for name in _blocked_skeletons()):
        return True
    return any(
        len(needle) >= MIN_VALUE_LEN and needle in skeleton for needle in map(fold, ledger_only_values(event))
    )


def safe_message(event: RunEvent) -> str:
    """The event's message if it leaks nothing, else a fixed one for its kind."""
    if not leaks(event.message, event):
        return event.message
    fallback = _SAFE_MESSAGES.get(event.kind, "Run updated.")
    return "" if leaks(fallback, event) else fallback
