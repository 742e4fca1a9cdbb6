"""What `boomerang dev` prints once everything is up: commands that work when copied.

Each command is written for the stack as it was started: `--address` on the
`temporal` commands and an `export BOOMERANG_TEMPORAL_ADDRESS` when Temporal is not
on its default port, the venv's full paths when its `bin` is not on PATH, and the
demo run's own tenant in the token example (a token of another tenant sees a 404).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from boomerang.devdemo import DEMO_TENANT, DemoRun
from boomerang.devstack import DEFAULT_TEMPORAL_PORT

CHECKPOINT = "approve_founders_brief"
DEFAULT_STATE_DIR = Path(".boomerang")


@dataclass(frozen=True, slots=True)
class Banner:
    ui_url: str
    api_url: str
    temporal_address: str  # host:port, as the stack listens
    state_dir: Path  # as configured (relative paths depend on the working directory)
    demo: DemoRun | None = None
    bin_dir: Path = Path(sys.executable).parent

    def render(self) -> str:
        run = self.demo.run_id if self.demo else "RUN_ID"
        boomerang, temporal = self._command("boomerang"), self._command("temporal")
        address = "" if self._default_port() else f"--address {self.temporal_address} "
        waiting = quote('BoomerangStatus="awaiting_approval"')
        lines = [
            "",
            "Boomerang is running.",
            f"  Temporal UI:     {self.ui_url}/namespaces/default/workflows",
            f"  Waiting on you:  {self.ui_url}/namespaces/default/workflows?query={waiting}",
            f"  HTTP API:        {self.api_url}/docs",
            f"  Inbox:           {self.api_url}/inbox   (sign in with a token, see below)",
            *self._demo_lines(),
            "",
            *self._shell_lines(),
            "Approve the first checkpoint (any one of these):",
            f"  {boomerang} decide {run} {CHECKPOINT} approve --by alice",
            f"  {temporal} workflow signal {address}--workflow-id {run} --name approve \\",
            f"      --input '{_json(checkpoint=CHECKPOINT, approver='alice')}'",
            f"  {temporal} workflow update execute {address}--workflow-id {run} --name decide \\",
            f"      --input '{_json(checkpoint=CHECKPOINT, approver='alice', decision='approve')}'",
            f"Then: {boomerang} status {run}   ·   {boomerang} approvals",
            f"With the HTTP API (a token sees its own tenant's runs; the demo's is {DEMO_TENANT}):",
            f"  TOKEN=$({boomerang} tokens create --tenant {DEMO_TENANT} --name alice)",
            f'  curl -H "Authorization: Bearer $TOKEN" {self.api_url}/approvals',
            "",
            "Ctrl-C stops everything; running `boomerang dev` again resumes every run where it was.",
        ]
        return "\n".join(lines) + "\n"

    def _default_port(self) -> bool:
        return self.temporal_address.rpartition(":")[2] == str(DEFAULT_TEMPORAL_PORT)

    def _demo_lines(self) -> list[str]:
        if self.demo is None:
            return []
        how = "started now" if self.demo.started_now else "already in flight, not started again"
        return [f"  Demo run:        {self.demo.run_id} (tenant {DEMO_TENANT}; {how})"]

    def _shell_lines(self) -> list[str]:
        """What another shell needs before the commands below work there."""
        lines: list[str] = []
        if self.state_dir == DEFAULT_STATE_DIR:
            # The embedded database lives under ./.boomerang: `tokens create` elsewhere
            # would start an empty one, and its token would be refused here.
            lines.append(f"In another shell, from {Path.cwd()}:")
        else:
            lines.append("In another shell:")
            lines.append(f"  export BOOMERANG_STATE_DIR={self.state_dir.resolve()}")
        if not self._default_port():
            lines.append(f"  export BOOMERANG_TEMPORAL_ADDRESS={self.temporal_address}")
        if not self._on_path("boomerang"):
            activate = self.bin_dir / "activate"
            if activate.exists():
                lines.append(f"  source {activate}   # or type the full paths below")
        return lines

    def _on_path(self, name: str) -> bool:
        found = shutil.which(name)
        return found is not None and Path(found).resolve() == (self.bin_dir / name).resolve()

    def _command(self, name: str) -> str:
        """`name` when the shell finds this venv's copy; its full path otherwise."""
        if self._on_path(name) or not (self.bin_dir / name).exists():
            return name
        return str(self.bin_dir / name)


def _json(**fields: str) -> str:
    return json.dumps(fields, separators=(",", ":"))
