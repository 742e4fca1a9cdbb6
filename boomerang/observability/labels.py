"""Label values that are safe to export: identifiers only, never free text.

A label value comes from a name the system defines (a function, a checkpoint, a
tenant id, an outcome). Anything that does not look like an identifier — a brief,
a comment, a token, a URL — becomes `other`, so no free text can reach a scrape.
"""

from __future__ import annotations

import re

OTHER = "other"
ALL = "all"
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Shaped like credentials even though they match the identifier pattern.
_SECRETISH = re.compile(r"^(whsec_|bmr_|sk-|sk_|ak-|ghp_|xox)", re.I)


def label(value: object) -> str:
    """`value` if it is a short identifier, `other` if not, `none` when missing."""
    if value is None or value == "":
        return "none"
    text = str(value)
    if not _IDENTIFIER.fullmatch(text) or _SECRETISH.match(text):
        return OTHER
    return text
