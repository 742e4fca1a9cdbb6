"""Reproducible snapshots of a working tree, for `boomerang gpu exec`.

    snap = pack_snapshot(Path("."), max_bytes=DEFAULT_MAX_BYTES)
    snap.sha256, snap.files, len(snap.data)      # the same tree gives the same bytes

In a git worktree the snapshot holds exactly what `git ls-files -co --exclude-standard`
lists under the directory: tracked files and untracked files that are not ignored
(a tracked file deleted from disk is left out). A plain directory is taken whole,
minus `.git`. Entries are sorted, with mtime 0, uid/gid 0, no owner names and modes
normalised to 0644/0755, in a gzip stream whose header carries no time either, so
the bytes and their sha256 depend on the paths and contents alone. Symbolic links
are kept as links. An empty snapshot, a missing directory and a snapshot over
`max_bytes` (compressed) are refused before anything is dispatched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from boomerang.errors import BoomerangError

# Compressed. Larger trees belong in an image or a volume, not in every run's upload.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


class SnapshotError(BoomerangError, ValueError):
    """The working tree cannot be snapshotted; nothing was dispatched."""


class NoSuchDirectoryError(SnapshotError):
    """The directory to snapshot does not exist (or is not a directory)."""


class EmptySnapshotError(SnapshotError):
    """The directory holds no file to send (all ignored, or none at all)."""


class SnapshotTooLargeError(SnapshotError):
    """The packed snapshot is over the size limit."""


@dataclass(frozen=True)
class Snapshot:
    data: bytes  # a .tar.gz
    sha256: str
    files: int
    source_bytes: int  # uncompressed size of the files packed

    @property
    def size(self) -> int:
        return len(self.data)


def list_files(root: Path) -> list[str]:
    """Paths (relative, '/'-separated, sorted) that a snapshot of `root` holds."""
    if not root.is_dir():
        raise NoSuchDirectoryError(f"no such directory: {root}")
    listed = _git_files(root)
    names = listed if listed is not None else _walk(root)
    # Tracked but deleted files are listed by git: keep only what is there (links included).
    return sorted({n for n in names if os.path.lexists(root / n) and not (root / n).is_dir()})


def _git_files(root: Path) -> list[str] | None:
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # no git on this machine: a plain directory then
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    done = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SnapshotError(f"git ls-files failed in {root}: {done.stderr.decode(errors='replace').strip()}")
    return [p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        # A link to a directory is listed as a directory by walk; keep it as a link.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        rel = os.path.relpath(dirpath, root)
        for name in (*filenames, *links):
            found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return found


def pack_snapshot(root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Snapshot:
    """Pack `root` reproducibly (see the module docstring); refuse empty or oversized trees."""
    root = root.expanduser()
    names = list_files(root)
    if not names:
        raise EmptySnapshotError(
            f"the snapshot of {root} is empty: no tracked or untracked, not ignored file to send"
        )
    raw = io.BytesIO()
    # mtime=0 and no file name: the gzip header adds nothing that varies between runs.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        source = 0
        for name in names:
            source += _add(tar, root, name)
            if raw.tell() > max_bytes:  # stop early: no need to compress the rest to refuse it
                raise _too_large(root, raw.tell(), max_bytes)
    data = raw.getvalue()
    if len(data) > max_bytes:
        raise _too_large(root, len(data), max_bytes)
    return Snapshot(data=data, sha256=hashlib.sha256(data).hexdigest(), files=len(names), source_bytes=source)


def _too_large(root: Path, size: int, limit: int) -> SnapshotTooLargeError:
    return SnapshotTooLargeError(
        f"the snapshot of {root} is over its limit: {size:,} bytes compressed, limit {limit:,} "
        "(BOOMERANG_GPU_SNAPSHOT_MAX_BYTES); ignore build outputs and data in .gitignore"
    )


def _add(tar: tarfile.TarFile, root: Path, name: str) -> int:
    path = root / name
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
        tar.addfile(info)
        return 0
    info.size = st.st_size
    info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    with path.open("rb") as f:
        tar.addfile(info, f)
    return st.st_size


def unpack_snapshot(data: bytes, dest: Path) -> int:
    """Unpack a snapshot into `dest` (the compute side has its own copy of this in modal_app)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        tar.extractall(dest, filter="data")
    return len(members)
