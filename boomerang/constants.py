"""Names that the worker, the front doors and the tests must agree on."""

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "boomerang"
PIPELINE_WORKFLOW = "ValidationPipeline"
TASK_WORKFLOW = "BoomerAngTask"
SWEEP_WORKFLOW = "Sweep"
PROGRESS_QUERY = "progress"

# What a pipeline run accepts from people: one update, three signals, and queries.
DECIDE_UPDATE = "decide"
DECISION_SIGNALS = ("approve", "reject", "decide")
# Pipelines and tasks both take it: who cancels and why, then the run stops (workflows/cancellation.py).
CANCEL_UPDATE = "cancel"
STATUS_QUERY = "status"
# How the client learns what became of the `decide` signal it sent (workflows/intake.py).
DECISION_OUTCOME_QUERY = "decision_outcome"
# The error type of a decision for the checkpoint the running phase opens next: the
# client sends it again shortly (workflows/approvals.py says why).
NOT_OPEN_YET = "CheckpointNotOpenYet"
# What a BoomerAngTask accepts: a compute function's signed completion, and its list.
CALLBACK_SIGNAL = "compute_callback"
CALLBACKS_QUERY = "callbacks"

# Typed search attributes, upserted as a run moves so the Temporal UI can list
# every run waiting on a human (e.g. `BoomerangAwaiting IS NOT NULL`).
SA_STATUS = SearchAttributeKey.for_keyword("BoomerangStatus")
SA_PHASE = SearchAttributeKey.for_keyword("BoomerangPhase")
SA_AWAITING = SearchAttributeKey.for_keyword_list("BoomerangAwaiting")
SA_TENANT = SearchAttributeKey.for_keyword("BoomerangTenant")
SEARCH_ATTRIBUTES = (SA_STATUS, SA_PHASE, SA_AWAITING, SA_TENANT)
