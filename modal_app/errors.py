"""The root of every error Boomerang raises, and the compute layer's own.

The root lives here, in the compute layer, because Modal containers carry only
`modal_app`; `boomerang.errors` re-exports it, and every other error of the
project derives from it (with the standard base it is caught as, where one fits):

    BoomerangError
    ├── PermanentError         a compute failure no retry can fix (bad input, refused key)
    ├── ComputeError           a compute call failed (activities/compute.py)
    ├── StoreError             Postgres, migrations, the Ledger (boomerang/store/errors.py)
    ├── InvalidDecisionError, UnknownRunError, ...  what a front door tells its caller
    └── DevStackError, ...     the embedded stack, binaries, settings
"""

from __future__ import annotations


class BoomerangError(Exception):
    """Base of every error Boomerang raises; its message says what to do about it."""


class PermanentError(BoomerangError):
    """A failure no retry can fix (bad input, rejected credentials). Base for domain errors."""
