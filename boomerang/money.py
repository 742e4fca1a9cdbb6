"""Money as people read it: fixed-point USD, never scientific notation.

`Decimal` prints tiny amounts as `6.9E-7` and a zero with eight places as `0E-8`;
`usd_text` and the `Usd` field type print `0.00000069` and `0`, in text and JSON.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer


def usd_text(amount: Decimal) -> str:
    """`amount` in fixed point with its own precision; trailing zeros after 2 places dropped."""
    if amount == 0:
        return "0"
    text = format(amount, "f")
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(2, "0")
        text = f"{whole}.{frac}"
    return text


# A Decimal field that serialises to JSON as a fixed-point string.
Usd = Annotated[Decimal, PlainSerializer(usd_text, return_type=str, when_used="json")]
