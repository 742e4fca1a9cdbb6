"""Working trees for GPU run tests: a git repo with tracked, untracked and ignored files."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_worktree(root: Path) -> Path:
    """tracked.txt (in the index), untracked.txt, ignored.log (by .gitignore), data/ ignored."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("*.log\ndata/\n")
    (root / "tracked.txt").write_text("tracked\n")
    (root / "untracked.txt").write_text("untracked\n")
    (root / "ignored.log").write_text("ignored\n")
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(b"\0" * 1024)
    (root / "pkg").mkdir()
    (root / "pkg" / "run.sh").write_text("#!/bin/sh\necho from-script\n")
    (root / "pkg" / "run.sh").chmod(0o755)
    subprocess.run(["git", "-C", str(root), "add", ".gitignore", "tracked.txt", "pkg/run.sh"], check=True)
    return root
