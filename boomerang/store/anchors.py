"""Anchors kept outside the database: files of chain heads, one per anchoring.

    path = write_anchor(directory, heads)       # ledger-anchor-20261126T052800Z.json, never overwritten
    heads = latest_anchor(directory)            # the newest file's heads, or None

A superuser can rewrite a chain *and* every hash after it, and `ledger_heads` with
it; what they cannot rewrite is a file they cannot reach. Point
`BOOMERANG_LEDGER_ANCHOR_DIR` at storage the database's operators cannot write (a
separate volume, an object store mount with write-once retention) and `ledger
verify` compares the chains with the newest anchor there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from boomerang.store.integrity import HEADS, ChainHead

PREFIX = "ledger-anchor-"


def write_anchor(directory: Path, heads: Sequence[ChainHead], *, now: datetime | None = None) -> Path:
    """Write `heads` to a new file (atomically: written aside, then renamed); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{PREFIX}{stamp}.json"
    tmp = directory / f".{path.name}.tmp"
    tmp.write_bytes(HEADS.dump_json(list(heads), indent=2))
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def anchor_files(directory: Path) -> list[Path]:
    """Every anchor file, oldest first (their names sort by time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"{PREFIX}*.json") if p.is_file())


def latest_anchor(directory: Path) -> tuple[Path, list[ChainHead]] | None:
    files = anchor_files(directory)
    if not files:
        return None
    return files[-1], HEADS.validate_json(files[-1].read_bytes())
