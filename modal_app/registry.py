"""The one registry of compute functions and specialists, built explicitly.

    registry = load_registry(["my_company.boomerang_plugins"])   # built-ins + user modules
    registry.lookup("task_lint_ang")             # ComputeFunction: body and resources
    registry.specialist_for("lint").function     # "task_lint_ang"
    registry.call("task_lint_ang", payload)      # {"ok": FunctionResult} | {"error": FunctionError}

Nothing registers itself when imported. A user module names itself in
`BOOMERANG_COMPUTE_MODULES` (comma-separated) and exposes `register(registry)`, which
adds its functions and specialists. The worker, every local compute process and the
Modal app build the registry the same way from that same list (`load_registry`), so
a specialist the worker plans is one every place that runs it knows.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modal_app.contracts import FunctionError, TaskRequest
from modal_app.errors import BoomerangError
from modal_app.functions import (
    PHASE_FUNCTIONS,
    Body,
    ComputeFunction,
    UnknownFunctionError,
    invoke,
    is_permanent,
)
from modal_app.gpu_exec import gpu_exec_functions
from modal_app.simulation import SIMULATE
from modal_app.specialists import (
    SEED_CPU,
    SEED_MEMORY_MIB,
    SEED_TIMEOUT_S,
    Specialist,
    UnknownSpecialistError,
    builtin_specialists,
)

MODULES_ENV = "BOOMERANG_COMPUTE_MODULES"


class Registry:
    """Compute functions by name, specialists by id and by task type."""

    def __init__(self, *, modules: Sequence[str] = ()) -> None:
        self._functions: dict[str, ComputeFunction[Any]] = {}
        self._by_id: dict[str, Specialist] = {}
        self._by_task_type: dict[str, Specialist] = {}
        # The user modules this registry was built from: handed on to compute processes.
        self.modules = tuple(modules)

    # -- functions -----------------------------------------------------------------

    def add_function(self, fn: ComputeFunction[Any], *, replace: bool = False) -> ComputeFunction[Any]:
        """Add a compute function; a name already taken is an error unless `replace`."""
        if fn.name in self._functions and not replace and self._functions[fn.name] is not fn:
            raise ValueError(f"compute function {fn.name!r} is already registered")
        self._functions[fn.name] = fn
        return fn

    def lookup(self, name: str) -> ComputeFunction[Any]:
        try:
            return self._functions[name]
        except KeyError:
            known = ", ".join(sorted(self._functions))
            raise UnknownFunctionError(f"no compute function {name!r}; known: {known}") from None

    def functions(self) -> dict[str, ComputeFunction[Any]]:
        """Every registered function, phases and specialist tasks, by name."""
        return dict(self._functions)

    # -- specialists ---------------------------------------------------------------

    def add_specialist(
        self,
        specialist: Specialist,
        *,
        body: Body[TaskRequest] | None = None,
        timeout_s: float = SEED_TIMEOUT_S,
        cpu: float = SEED_CPU,
        memory_mib: int = SEED_MEMORY_MIB,
        replace: bool = False,
    ) -> Specialist:
        """Add a specialist; with `body`, also its compute function (with its GPU).

        Without `body`, `specialist.function` must already be registered. A task type
        or id already taken is an error unless `replace`.
        """
        holders = {t: self._by_task_type[t].id for t in specialist.task_types if t in self._by_task_type}
        taken = [t for t, holder in holders.items() if holder != specialist.id]
        if not replace and (specialist.id in self._by_id or taken):
            what = f"id {specialist.id!r}" if specialist.id in self._by_id else f"task types {taken}"
            raise ValueError(f"specialist {what} already registered (pass replace=True to override)")
        if body is not None:
            fn = ComputeFunction(
                specialist.function, body, timeout_s, gpu=specialist.gpu, request_model=TaskRequest,
                cpu=cpu, memory_mib=memory_mib,
            )  # fmt: skip
            self.add_function(fn, replace=replace)
        else:
            self.lookup(specialist.function)  # fails now, naming what is known, not at the first task
        old = self._by_id.get(specialist.id)
        if old is not None:
            for t in old.task_types:
                self._by_task_type.pop(t, None)
        self._by_id[specialist.id] = specialist
        for t in specialist.task_types:
            self._by_task_type[t] = specialist
        return specialist

    def get_specialist(self, specialist_id: str) -> Specialist:
        try:
            return self._by_id[specialist_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise UnknownSpecialistError(f"no specialist {specialist_id!r}; known: {known}") from None

    def specialist_for(self, task_type: str) -> Specialist:
        try:
            return self._by_task_type[task_type]
        except KeyError:
            known = ", ".join(f"{t} ({s.id})" for t, s in sorted(self._by_task_type.items()))
            raise UnknownSpecialistError(
                f"no specialist handles task type {task_type!r}; known: {known}"
            ) from None

    def specialists(self) -> tuple[Specialist, ...]:
        return tuple(self._by_id.values())

    # -- running -------------------------------------------------------------------

    def invoke(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one function on a JSON payload; a JSON `FunctionResult` (see `functions.invoke`)."""
        return invoke(self.lookup(name), payload)

    def call(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`invoke`, with failures returned as data: `{"ok": result}` or `{"error": FunctionError}`.

        The reply protocol both backends share. On Modal it keeps a permanent failure
        from being retried by the platform (its retries are for lost containers), and no
        exception class has to be unpickled on the caller's side.
        """
        try:
            return {"ok": self.invoke(name, payload)}
        except Exception as exc:  # every failure goes back to the caller as data
            error = FunctionError(
                type=type(exc).__name__,
                message=str(exc),
                permanent=is_permanent(exc),
                traceback=traceback.format_exc(),
            )
            return {"error": error.model_dump(mode="json")}


def builtin_registry() -> Registry:
    """The five phases of the default pipeline, the four built-in specialists and GPU command runs."""
    registry = Registry()
    for fn in (*PHASE_FUNCTIONS.values(), *gpu_exec_functions().values()):
        registry.add_function(fn)
    for specialist, body in builtin_specialists():
        registry.add_specialist(specialist, body=body)
    registry.add_function(SIMULATE)  # for trying sweeps on a laptop
    return registry


class RegistryModuleError(BoomerangError, ImportError):
    """A module named in BOOMERANG_COMPUTE_MODULES cannot be imported or has no `register`."""


def load_registry(modules: Sequence[str] = ()) -> Registry:
    """The built-ins, then each user module's `register(registry)`, in the order given."""
    registry = builtin_registry()
    registry.modules = tuple(modules)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise RegistryModuleError(f"compute module {name!r} cannot be imported: {exc}") from exc
        register: Callable[[Registry], None] | None = getattr(module, "register", None)
        if not callable(register):
            raise RegistryModuleError(f"compute module {name!r} has no register(registry) function")
        register(registry)
    return registry


def parse_modules(raw: str) -> tuple[str, ...]:
    """Module names from a comma-separated list ("a.b, c" -> ("a.b", "c"))."""
    return tuple(m.strip() for m in raw.split(",") if m.strip())


def modules_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The user modules named in BOOMERANG_COMPUTE_MODULES (comma-separated)."""
    return parse_modules((os.environ if env is None else env).get(MODULES_ENV, ""))
