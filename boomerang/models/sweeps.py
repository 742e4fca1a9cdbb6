"""Sweeps as they cross workflow, activity and front-door lines (workflows/sweep.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from boomerang.money import Usd

# A sweep's items are named by index; a grid larger than this is refused before it starts.
MAX_ITEMS = 100_000
# Explicit items travel in the workflow input (and again at each continue-as-new).
MAX_ITEMS_JSON_BYTES = 1024 * 1024

SweepState = Literal["running", "awaiting_approval", "completed", "failed", "stopped", "cancelled"]
ItemStatus = Literal["succeeded", "failed", "cancelled"]


class SweepSpec(BaseModel):
    """What to sweep and how; the input of `estimate` and of `start`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Exactly one of these two: a compute function, or a specialist task type.
    function: str | None = Field(default=None, min_length=1, max_length=100)
    task_type: str | None = Field(default=None, min_length=1, max_length=100)
    # Exactly one of these two: named axes whose cartesian product are the items, or the items.
    grid: dict[str, list[JsonValue]] | None = None
    items: list[dict[str, JsonValue]] | None = None
    # Other payload fields every item gets (an item's own value wins).
    base: dict[str, JsonValue] = Field(default_factory=dict)
    max_parallel: int = Field(default=8)
    batch_by: str | None = None
    # An axis whose value names the compute function (a deployment) the item runs on.
    variant_axis: str | None = None
    retries: int = Field(default=2, ge=0, le=20)
    on_item_failure: Literal["continue", "stop"] = "continue"
    max_cost_usd: Decimal | None = Field(default=None, gt=0)
    # For the estimate and the cost cap until items have been observed.
    expected_seconds: float = Field(default=10, gt=0)
    heartbeat_timeout_s: float = Field(default=30, ge=1)
    # Items per workflow run before continue-as-new (bounds the history).
    items_per_run: int = Field(default=1000, ge=1, le=5000)
    # Outputs whose JSON is larger than this go to the artifact store; the row keeps the key.
    inline_output_bytes: int = Field(default=16 * 1024, ge=0)


class SweepInput(BaseModel):
    """Input of the `Sweep` workflow; new fields must have defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant: str = Field(min_length=1, max_length=200)
    spec: SweepSpec
    # Carried across continue-as-new.
    carry: SweepCarry | None = None


class BatchCount(BaseModel):
    key: str
    total: int = 0
    done: int = 0
    failed: int = 0


class SweepCarry(BaseModel):
    """The compact state one run hands to the next at continue-as-new (no item outputs)."""

    model_config = ConfigDict(extra="ignore")

    cursor: int = 0  # position in the dispatch order: everything before it has a result
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    spent_usd: Decimal = Decimal(0)
    cap_usd: Decimal | None = None
    batches: list[BatchCount] = Field(default_factory=list)
    axes: dict[str, dict[str, list[int]]] = Field(default_factory=dict)  # axis -> value -> [done, failed]
    seconds_sum: float = 0.0
    seconds_n: int = 0
    runs: int = 1
    started_at: str | None = None
    stopped_reason: str | None = None


class SweepItemInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sweep_id: str
    tenant: str
    index: int
    function: str
    params: dict[str, JsonValue]
    payload: dict[str, JsonValue]
    batch: str | None = None
    timeout_s: float
    heartbeat_every_s: float
    max_attempts: int
    task_type: str | None = None
    boomer_ang_id: str | None = None
    inline_output_bytes: int = 16 * 1024
    # Set when the item ended without its activity writing the row (end_sweep_items).
    error: str | None = None


class SweepItemOutcome(BaseModel):
    """What the workflow keeps of one item: no output (that is in Postgres)."""

    model_config = ConfigDict(frozen=True)

    index: int
    status: ItemStatus
    cost_usd: Usd = Decimal(0)
    seconds: float | None = None


class SweepChunkInput(BaseModel):
    """Consecutive items of one batch for one `run_sweep_chunk` activity: at most `lanes`
    of them run at a time, and the workflow keeps the lanes of all chunks within the window."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sweep_id: str
    tenant: str
    items: list[SweepItemInput]
    lanes: int = Field(ge=1)
    heartbeat_every_s: float = Field(gt=0)
    # on_item_failure=stop: once an item has failed, the chunk starts no more.
    stop_on_failure: bool = False


class SweepChunkOutcome(BaseModel):
    """The items of a chunk that ended (rows written), and those it never started (stop)."""

    model_config = ConfigDict(frozen=True)

    outcomes: list[SweepItemOutcome]
    not_started: list[int] = Field(default_factory=list)


class SweepRowsInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    sweep_id: str
    indices: list[int]


class CancelledItemsInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    sweep_id: str
    tenant: str
    items: list[SweepItemInput]


class SweepEstimate(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: int
    batches: int
    functions: list[str]
    expected_compute_seconds: float
    expected_cost_usd: Usd
    expected_wall_seconds: float
    max_parallel: int
    price_table_version: str


class AxisCount(BaseModel):
    value: str
    done: int
    failed: int


class SweepProgress(BaseModel):
    """The `progress` query, `boomerang sweep status --json`, `GET /sweeps/{id}`."""

    sweep_id: str
    status: SweepState
    tenant: str
    function: str
    total: int
    done: int
    failed: int
    cancelled: int = 0
    running: int
    pending: int
    spent_usd: Usd
    max_cost_usd: Usd | None = None
    estimate_usd: Usd | None = None
    eta_seconds: float | None = None
    batches: list[BatchCount] = Field(default_factory=list)
    axes: dict[str, list[AxisCount]] = Field(default_factory=dict)
    awaiting: list[str] = Field(default_factory=list)
    runs: int = 1
    reason: str | None = None


class SweepResult(BaseModel):
    """One item's row in `sweep_results` (and a line of `boomerang sweep results`)."""

    sweep_id: str
    item_index: int
    batch: str | None = None
    params: dict[str, JsonValue]
    status: ItemStatus
    output: dict[str, JsonValue] | None = None
    artifact_uri: str | None = None
    error: str | None = None
    cost_usd: Usd = Decimal(0)
    attempts: int = 1
    seconds: float | None = None


SweepInput.model_rebuild()
