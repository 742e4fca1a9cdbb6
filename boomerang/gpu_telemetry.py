"""The GPU run telemetry file: one JSON line per run, `<state dir>/gpu_runs.jsonl`.

    append_record(path, record)          # once per run id, under an exclusive lock
    read_records(path, task_id="WB101")  # newest last

Appends hold `flock` on the file, so two workers on one machine never interleave a
line, and a retried activity finds its run id already there and appends nothing.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from pydantic import ValidationError

from boomerang.models.gpu_runs import GpuRunRecord

FILE_NAME = "gpu_runs.jsonl"


def telemetry_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def append_record(path: Path, record: GpuRunRecord) -> bool:
    """Append `record` unless its run id is already there; True when it was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = record.model_dump_json() + "\n"
    with path.open("a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        marker = f'"run_id":{json.dumps(record.run_id)}'
        if any(marker in existing for existing in f):
            return False
        f.write(line)
        f.flush()
    return True


def read_records(path: Path, *, task_id: str | None = None, limit: int | None = None) -> list[GpuRunRecord]:
    """Runs in the order they were recorded (a line that does not parse is skipped)."""
    if not path.exists():
        return []
    records: list[GpuRunRecord] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                record = GpuRunRecord.model_validate_json(line)
            except ValidationError:
                continue
            if task_id is None or record.task_id == task_id:
                records.append(record)
    return records[-limit:] if limit else records
