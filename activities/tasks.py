"""Plan a specialist task: which Boomer_Ang, which compute function, what it should cost."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from boomerang.models.tasks import PlanTaskInput, TaskPlan
from boomerang.pricing import PriceTable, UnknownPriceError, estimate_function
from modal_app.registry import Registry
from modal_app.specialists import UnknownSpecialistError

UNKNOWN_TASK = "UnknownTask"


class TaskActivities:
    def __init__(self, prices: PriceTable, registry: Registry) -> None:
        self._prices = prices
        self._registry = registry

    @activity.defn(name="plan_task")
    async def plan_task(self, inp: PlanTaskInput) -> TaskPlan:
        try:
            registry = self._registry
            specialist = (
                registry.get_specialist(inp.boomer_ang_id)
                if inp.boomer_ang_id
                else registry.specialist_for(inp.task_type)
            )
            if inp.task_type not in specialist.task_types:
                raise UnknownSpecialistError(
                    f"{specialist.id} does not handle {inp.task_type!r}; "
                    f"it handles: {', '.join(specialist.task_types)}"
                )
            fn = registry.lookup(specialist.function)
            cost = estimate_function(self._prices, fn, seconds=inp.expected_seconds)
        except (UnknownSpecialistError, UnknownPriceError, LookupError) as exc:
            # Asking again will not make a specialist appear: fail the task at once.
            raise ApplicationError(str(exc), type=UNKNOWN_TASK, non_retryable=True) from exc
        return TaskPlan(
            boomer_ang_id=specialist.id,
            task_type=inp.task_type,
            function=specialist.function,
            gpu_type=fn.gpu,
            timeout_s=fn.timeout_s,
            estimate=cost,
        )
