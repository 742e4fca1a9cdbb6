"""Snapshots: exactly the files git would show, packed the same way every time."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from boomerang.snapshots import (
    EmptySnapshotError,
    NoSuchDirectoryError,
    SnapshotTooLargeError,
    list_files,
    pack_snapshot,
)
from tests.gpu.worktrees import git_worktree


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_a_git_worktree_gives_tracked_and_untracked_files_not_ignored_ones(tmp_path: Path) -> None:
    root = git_worktree(tmp_path / "repo")
    (root / "gone.txt").write_text("x")
    subprocess.run(["git", "-C", str(root), "add", "gone.txt"], check=True)
    (root / "gone.txt").unlink()  # tracked, deleted on disk: not sent

    assert list_files(root) == [".gitignore", "pkg/run.sh", "tracked.txt", "untracked.txt"]
    snap = pack_snapshot(root)
    members = _members(snap.data)
    assert sorted(members) == [".gitignore", "pkg/run.sh", "tracked.txt", "untracked.txt"]
    assert snap.files == 4
    assert members["pkg/run.sh"].mode == 0o755 and members["tracked.txt"].mode == 0o644
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members.values()} == {(0, 0, 0, "")}


def test_the_same_tree_packs_to_the_same_bytes(tmp_path: Path) -> None:
    root = git_worktree(tmp_path / "repo")
    first = pack_snapshot(root)
    os.utime(root / "tracked.txt", (1_000_000, 1_000_000))  # times do not matter
    assert pack_snapshot(root).sha256 == first.sha256
    (root / "tracked.txt").write_text("changed\n")  # contents do
    assert pack_snapshot(root).sha256 != first.sha256


def test_a_subdirectory_of_a_worktree_gives_its_own_files(tmp_path: Path) -> None:
    root = git_worktree(tmp_path / "repo")
    assert list_files(root / "pkg") == ["run.sh"]


def test_a_plain_directory_is_taken_whole_without_dot_git(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("x")
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.txt").write_text("c")
    (root / "top.py").write_text("print(1)")
    (root / "link").symlink_to("top.py")
    assert list_files(root) == ["a/b/c.txt", "link", "top.py"]
    assert _members(pack_snapshot(root).data)["link"].linkname == "top.py"


def test_bad_trees_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoSuchDirectoryError, match="no such directory"):
        pack_snapshot(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptySnapshotError, match="empty"):
        pack_snapshot(tmp_path / "empty")
    ignored = git_worktree(tmp_path / "repo")
    for name in (".gitignore", "tracked.txt", "untracked.txt", "pkg/run.sh"):
        subprocess.run(["git", "-C", str(ignored), "rm", "-q", "--cached", name], check=False)
        (ignored / name).unlink()
    (ignored / ".git" / "info" / "exclude").write_text("*.log\ndata/\n")
    with pytest.raises(EmptySnapshotError):
        pack_snapshot(ignored)  # only ignored files left
    big = tmp_path / "big"
    big.mkdir()
    (big / "noise.bin").write_bytes(os.urandom(200_000))
    with pytest.raises(SnapshotTooLargeError, match="limit 100,000"):
        pack_snapshot(big, max_bytes=100_000)
