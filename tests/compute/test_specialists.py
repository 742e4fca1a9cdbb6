"""Each specialist end to end through `invoke` (offline provider, or a local chat server)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from activities.compute import ComputeError
from activities.local_backend import LocalBackend
from modal_app.contracts import FunctionResult
from modal_app.functions import is_permanent
from modal_app.registry import builtin_registry
from modal_app.tasks import PayloadError, contrast_ratio
from tests.compute import ChatServer, Reply, completion, task

REGISTRY = builtin_registry()
X = [1, 2, 3, 4, 5]
Y = [2, 4, 5, 4, 5]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENROUTER_API_KEY", "BOOMERANG_LLM_API_KEY", "BOOMERANG_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOOMERANG_ARRAY_DEVICE", "cpu")


def run(task_type: str, payload: dict[str, Any]) -> FunctionResult:
    spec = REGISTRY.specialist_for(task_type)
    return FunctionResult.model_validate(REGISTRY.invoke(spec.function, task(task_type, spec.id, payload)))


def out_of(result: FunctionResult) -> dict[str, Any]:
    """The output, typed loosely: tests index deep into JSON."""
    return result.output


def assert_offline_usage(result: FunctionResult) -> None:
    (usage,) = result.usage
    assert (usage.provider, usage.model) == ("offline", "offline-echo")
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert any("offline provider" in w for w in result.warnings)


def test_code_ang_offline() -> None:
    result = run("code_generation", {"prompt": "Create a FastAPI endpoint. It returns the health status."})
    out = out_of(result)
    assert out["language"] == "python"
    assert out["code"] == (
        "# offline-echo: a model would write the code for this request:\n"
        "# Create a FastAPI endpoint.\n# It returns the health status."
    )
    assert out["lines_of_code"] == 3
    assert (result.function, result.gpu_type, result.cpu, result.memory_mib) == (
        "task_code_ang",
        "A10G",
        4.0,
        16384,
    )
    assert result.runtime == "local" and result.started_at <= result.finished_at
    assert_offline_usage(result)


def test_code_ang_through_a_chat_server(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = "```python\ndef add(a, b):\n    return a + b\n```\nAdds two numbers."
    with ChatServer(
        [Reply(200, completion(answer, prompt_tokens=80, completion_tokens=20))]
    ).running() as srv:
        monkeypatch.setenv("BOOMERANG_LLM_API_KEY", "sk-test")
        monkeypatch.setenv("BOOMERANG_LLM_BASE_URL", srv.base_url)
        result = run("code_generation", {"prompt": "add two numbers", "model": "claude-3.5-haiku"})
    assert out_of(result)["code"] == "def add(a, b):\n    return a + b"
    assert out_of(result)["explanation"] == "Adds two numbers."
    assert result.usage[0].model_dump() == {
        "model": "claude-3.5-haiku",
        "provider": "127.0.0.1",
        "input_tokens": 80,
        "output_tokens": 20,
    }
    assert srv.seen[0].body["model"] == "anthropic/claude-3.5-haiku"
    assert result.warnings == ()


def test_code_ang_refuses_a_model_it_does_not_have() -> None:
    with pytest.raises(
        PayloadError, match=r"payload.model 'gpt-9' is not one of Code_Ang's models: gpt-4.1-nano"
    ):
        run("code_generation", {"prompt": "x", "model": "gpt-9"})


def test_scout_ang_offline() -> None:
    result = run(
        "research",
        {"topic": "Serverless GPU pricing. Per-second billing wins.", "questions": ["Who is cheapest?"]},
    )
    out = out_of(result)
    assert out["findings"] == [
        "Research topic: Serverless GPU pricing.",
        "Per-second billing wins.",
        "Answer these questions:",
        "Who is cheapest?",
    ]
    assert out["questions"] == ["Who is cheapest?"]
    assert "pricing" in out["keywords"] and out["summary"].startswith("[offline-echo]")
    assert_offline_usage(result)


def test_paint_ang_designs_a_readable_spec() -> None:
    result = run(
        "design",
        {"brief": "An analytics dashboard for a bank with search and charts", "audience": "analysts"},
    )
    spec = out_of(result)
    palette = spec["palette"]
    assert isinstance(palette, dict) and all(len(c) == 7 and c.startswith("#") for c in palette.values())
    assert spec["layout"] == "sidebar navigation + card grid"
    assert "search bar" in spec["components"] and "chart" in spec["components"]
    assert spec["contrast"]["text_on_background"] >= 4.5 and spec["contrast"]["text_on_primary"] >= 4.5
    assert spec["typography"]["heading"] == "IBM Plex Sans"  # a bank reads formal
    assert spec["render_with"] == "flux-schnell" and spec["rationale"]
    assert any("not loaded" in w for w in result.warnings)
    assert_offline_usage(result)
    # Same brief, same design.
    assert (
        run(
            "design",
            {"brief": "An analytics dashboard for a bank with search and charts", "audience": "analysts"},
        ).output
        == spec
    )


def test_paint_ang_keeps_the_brand_colour_and_checks_its_field() -> None:
    spec = out_of(run("design", {"brief": "A coffee shop site", "brand_color": "#6F4E37"}))
    assert spec["palette"]["primary"] == "#6f4e37" and spec["text_on_primary"] == "#ffffff"
    with pytest.raises(PayloadError, match=r"payload.brand_color: String should match pattern"):
        run("design", {"brief": "x", "brand_color": "brown"})


def test_contrast_ratio_matches_wcag() -> None:
    assert contrast_ratio("#000000", "#ffffff") == 21.0
    assert contrast_ratio("#777777", "#ffffff") == 4.48


def test_crunch_ang_statistics_match_hand_computed_values() -> None:
    result = run("data_analysis", {"columns": {"x": X, "y": Y}, "target": "y"})
    out = out_of(result)
    x, y = out["columns"]["x"], out["columns"]["y"]
    assert (x["count"], x["mean"], x["min"], x["max"]) == (5, 3.0, 1.0, 5.0)
    assert x["std"] == pytest.approx(math.sqrt(2.5))
    assert y["mean"] == 4.0 and y["std"] == pytest.approx(math.sqrt(1.5))
    assert x["quantiles"] == pytest.approx({"p05": 1.2, "p25": 2.0, "p50": 3.0, "p75": 4.0, "p95": 4.8})
    assert out["correlations"]["matrix"]["x"]["y"] == pytest.approx(6 / math.sqrt(60))
    reg = out["regression"]
    assert reg["coefficients"]["x"] == pytest.approx(0.6) and reg["intercept"] == pytest.approx(2.2)
    assert reg["r_squared"] == pytest.approx(0.6) and reg["rows_used"] == 5
    assert (out["device"], result.device, result.usage) == ("cpu", "cpu", ())
    assert result.gpu_type == "A10G"


def test_crunch_ang_agrees_with_numpy_on_messier_data() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(10, 2, 200)
    b = 3 * a + rng.normal(0, 1, 200)
    c = rng.uniform(0, 1, 200)
    cols = {"a": a.tolist(), "b": b.tolist(), "c": c.tolist()}
    cols["c"][5] = None  # a missing value: per-column stats skip it, fits use complete rows
    out = out_of(run("data_analysis", {"columns": cols, "target": "b"}))
    assert out["columns"]["c"]["missing"] == 1 and out["correlations"]["rows_used"] == 199
    assert out["columns"]["c"]["mean"] == pytest.approx(np.delete(c, 5).mean())
    keep = np.arange(200) != 5
    m = np.column_stack([a, b, c])[keep]
    assert out["correlations"]["matrix"]["a"]["b"] == pytest.approx(np.corrcoef(m, rowvar=False)[0, 1])
    coef = np.linalg.lstsq(np.column_stack([np.ones(199), m[:, 0], m[:, 2]]), m[:, 1], rcond=None)[0]
    reg = out["regression"]
    assert [reg["intercept"], reg["coefficients"]["a"], reg["coefficients"]["c"]] == pytest.approx(
        coef.tolist()
    )


def test_crunch_ang_finds_outliers_by_z_score_and_accepts_rows() -> None:
    values = [10.0 + (i % 3) * 0.1 for i in range(19)] + [100.0]
    rows = [{"v": v} for v in values]
    out = out_of(run("data_analysis", {"rows": rows, "z_threshold": 3}))
    assert out["outliers"]["total"] == 1
    (hit,) = out["outliers"]["items"]
    assert (hit["column"], hit["row"], hit["value"]) == ("v", 19, 100.0) and hit["z"] > 3
    assert out["regression"] is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, r"give exactly one of payload.columns or payload.rows"),
        ({"columns": {"x": ["a", 2]}}, r"payload.columns.x.0: Input should be a valid number"),
        ({"columns": {"x": [1, 2], "y": [1]}}, r"payload.columns must all have the same length"),
        ({"columns": {"x": [1, 2]}, "target": "z"}, r"payload.target 'z' is not a column; columns: x"),
        ({"columns": {"x": [1]}}, r"need at least 2 rows"),
        (
            {"columns": {"x": [1, 2]}, "z_threshold": 0},
            r"payload.z_threshold: Input should be greater than 0",
        ),
    ],
)
def test_crunch_ang_bad_payloads_name_the_field(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        run("data_analysis", payload)
    assert is_permanent(caught.value)


async def test_a_specialist_runs_on_the_local_backend() -> None:
    backend = LocalBackend(max_concurrency=1)
    try:
        spec = REGISTRY.specialist_for("data_analysis")
        raw = await backend.call(
            spec.function, task("data_analysis", spec.id, {"columns": {"x": X, "y": Y}}), timeout_s=60
        )
        assert out_of(FunctionResult.model_validate(raw))["columns"]["x"]["mean"] == 3.0
        with pytest.raises(ComputeError, match=r"payload\.columns") as caught:
            await backend.call(spec.function, task("data_analysis", spec.id, {"columns": {}}), timeout_s=60)
        assert caught.value.permanent
    finally:
        await backend.aclose()
