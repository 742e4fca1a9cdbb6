"""What can go wrong in the store, one documented exception per failure."""

from __future__ import annotations

import psycopg

from boomerang.errors import BoomerangError


class StoreError(BoomerangError):
    """Base of every error raised by `boomerang.store`."""


class MigrationChecksumError(StoreError):
    """An applied migration's file changed since it ran.

    Applied migrations are history: edit nothing that has shipped, add a new
    numbered file instead.
    """


class MigrationOrderError(StoreError):
    """Two migration files share a version number, or a name is malformed."""


class InvalidEventError(StoreError):
    """An event cannot be recorded as given (e.g. an unknown decision); retrying won't help."""


class RetentionError(StoreError):
    """A retention request was refused (e.g. anchored heads that do not match the chain)."""


def is_outage(exc: BaseException) -> bool:
    """The database could not be reached (down, restarting, no connection in time): every
    write of the batch would fail alike, so none is worth trying alone."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)  # PoolTimeout included
