"""`boomerang tokens create/revoke/list` and `boomerang webhooks dead-letters` against real Postgres."""

from __future__ import annotations

import uuid

import pytest
import typer
from typer.testing import CliRunner

from boomerang.cli.api import tokens_app, webhooks_app
from boomerang.store.tokens import token_prefix

cli = typer.Typer()
cli.add_typer(tokens_app, name="tokens")
cli.add_typer(webhooks_app, name="webhooks")


@pytest.fixture
def runner(pg_conninfo: str) -> CliRunner:
    return CliRunner(env={"DATABASE_URL": pg_conninfo})


def test_a_token_is_printed_once_then_listed_without_its_secret_and_revoked(runner: CliRunner) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    created = runner.invoke(
        cli, ["tokens", "create", "--tenant", tenant, "--role", "viewer", "--name", "dash"]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    prefix = token_prefix(token)
    assert prefix is not None

    again = runner.invoke(cli, ["tokens", "create", "--tenant", tenant, "--name", "dash"])
    assert again.exit_code == 2 and "already has a live token named 'dash'" in again.output

    listed = runner.invoke(cli, ["tokens", "list", "--tenant", tenant])
    assert listed.exit_code == 0
    assert f"{tenant}  dash  viewer  bmr_{prefix}_...  live" in listed.stdout
    assert token not in listed.stdout

    revoked = runner.invoke(cli, ["tokens", "revoke", prefix, "--tenant", tenant])
    assert revoked.exit_code == 0 and "revoked dash" in revoked.stdout
    assert runner.invoke(cli, ["tokens", "revoke", "dash", "--tenant", tenant]).exit_code == 1
    # The name is free again once its token is revoked.
    assert runner.invoke(cli, ["tokens", "create", "--tenant", tenant, "--name", "dash"]).exit_code == 0


def test_dead_letters_lists_nothing_for_a_quiet_tenant(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["webhooks", "dead-letters", "--tenant", f"quiet-{uuid.uuid4().hex[:6]}"])
    assert result.exit_code == 0 and "no dead letters" in result.stdout
