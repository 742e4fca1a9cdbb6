"""`boomerang dev` as a user runs it: start, run a pipeline, Ctrl-C, start again, resume;
and as it fails: a taken port, a part that dies, a signal. Each runs it as a process on
free loopback ports and then looks for anything it left behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from boomerang.client import BoomerangClient
from boomerang.devbanner import Banner
from boomerang.devdemo import DEMO_TENANT, DemoRun
from boomerang.devstack import search_attribute_flags
from boomerang.models.decisions import DecisionInput, RunStatus
from boomerang.models.pipeline import PipelineInput
from boomerang.settings import Settings
from tests.helpers import BRIEF, wait_for_checkpoint

BOOMERANG = str(Path(sys.executable).parent / "boomerang")
BANNER_END = "Ctrl-C stops everything"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    temporal: int
    ui: int
    api: int


def _env(state: Path, ports: Ports) -> dict[str, str]:
    env = {
        **os.environ,
        "BOOMERANG_STATE_DIR": str(state),
        "BOOMERANG_TEMPORAL_ADDRESS": f"127.0.0.1:{ports.temporal}",
        "BOOMERANG_TEMPORAL_UI_PORT": str(ports.ui),
        "BOOMERANG_API_PORT": str(ports.api),
    }
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture
def ports() -> Ports:
    return Ports(_free_port(), _free_port(), _free_port())


@pytest.fixture
def state() -> Iterator[Path]:
    """A state dir outside pytest's base temp: as root, pgserver runs PostgreSQL as the
    user `pgserver` and opens the dir's parents to it, and any other pytest session
    starting meanwhile closes /tmp/pytest-of-root again (it strips group and other bits)."""
    parent = Path(tempfile.mkdtemp(prefix="boomerang-dev-test-"))
    yield parent / "state"
    shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def _listener() -> Iterator[int]:
    """A plain TCP listener on 127.0.0.1 (not a Temporal server, not an HTTP server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


# --- processes, from /proc: what `boomerang dev` started, and whether any of it is left


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()
    return int(fields[1]), fields[0], fields[19]


def _descendants(root: int) -> dict[int, str]:
    """Every process below `root`, with its start time (to tell a reused pid apart)."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = (stat[0], stat[2])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def _left_over(started: dict[int, str], state: Path) -> list[str]:
    """Processes from `started` still there (running or <defunct>), and any process whose
    command line names the state dir (Temporal's database, PostgreSQL's data dir)."""
    left = []
    for pid, when in started.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == when:
            left.append(f"{pid} ({stat[1]}) {_cmdline(pid)}")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and str(state) in _cmdline(int(entry.name)):
            left.append(f"{entry.name} {_cmdline(int(entry.name))}")
    return left


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


# --- running it


async def _run_to_exit(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        BOOMERANG, "dev", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@dataclass
class Running:
    proc: asyncio.subprocess.Process
    banner: str

    async def finish(self) -> tuple[int, str]:
        """Wait for it to exit; its exit status and what it printed after the banner."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            rest = (await self.proc.stdout.read()).decode()
            await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode, rest


@asynccontextmanager
async def _started(env: dict[str, str], *args: str) -> AsyncIterator[Running]:
    """`boomerang dev` until it prints its banner; SIGINT (if still running) on exit."""
    proc = await asyncio.create_subprocess_exec(
        BOOMERANG, "dev", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(90):
            while BANNER_END not in "".join(seen):
                line = (await proc.stdout.readline()).decode()
                assert line, f"boomerang dev exited early:\n{''.join(seen)}"
                seen.append(line)
        yield Running(proc, "".join(seen))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await proc.communicate()


@asynccontextmanager
async def _dev(env: dict[str, str], *args: str) -> AsyncIterator[str]:
    """Run `boomerang dev` until it says it is running; Ctrl-C it on exit; it must exit 0."""
    async with _started(env, "--no-demo", *args) as running:
        yield running.banner
    assert running.proc.returncode == 0, running.banner


async def test_dev_stack_runs_a_pipeline_and_resumes_it_after_a_restart(state: Path, ports: Ports) -> None:
    env = _env(state, ports)
    settings = Settings(temporal_address=f"127.0.0.1:{ports.temporal}")

    async with _dev(env) as banner:
        assert f"http://localhost:{ports.ui}/namespaces/default/workflows" in banner
        assert f"http://127.0.0.1:{ports.api}/docs" in banner
        async with httpx.AsyncClient() as http:  # the HTTP API is up beside the worker
            health = await http.get(f"http://127.0.0.1:{ports.api}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        client = await BoomerangClient.connect(settings)
        run_id = await client.start_pipeline(PipelineInput(tenant="acme", project_id="p", brief=BRIEF))
        await wait_for_checkpoint(client, run_id, "approve_founders_brief", timeout_s=60)
        await client.decide(run_id, DecisionInput(checkpoint="approve_founders_brief", approver="alice"))
        await wait_for_checkpoint(client, run_id, "approve_customer_profile", timeout_s=60)

    assert (state / "temporal" / "temporal.db").exists()

    async with _dev(env):
        client = await BoomerangClient.connect(settings)
        status = await client.status(run_id)
        assert status.status is RunStatus.AWAITING_APPROVAL
        assert [cp.name for cp in status.pending] == ["approve_customer_profile"]
        assert [d.checkpoint for d in status.decisions] == ["approve_founders_brief"]
        pending = await client.pending_approvals(tenant="acme")
        assert [(p.run_id, p.checkpoint.name) for p in pending] == [(run_id, "approve_customer_profile")]


@pytest.mark.parametrize(
    ("taken", "what", "moved_by"),
    [
        ("temporal", "Temporal gRPC", "--temporal-port or BOOMERANG_TEMPORAL_ADDRESS"),
        ("ui", "Temporal Web UI", "--ui-port or BOOMERANG_TEMPORAL_UI_PORT"),
        ("api", "HTTP API", "--api-port or BOOMERANG_API_PORT"),
    ],
)
async def test_a_taken_port_is_one_true_line_and_nothing_is_started(
    state: Path, ports: Ports, taken: str, what: str, moved_by: str
) -> None:
    with _listener() as busy:
        env = _env(state, Ports(**{**ports.__dict__, taken: busy}))
        code, out = await _run_to_exit(env)
    assert code == 1
    assert out.splitlines() == [
        f"boomerang dev: port {busy} ({what}) on 127.0.0.1 is already in use; "
        f"stop what holds it or pick another port with {moved_by}"
    ]
    assert "Temporal server is running" not in out  # the listener was not one
    assert not (state / "temporal").exists() and not (state / "postgres").exists()
    assert _left_over({}, state) == []


async def test_the_port_flags_move_the_ports(state: Path, ports: Ports) -> None:
    with _listener() as busy:
        env = _env(state, Ports(busy, busy, busy))  # every configured port is taken ...
        flags = [
            "--temporal-port",
            str(ports.temporal),
            "--ui-port",
            str(ports.ui),
            "--api-port",
            str(ports.api),
        ]
        async with _dev(env, *flags) as banner:  # ... and the flags move all three
            assert f"--address 127.0.0.1:{ports.temporal} " in banner
            assert f"http://localhost:{ports.ui}/" in banner and f"http://127.0.0.1:{ports.api}/" in banner


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_ends_every_child_postgres_included(
    state: Path, ports: Ports, sig: signal.Signals
) -> None:
    async with _started(_env(state, ports), "--no-demo") as running:
        children = _descendants(running.proc.pid)
        assert any("postgres -D" in _cmdline(pid) for pid in children), "PostgreSQL is not a child"
        assert any("temporal server start-dev" in _cmdline(pid) for pid in children)
        running.proc.send_signal(sig)
        code, _ = await running.finish()
    assert code == 0
    assert _left_over(children, state) == []


async def test_a_signal_while_starting_stops_what_was_started(state: Path, ports: Ports) -> None:
    proc = await asyncio.create_subprocess_exec(
        BOOMERANG, "dev", "--no-demo", env=_env(state, ports),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    children: dict[int, str] = {}
    async with asyncio.timeout(60):  # Temporal is up, PostgreSQL is starting: interrupt
        while not (state / "postgres").exists():
            children |= _descendants(proc.pid)
            await asyncio.sleep(0.02)
    children |= _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    assert BANNER_END not in out.decode()
    assert _left_over(children, state) == []


async def test_a_part_that_dies_stops_every_part_with_one_line(state: Path, ports: Ports) -> None:
    async with _started(_env(state, ports), "--no-demo") as running:
        children = _descendants(running.proc.pid)
        (temporal,) = [pid for pid in children if "temporal server start-dev" in _cmdline(pid)]
        os.kill(temporal, signal.SIGKILL)
        code, rest = await running.finish()
    assert code == 1
    assert rest.splitlines()[-1] == (
        "boomerang dev: the Temporal dev server exited (killed by SIGKILL); everything was stopped; "
        f"see {state / 'temporal' / 'temporal.log'}"
    )
    assert _left_over(children, state) == []


async def test_a_restart_does_not_start_a_second_demo_run(state: Path, ports: Ports) -> None:
    env = _env(state, ports)
    async with _started(env) as first:
        (line,) = [line for line in first.banner.splitlines() if "Demo run:" in line]
        run_id = line.split()[2]
        assert "started now" in line
    async with _started(env) as second:
        assert (
            f"Demo run:        {run_id} (tenant demo; already in flight, not started again)" in second.banner
        )
        client = await BoomerangClient.connect(Settings(temporal_address=f"127.0.0.1:{ports.temporal}"))
        runs = [w.id async for w in client.temporal.list_workflows(f'BoomerangTenant="{DEMO_TENANT}"')]
        assert runs == [run_id]
        # The banner's token example is for the demo's tenant: its token sees the demo run.
        assert f"tokens create --tenant {DEMO_TENANT} " in second.banner


def test_the_banner_commands_work_when_copied(tmp_path: Path) -> None:
    demo = DemoRun("vp-clinic-billing-1234abcd", started_now=True)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("boomerang", "temporal", "activate"):
        (bin_dir / name).touch(mode=0o755)
    moved = Banner(
        ui_url="http://localhost:9233", api_url="http://127.0.0.1:9787", temporal_address="127.0.0.1:9233",
        state_dir=tmp_path / "state", demo=demo, bin_dir=bin_dir,
    ).render()  # fmt: skip
    assert moved.count("--address 127.0.0.1:9233 --workflow-id vp-clinic-billing-1234abcd") == 2
    assert "export BOOMERANG_TEMPORAL_ADDRESS=127.0.0.1:9233" in moved
    assert f"export BOOMERANG_STATE_DIR={tmp_path / 'state'}" in moved
    # Not on PATH: the venv's full paths, and how to activate it.
    assert (
        f"{bin_dir / 'boomerang'} decide vp-clinic-billing-1234abcd approve_founders_brief approve" in moved
    )
    assert f"{bin_dir / 'temporal'} workflow signal" in moved
    assert f"source {bin_dir / 'activate'}" in moved
    assert f"TOKEN=$({bin_dir / 'boomerang'} tokens create --tenant demo --name alice)" in moved
    assert "Inbox:           http://127.0.0.1:9787/inbox" in moved  # where approvers sign in

    default = Banner(
        ui_url="http://localhost:8233", api_url="http://127.0.0.1:8787", temporal_address="127.0.0.1:7233",
        state_dir=Path(".boomerang"), demo=demo, bin_dir=bin_dir,
    ).render()  # fmt: skip
    assert "--address" not in default and "BOOMERANG_TEMPORAL_ADDRESS" not in default
    assert f"In another shell, from {Path.cwd()}:" in default


def test_search_attributes_are_registered_with_their_types() -> None:
    flags = search_attribute_flags()
    pairs = [flags[i + 1] for i in range(0, len(flags), 2)]
    assert pairs == [
        "BoomerangStatus=Keyword",
        "BoomerangPhase=Keyword",
        "BoomerangAwaiting=KeywordList",
        "BoomerangTenant=Keyword",
    ]
