"""What compute costs: a versioned price table, and the cost of a call under it.

    table = load_price_table()                 # packaged table, or BOOMERANG_PRICE_TABLE / a path
    cost = cost_of(result, table)              # a FunctionResult -> CostBreakdown (Ledger only)
    planned = estimate(table, seconds=90, gpu_type="A10G", usage=[TokenUsage(...)])

GPU time is billed per second at the GPU's rate (times the count in "A10G:2"), CPU
per core-second and memory per GiB-second for what the function was configured with
(what Modal bills at least), tokens per million at the model's input/output rates.
Arithmetic is in `Decimal`; each component is rounded half-up to 1e-8 USD, so the
sum of a run's rows equals the sum of its components. A GPU or model the table does
not know is an `UnknownPriceError` naming those it does: a call that cannot be
costed must not be recorded as free. The table's version is carried into every
breakdown so a Ledger row says which prices it used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from boomerang.errors import BoomerangError
from boomerang.models.events import CostBreakdown
from modal_app.contracts import FunctionResult, TokenUsage

if TYPE_CHECKING:  # the registry imports every function body; costing needs only its shape
    from modal_app.functions import ComputeFunction

DEFAULT_TABLE = "2026-11.json"
PRICE_TABLE_ENV = "BOOMERANG_PRICE_TABLE"
USD_QUANTUM = Decimal("0.00000001")
_MIB_PER_GIB = Decimal(1024)
_MILLION = Decimal(1_000_000)


class UnknownPriceError(BoomerangError, LookupError):
    """The price table has no rate for this GPU or model."""


class LlmPrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: Decimal = Field(ge=0, description="USD per million input tokens")
    output: Decimal = Field(ge=0, description="USD per million output tokens")


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    currency: Literal["USD"] = "USD"
    source: str = ""
    gpu_per_second: dict[str, Decimal]
    # Other spellings Modal accepts for the same GPU ("A100" is the 40 GB card).
    gpu_aliases: dict[str, str] = Field(default_factory=dict)
    cpu_per_core_second: Decimal = Field(ge=0)
    memory_per_gib_second: Decimal = Field(ge=0)
    llm_per_million_tokens: dict[str, LlmPrice]

    def gpu_rate(self, gpu_type: str) -> Decimal:
        """USD per second for a Modal GPU spec such as "A10G", "h100" or "A100-80GB:2"."""
        name, _, count_text = gpu_type.partition(":")
        count = int(count_text) if count_text.isdigit() else 1
        by_upper = {k.upper(): k for k in self.gpu_per_second}
        aliases = {k.upper(): v for k, v in self.gpu_aliases.items()}
        key = name.strip().upper()
        key = aliases.get(key, key).upper()
        if key not in by_upper or (count_text and not count_text.isdigit()):
            known = ", ".join(self.gpu_per_second)
            raise UnknownPriceError(
                f"no price for GPU {gpu_type!r} in price table {self.version}; known: {known}"
            )
        return self.gpu_per_second[by_upper[key]] * count

    def llm_price(self, model: str) -> LlmPrice:
        """Rates for `model`, also when given as a provider slug ("openai/gpt-4.1-nano")."""
        for key in (model, model.rsplit("/", 1)[-1]):
            if key in self.llm_per_million_tokens:
                return self.llm_per_million_tokens[key]
        known = ", ".join(self.llm_per_million_tokens)
        raise UnknownPriceError(f"no price for model {model!r} in price table {self.version}; known: {known}")


def load_price_table(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> PriceTable:
    """The table at `path`, else at `$BOOMERANG_PRICE_TABLE`, else the packaged default."""
    env = os.environ if env is None else env
    chosen = path or env.get(PRICE_TABLE_ENV)
    if chosen:
        raw = Path(chosen).read_text(encoding="utf-8")
    else:
        raw = resources.files("boomerang").joinpath("prices", DEFAULT_TABLE).read_text(encoding="utf-8")
    return PriceTable.model_validate_json(raw)


def _usd(amount: Decimal) -> Decimal:
    return amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)


def _seconds(value: float | Decimal | timedelta) -> Decimal:
    if isinstance(value, timedelta):
        # Exact: a float total_seconds() would carry binary noise into the money.
        seconds = Decimal(value.days * 86_400 + value.seconds) + Decimal(value.microseconds) / 1_000_000
    else:
        seconds = value if isinstance(value, Decimal) else Decimal(str(value))
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    return seconds


def _joined(values: Iterable[str]) -> str | None:
    distinct = list(dict.fromkeys(values))
    return ",".join(distinct) if distinct else None


def estimate(
    table: PriceTable,
    *,
    seconds: float | Decimal | timedelta,
    gpu_type: str | None = None,
    cpu: float | None = None,
    memory_mib: int | None = None,
    usage: Iterable[TokenUsage] = (),
) -> CostBreakdown:
    """The cost of `seconds` on the given resources plus the given token usage.

    Used for what did run (`cost_of`) and for what is planned (expected seconds and
    tokens), so a budget check and the Ledger agree on the arithmetic.
    """
    secs = _seconds(seconds)
    usage = tuple(usage)
    gpu_cost = secs * table.gpu_rate(gpu_type) if gpu_type else Decimal(0)
    cpu_cost = secs * Decimal(str(cpu)) * table.cpu_per_core_second if cpu else Decimal(0)
    mem_cost = (
        secs * Decimal(memory_mib) / _MIB_PER_GIB * table.memory_per_gib_second if memory_mib else Decimal(0)
    )
    llm_cost = Decimal(0)
    for u in usage:
        price = table.llm_price(u.model)
        llm_cost += (u.input_tokens * price.input + u.output_tokens * price.output) / _MILLION
    return CostBreakdown(
        gpu_seconds=secs if gpu_type else Decimal(0),
        gpu_type=gpu_type,
        gpu_cost=_usd(gpu_cost),
        cpu_cost=_usd(cpu_cost),
        memory_cost=_usd(mem_cost),
        llm_cost=_usd(llm_cost),
        provider=_joined(u.provider for u in usage),
        model_name=_joined(u.model for u in usage),
        input_tokens=sum(u.input_tokens for u in usage),
        output_tokens=sum(u.output_tokens for u in usage),
        price_table_version=table.version,
    )


def cost_of(result: FunctionResult, table: PriceTable) -> CostBreakdown:
    """What one attempt cost: its own measured time on its configured resources, plus tokens.

    Costs the configured resources whatever `result.runtime` says; a caller that does
    not bill local runs for GPU time should check `result.runtime == "local"` itself.
    """
    return estimate(
        table,
        seconds=result.finished_at - result.started_at,
        gpu_type=result.gpu_type,
        cpu=result.cpu,
        memory_mib=result.memory_mib,
        usage=result.usage,
    )


def estimate_function(
    table: PriceTable, fn: ComputeFunction[Any], *, seconds: float | Decimal
) -> CostBreakdown:
    """What `seconds` of a registered compute function cost on its configured resources."""
    return estimate(table, seconds=seconds, gpu_type=fn.gpu, cpu=fn.cpu, memory_mib=fn.memory_mib)
