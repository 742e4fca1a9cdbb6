"""Pipelines from a file: YAML or JSON, validated by `PipelineSpec` itself.

    spec = load_spec(Path("pipeline.yaml"))     # raises SpecFileError naming the field

Durations (`timeout`, `reminder_after`, `heartbeat_timeout`) take ISO 8601 (`P7D`,
`PT30S`) or seconds, as pydantic reads a `timedelta`.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from boomerang.errors import BoomerangError
from boomerang.models.pipeline import PipelineSpec


class SpecFileError(BoomerangError):
    """A pipeline file that cannot be read or is not a valid pipeline; the message says where."""


def load_spec(path: Path) -> PipelineSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_spec(text, source=str(path), as_json=path.suffix.lower() == ".json")


def parse_spec(text: str, *, source: str = "spec", as_json: bool = False) -> PipelineSpec:
    try:
        # YAML is a superset of JSON; JSON files are read as JSON for its exact errors.
        data = json.loads(text) if as_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecFileError(f"{source}: not valid {'JSON' if as_json else 'YAML'}: {exc}") from None
    unknown = unknown_fields(PipelineSpec, data)
    if unknown:
        # The models ignore unknown fields (a newer client must not wedge an older worker);
        # a file a person wrote is checked strictly, so a typo is not silently dropped.
        raise SpecFileError(f"{source}: unknown fields: {', '.join(unknown)}")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecFileError(f"{source}: {problems}") from None


def unknown_fields(model: type[BaseModel], data: object, path: str = "") -> list[str]:
    """Dotted paths of the keys in `data` that `model` (and its nested models) has no field for."""
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        field = model.model_fields.get(str(key))
        if field is None:
            found.append(where)
        else:
            found += _unknown_in(field.annotation, value, where)
    return found


def _unknown_in(annotation: Any, value: object, path: str) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return unknown_fields(annotation, value, path)
    args = typing.get_args(annotation)
    if isinstance(value, list | tuple) and args:
        item = args[0]
        return [p for i, v in enumerate(value) for p in _unknown_in(item, v, f"{path}.{i}")]
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return unknown_fields(models[0], value, path) if models and isinstance(value, dict) else []
