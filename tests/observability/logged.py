"""A workflow whose one activity logs, for tests/observability/test_log_context.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import structlog

    from boomerang.models.tasks import DispatchInput


@activity.defn
async def log_lines(inp: DispatchInput) -> None:
    structlog.get_logger("tests").info("from structlog", function=inp.function, api_key="sk-not-for-logs")
    activity.logger.info("from the standard library with Bearer tok_not_for_logs")


@workflow.defn
class LoggingWorkflow:
    @workflow.run
    async def run(self, inp: DispatchInput) -> None:
        workflow.logger.info("from the workflow")
        await workflow.execute_activity(log_lines, inp, start_to_close_timeout=timedelta(seconds=30))
