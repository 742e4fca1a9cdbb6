"""Cost arithmetic against hand-computed cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from boomerang.pricing import PriceTable, UnknownPriceError, cost_of, estimate, load_price_table
from modal_app.contracts import FunctionResult, TokenUsage

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NANO = TokenUsage(model="gpt-4.1-nano", provider="openrouter", input_tokens=1_000_000, output_tokens=500_000)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


def result(seconds: float, **fields: object) -> FunctionResult:
    return FunctionResult(
        output={},
        started_at=T0,
        finished_at=T0 + timedelta(seconds=seconds),
        **fields,
    )


def test_ninety_seconds_of_a10g_and_nano_tokens(table: PriceTable) -> None:
    cost = cost_of(result(90, gpu_type="A10G", usage=(NANO,)), table)
    assert cost.gpu_seconds == Decimal(90) and cost.gpu_type == "A10G"
    assert cost.gpu_cost == Decimal("0.02754")  # 90 x 0.000306
    assert cost.llm_cost == Decimal("1.25")  # 1M x 0.25/M + 0.5M x 2.00/M
    assert cost.total_cost == Decimal("1.27754")
    assert (cost.provider, cost.model_name, cost.input_tokens, cost.output_tokens) == (
        "openrouter",
        "gpt-4.1-nano",
        1_000_000,
        500_000,
    )
    assert cost.price_table_version == "2026-11"


def test_cpu_and_memory_are_billed_for_what_was_configured(table: PriceTable) -> None:
    cost = cost_of(result(100, gpu_type="A10G", cpu=4.0, memory_mib=16384), table)
    assert cost.cpu_cost == Decimal("0.00524")  # 100 s x 4 cores x 0.0000131
    assert cost.memory_cost == Decimal("0.003552")  # 100 s x 16 GiB x 0.00000222
    assert cost.gpu_cost == Decimal("0.0306")
    assert cost.total_cost == Decimal("0.039392")


def test_fractional_seconds_are_exact_and_rounded_to_1e8(table: PriceTable) -> None:
    # 1.000001 s: a float would already be off here; timedelta keeps microseconds exact.
    cost = cost_of(result(1.000001, gpu_type="H100"), table)
    assert cost.gpu_seconds == Decimal("1.000001")
    assert cost.gpu_cost == Decimal("0.00109700")  # 0.001097001097 rounded half-up
    assert estimate(table, seconds=Decimal("0.3333"), gpu_type="T4").gpu_cost == Decimal("0.00005466")


def test_several_models_add_up(table: PriceTable) -> None:
    usage = (
        TokenUsage(model="claude-3.5-haiku", provider="openrouter", input_tokens=2_000, output_tokens=1_000),
        TokenUsage(
            model="deepseek/deepseek-v3.2", provider="openrouter", input_tokens=10_000, output_tokens=4_000
        ),
        TokenUsage(model="offline-echo", provider="offline", input_tokens=500, output_tokens=500),
    )
    cost = estimate(table, seconds=0, usage=usage)
    # 2000 x .25/M + 1000 x 1.25/M + 10000 x .028/M + 4000 x .10/M = .0005 + .00125 + .00028 + .0004
    assert cost.llm_cost == Decimal("0.00243")
    assert cost.model_name == "claude-3.5-haiku,deepseek/deepseek-v3.2,offline-echo"
    assert cost.provider == "openrouter,offline"
    assert (cost.input_tokens, cost.output_tokens) == (12_500, 5_500)


def test_offline_calls_cost_nothing_but_their_time(table: PriceTable) -> None:
    usage = (TokenUsage(model="offline-echo", provider="offline", input_tokens=10**6, output_tokens=10**6),)
    cost = estimate(table, seconds=10, usage=usage)
    assert cost.total_cost == Decimal(0) and cost.gpu_type is None


def test_gpu_spellings(table: PriceTable) -> None:
    assert table.gpu_rate("a10g") == Decimal("0.000306")
    assert table.gpu_rate("A10G:2") == Decimal("0.000612")
    assert table.gpu_rate("A100") == table.gpu_rate("A100-40GB") == Decimal("0.000583")
    for gpu, rate in {
        "T4": "0.000164", "L4": "0.000222", "L40S": "0.000542", "A100-80GB": "0.000694",
        "H100": "0.001097", "H200": "0.001261", "B200": "0.001736",
    }.items():  # fmt: skip
        assert table.gpu_rate(gpu) == Decimal(rate)


def test_unknown_gpu_or_model_is_an_error_listing_what_is_known(table: PriceTable) -> None:
    with pytest.raises(
        UnknownPriceError, match=r"no price for GPU 'V100' in price table 2026-11; known: T4, L4, A10G"
    ):
        cost_of(result(1, gpu_type="V100"), table)
    with pytest.raises(
        UnknownPriceError, match=r"no price for model 'gpt-5'.*known: gpt-4.1-nano, claude-3.5-haiku"
    ):
        estimate(
            table, seconds=1, usage=[TokenUsage(model="gpt-5", provider="x", input_tokens=1, output_tokens=1)]
        )
    with pytest.raises(UnknownPriceError):
        table.gpu_rate("A10G:lots")


def test_a_user_table_overrides_the_packaged_one(tmp_path: Path, table: PriceTable) -> None:
    mine = table.model_dump(mode="json") | {"version": "acme-2027-01", "gpu_per_second": {"A10G": "0.001"}}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(mine))
    by_arg = load_price_table(path)
    by_env = load_price_table(env={"BOOMERANG_PRICE_TABLE": str(path)})
    assert by_arg == by_env and by_arg.version == "acme-2027-01"
    cost = cost_of(result(10, gpu_type="A10G"), by_env)
    assert cost.gpu_cost == Decimal("0.01") and cost.price_table_version == "acme-2027-01"


def test_a_bad_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": "x", "gpu_per_second": {}, "cpu_per_core_second": "-1"}))
    with pytest.raises(ValueError, match="cpu_per_core_second"):
        load_price_table(path)


def test_estimate_for_a_planned_call(table: PriceTable) -> None:
    planned = estimate(table, seconds=3600, gpu_type="A10G", cpu=4, memory_mib=16384, usage=[NANO])
    # 3600 x (0.000306 + 4 x 0.0000131 + 16 x 0.00000222) + 1.25
    assert planned.gpu_cost == Decimal("1.1016")
    assert planned.cpu_cost == Decimal("0.18864")
    assert planned.memory_cost == Decimal("0.127872")
    assert planned.total_cost == Decimal("2.668112")
