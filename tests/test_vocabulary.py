"""One vocabulary: one error root, and the names front doors use are the workflows' own."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from temporalio import workflow

import activities
import boomerang
import modal_app
import workflows
from boomerang.constants import (
    CANCEL_UPDATE,
    DECIDE_UPDATE,
    DECISION_OUTCOME_QUERY,
    DECISION_SIGNALS,
    PIPELINE_WORKFLOW,
    STATUS_QUERY,
    TASK_WORKFLOW,
)
from boomerang.errors import BoomerangError
from workflows.pipeline import ValidationPipeline
from workflows.task import BoomerAngTask

# Modules that need what a plain test process lacks (a Modal app build is exercised elsewhere).
SKIP_IMPORT = {"modal_app.app", "modal_app.local_runner"}


def _modules() -> list[str]:
    names = ["worker"]
    for package in (boomerang, workflows, activities, modal_app):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name not in SKIP_IMPORT:
                names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_every_public_error_derives_from_the_one_root(module_name: str) -> None:
    module = importlib.import_module(module_name)
    errors = [
        cls
        for name, cls in vars(module).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == module_name
        and not name.startswith("_")
    ]
    strays = [cls.__name__ for cls in errors if not issubclass(cls, BoomerangError)]
    assert not strays, f"{module_name}: {strays} do not derive from BoomerangError"


def test_the_front_doors_names_are_the_workflows_own() -> None:
    pipeline = workflow._Definition.must_from_class(ValidationPipeline)
    assert pipeline.name == PIPELINE_WORKFLOW
    assert {DECIDE_UPDATE, CANCEL_UPDATE} <= set(pipeline.updates)
    assert set(DECISION_SIGNALS) <= set(pipeline.signals)
    assert {STATUS_QUERY, DECISION_OUTCOME_QUERY} <= set(pipeline.queries)
    assert workflow._Definition.must_from_class(BoomerAngTask).name == TASK_WORKFLOW
