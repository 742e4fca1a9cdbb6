"""The artifact store: a local directory and S3 over the wire (moto's server on loopback)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from boomerang.artifacts import (
    ArtifactNotFoundError,
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    artifact_store_for,
    artifact_store_from_settings,
)
from boomerang.settings import Settings


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:  # moto: tests/fixtures/s3.py
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # Buckets are created over the wire too: a PUT on the bucket path.
    httpx.put(f"{s3_endpoint}/artifacts-test").raise_for_status()
    return s3_endpoint


def _exercise(store: ArtifactStore, tmp_path: Path) -> None:
    uri = store.put("sweeps/sw-1/item-00001.json", b'{"y": 1}')
    assert uri.endswith("sweeps/sw-1/item-00001.json")
    source = tmp_path / "big.bin"
    source.write_bytes(b"\x00\x01" * 100_000)
    store.put("sweeps/sw-1/item-00002.bin", source)
    store.put("sweeps/sw-10/item-00001.json", b"other sweep")
    store.put("runs/r-1/stdout.txt", b"hello")

    assert store.get("sweeps/sw-1/item-00001.json") == b'{"y": 1}'
    assert store.get("sweeps/sw-1/item-00002.bin") == source.read_bytes()
    assert store.list("sweeps/sw-1/") == ["sweeps/sw-1/item-00001.json", "sweeps/sw-1/item-00002.bin"]
    assert len(store.list("sweeps/")) == 3
    assert len(store.list()) == 4
    store.put("sweeps/sw-1/item-00001.json", b'{"y": 2}')
    assert store.get("sweeps/sw-1/item-00001.json") == b'{"y": 2}'
    with pytest.raises(ArtifactNotFoundError):
        store.get("sweeps/sw-1/missing.json")
    for bad in ("", "/abs", "a/../b", "a//b"):
        with pytest.raises(ValueError, match="relative path"):
            store.put(bad, b"x")


def test_local_store(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    _exercise(store, tmp_path)
    assert store.url("runs/r-1/stdout.txt").startswith("file://")
    assert not list((tmp_path / "artifacts").rglob(".tmp-*"))


def test_settings_default_is_state_dir(tmp_path: Path) -> None:
    store = artifact_store_from_settings(Settings(state_dir=tmp_path))
    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "artifacts").resolve()


def test_s3_store_over_the_wire(s3_env: str, tmp_path: Path) -> None:
    store = artifact_store_from_settings(
        Settings(artifacts_url="s3://artifacts-test/boomerang", artifacts_endpoint=s3_env)
    )
    assert isinstance(store, S3ArtifactStore)
    _exercise(store, tmp_path)
    assert store.put("runs/r-1/out.txt", b"x") == "s3://artifacts-test/boomerang/runs/r-1/out.txt"
    # The bytes really are in the bucket under the prefix, as another S3 client sees them.
    listing = httpx.get(f"{s3_env}/artifacts-test?list-type=2&prefix=boomerang/runs/").text
    assert "<Key>boomerang/runs/r-1/stdout.txt</Key>" in listing
    # A presigned URL opens without credentials.
    url = store.url("runs/r-1/stdout.txt")
    assert url.startswith(s3_env) and "X-Amz-Signature" in url
    assert httpx.get(url).content == b"hello"


def test_bad_urls() -> None:
    with pytest.raises(ValueError, match="only s3://"):
        artifact_store_for("gs://bucket/x")
    with pytest.raises(ValueError, match="names no bucket"):
        artifact_store_for("s3:///prefix")
