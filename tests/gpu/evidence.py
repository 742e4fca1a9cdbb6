"""A GPU run's evidence as another S3 client finds it: the four artifacts under the documented path."""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass
from typing import Any

from boomerang.models.gpu_runs import GpuRunOutcome
from modal_app.gpu_exec import ARTIFACT_NAMES
from tests.fixtures.s3 import S3Bucket


@dataclass(frozen=True)
class RunArtifacts:
    prefix: str  # <store prefix>/gpu-runs/<task>/attempt-<nn>/<timestamp>/<run_id>/
    files: dict[str, bytes]

    @property
    def metadata(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.files["metadata.json"])
        return loaded

    def workspace(self) -> dict[str, bytes]:
        """workspace_after.tar.gz unpacked in memory: path -> contents."""
        with tarfile.open(fileobj=io.BytesIO(self.files["workspace_after.tar.gz"]), mode="r:gz") as tar:
            return {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }


def run_artifacts(bucket: S3Bucket, store_prefix: str, outcome: GpuRunOutcome) -> RunArtifacts:
    """The run's artifacts in `bucket`, checked to be exactly the four at the documented path."""
    base = f"{store_prefix}/gpu-runs/{outcome.task_id}/attempt-{outcome.attempt:02d}/"
    keys = [k for k in bucket.keys(base) if k.endswith(f"/{outcome.run_id}/" + k.rsplit("/", 1)[-1])]
    assert keys, f"no artifacts of {outcome.run_id} under {base}: {bucket.keys(base)}"
    prefix = keys[0].rsplit("/", 1)[0] + "/"
    assert re.fullmatch(rf"{re.escape(base)}\d{{8}}T\d{{6}}Z/{re.escape(outcome.run_id)}/", prefix), prefix
    assert sorted(keys) == sorted(prefix + name for name in ARTIFACT_NAMES)
    assert outcome.artifact_uri == f"{bucket.url}/{prefix}"
    return RunArtifacts(prefix, {name: bucket.get(prefix + name) for name in ARTIFACT_NAMES})
