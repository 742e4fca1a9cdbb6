"""Artifact store: where large outputs live, so rows and histories keep references only.

One small interface, two implementations, chosen by settings::

    store = artifact_store_from_settings(settings)   # BOOMERANG_ARTIFACTS_URL
    uri = store.put("sweeps/sw-1/item-00042.json", b"...")
    store.get("sweeps/sw-1/item-00042.json")          # -> bytes
    store.list("sweeps/sw-1/")                        # -> keys, sorted
    store.url("sweeps/sw-1/item-00042.json")          # -> a URL a person can open

- ``LocalArtifactStore``: a directory (default ``<state dir>/artifacts``). Writes are
  atomic (temp file + rename), so a reader never sees half an artifact.
- ``S3ArtifactStore``: any S3-compatible service through obstore (Rust ``object_store``)
  for ``BOOMERANG_ARTIFACTS_URL=s3://bucket/prefix``. Credentials come only from the
  environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``,
  or the instance/container role); ``BOOMERANG_ARTIFACTS_ENDPOINT`` points at MinIO,
  R2 or another S3-compatible endpoint. ``url`` is a presigned GET URL.

Keys are relative, ``/``-separated paths without ``..`` or empty segments; a bad key
is a ``ValueError`` before anything is written. The methods are blocking: call them
from activities through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

from modal_app.errors import BoomerangError

if TYPE_CHECKING:
    from boomerang.settings import Settings

PRESIGN_EXPIRY = timedelta(hours=1)


class ArtifactNotFoundError(BoomerangError, KeyError):
    """No artifact under this key."""


@runtime_checkable
class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes | Path) -> str:
        """Store ``data`` (bytes, or a file's contents) under ``key``; return its URI."""
        ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (a plain string prefix), sorted."""
        ...

    def url(self, key: str) -> str: ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"artifact key {key!r} must be a relative path like 'sweeps/ID/item-1.json'")
    return key


def _read(data: bytes | Path) -> bytes:
    return data.read_bytes() if isinstance(data, Path) else bytes(data)


class LocalArtifactStore:
    """Artifacts as files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | Path) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_read(data))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(key) from None

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


class S3ArtifactStore:
    """Artifacts in an S3-compatible bucket, through obstore."""

    def __init__(self, bucket: str, *, prefix: str = "", endpoint: str | None = None) -> None:
        from obstore.store import S3Store

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # Region/credentials/session token are read from the AWS_* environment by obstore.
        config: dict[str, str] = {}
        if endpoint:
            config["endpoint"] = endpoint
        self._store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options={"allow_http": bool(endpoint and endpoint.startswith("http://"))},
        )

    def put(self, key: str, data: bytes | Path) -> str:
        import obstore

        obstore.put(self._store, check_key(key), _read(data))
        return self.uri(key)

    def get(self, key: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self._store, check_key(key)).bytes())
        except FileNotFoundError:
            raise ArtifactNotFoundError(key) from None

    def list(self, prefix: str = "") -> list[str]:
        import obstore

        keys: list[str] = []
        # obstore lists by path segment; filter by the plain string prefix after.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else None
        for batch in obstore.list(self._store, directory):
            keys.extend(str(meta["path"]) for meta in batch)
        return sorted(k for k in keys if k.startswith(prefix))

    def uri(self, key: str) -> str:
        return "s3://" + "/".join(p for p in (self.bucket, self.prefix, key) if p)

    def url(self, key: str) -> str:
        import obstore

        return obstore.sign(self._store, "GET", check_key(key), PRESIGN_EXPIRY)


def artifact_store_for(location: str | Path, *, endpoint: str | None = None) -> ArtifactStore:
    """``s3://bucket/prefix`` → S3; anything else (a path or ``file://``) → a directory."""
    text = str(location)
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"artifact URL {text!r} names no bucket; use s3://bucket/prefix")
        return S3ArtifactStore(parts.netloc, prefix=parts.path, endpoint=endpoint)
    if parts.scheme == "file":
        return LocalArtifactStore(Path(parts.path))
    if parts.scheme and len(parts.scheme) > 1:
        raise ValueError(f"artifact URL {text!r}: only s3:// URLs or local paths are supported")
    return LocalArtifactStore(Path(text))


def artifact_store_from_settings(settings: Settings) -> ArtifactStore:
    location = settings.artifacts_url or settings.state_dir / "artifacts"
    return artifact_store_for(location, endpoint=settings.artifacts_endpoint)
