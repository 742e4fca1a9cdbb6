"""Shared fixtures: real PostgreSQL, real Temporal servers and an S3 server (tests.fixtures.*)."""

from __future__ import annotations

import os
import sys

import pytest

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.temporal", "tests.fixtures.s3"]

_session: pytest.Session | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session
    _session = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio can abort during interpreter finalization (sdk-python #300); once
    # pytest has reported, leave with pytest's own status instead of risking that.
    if _session is not None and os.environ.get("BOOMERANG_TEST_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(_session.exitstatus))
