"""The specialists' function bodies: one `TaskRequest` in, one `FunctionOutput` out.

Each body validates its own payload (a bad one is a `PayloadError`, a `ValueError`
naming the field, so it is never retried), does its work and reports the token usage
of every model call for costing. Code_Ang, Scout_Ang and Paint_Ang call the chat
client (`llm.py`; offline without a key); Crunch_Ang computes (`analysis.py`).
Paint_Ang's image models cannot be loaded here, so it returns a design spec (palette
checked for contrast, layout, components) and the prompt an image model would get.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modal_app import analysis, text
from modal_app.contracts import FunctionOutput, TaskRequest, TokenUsage
from modal_app.errors import PermanentError
from modal_app.llm import OFFLINE_PROVIDER, ChatClient, ChatMessage, chat_client_from_env

P = TypeVar("P", bound=BaseModel)
_FENCE = re.compile(r"```([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(.*\S)")


class PayloadError(PermanentError, ValueError):
    """A task's payload does not fit its specialist; the message names the field."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = Field(default=None, description="One of the specialist's models.")


class CodePayload(_Payload):
    prompt: str = Field(min_length=1, max_length=20_000)
    language: str = Field(default="python", min_length=1, max_length=40)
    context: str = Field(default="", max_length=50_000, description="Existing code to work with.")


class ResearchPayload(_Payload):
    topic: str = Field(min_length=1, max_length=2_000)
    questions: tuple[str, ...] = Field(default=(), max_length=20)
    max_findings: int = Field(default=8, ge=1, le=30)


class DesignPayload(_Payload):
    brief: str = Field(min_length=1, max_length=10_000)
    audience: str = Field(default="", max_length=500)
    brand_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class AnalysisPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, list[float | None]] | None = None
    rows: list[dict[str, float | None]] | None = None
    target: str | None = None
    z_threshold: float = Field(default=3.0, gt=0)

    @model_validator(mode="after")
    def _one_shape(self) -> AnalysisPayload:
        if (self.columns is None) == (self.rows is None):
            raise ValueError("give exactly one of payload.columns or payload.rows")
        return self


def parse_payload(model: type[P], req: TaskRequest) -> P:
    try:
        return model.model_validate(req.payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"payload.{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise PayloadError(f"bad payload for {req.task_type} ({req.boomer_ang_id}): {problems}") from None


def _model(chosen: str | None, models: Sequence[str], who: str) -> str:
    if chosen is None:
        return models[0]
    if chosen not in models:
        raise PayloadError(f"payload.model {chosen!r} is not one of {who}'s models: {', '.join(models)}")
    return chosen


def _ask(client: ChatClient, model: str, system: str, prompt: str) -> tuple[str, TokenUsage, list[str]]:
    reply = client.complete(
        [ChatMessage(role="system", content=system), ChatMessage(role="user", content=prompt)], model=model
    )
    warnings = []
    if reply.usage.provider == OFFLINE_PROVIDER:
        warnings.append("offline provider: no OPENROUTER_API_KEY or BOOMERANG_LLM_API_KEY; answer is an echo")
    return reply.text, reply.usage, warnings


def code_generation(
    req: TaskRequest, *, models: Sequence[str] = ("gpt-4.1-nano",), client: ChatClient | None = None
) -> FunctionOutput:
    """Code_Ang: write code for the prompt; the first fenced block is the code."""
    p = parse_payload(CodePayload, req)
    model = _model(p.model, models, "Code_Ang")
    system = (
        f"You are Code_Ang, a senior {p.language} engineer. Answer with one fenced code block "
        f"containing complete, working {p.language} code, then at most five lines of explanation."
    )
    prompt = p.prompt if not p.context else f"{p.prompt}\n\nExisting code:\n```\n{p.context}\n```"
    reply, usage, warnings = _ask(client or chat_client_from_env(), model, system, prompt)
    blocks = _FENCE.findall(reply)
    if not blocks:
        warnings.append("the model returned no fenced code block")
    code = blocks[0][1].rstrip("\n") if blocks else ""
    output: dict[str, Any] = {
        "language": (blocks[0][0] if blocks and blocks[0][0] else p.language),
        "code": code,
        "explanation": _FENCE.sub("", reply).strip(),
        "lines_of_code": len(code.splitlines()),
    }
    return FunctionOutput(
        output=output,
        summary=f"Code_Ang wrote {output['lines_of_code']} lines of {output['language']}",
        usage=(usage,),
        warnings=tuple(warnings),
    )


def research(
    req: TaskRequest, *, models: Sequence[str] = ("gpt-4.1-nano",), client: ChatClient | None = None
) -> FunctionOutput:
    """Scout_Ang: a summary and bulleted findings on a topic, plus its key terms."""
    p = parse_payload(ResearchPayload, req)
    model = _model(p.model, models, "Scout_Ang")
    system = (
        "You are Scout_Ang, a research analyst. Start with a short summary paragraph, then give "
        f"at most {p.max_findings} findings, one per line starting with '- ', each specific and checkable."
    )
    questions = "".join(f"\n- {q}" for q in p.questions)
    prompt = f"Research topic: {p.topic}" + (f"\nAnswer these questions:{questions}" if questions else "")
    reply, usage, warnings = _ask(client or chat_client_from_env(), model, system, prompt)
    findings = [m.group(1) for line in reply.splitlines() if (m := _BULLET.match(line))]
    summary_lines = [ln.strip() for ln in reply.splitlines() if ln.strip() and not _BULLET.match(ln)]
    output: dict[str, Any] = {
        "topic": p.topic,
        "summary": " ".join(summary_lines),
        "findings": findings[: p.max_findings],
        "questions": list(p.questions),
        "keywords": text.keywords(f"{p.topic} {reply}"),
    }
    return FunctionOutput(
        output=output,
        summary=f"Scout_Ang found {len(output['findings'])} findings on {p.topic[:60]!r}",
        usage=(usage,),
        warnings=tuple(warnings),
    )


def data_analysis(req: TaskRequest) -> FunctionOutput:
    """Crunch_Ang: statistics, correlations, regression and outliers of the dataset given."""
    p = parse_payload(AnalysisPayload, req)
    columns = p.columns if p.columns is not None else analysis.rows_to_columns(p.rows or [])
    result = analysis.analyze(columns, target=p.target, z_threshold=p.z_threshold)
    return FunctionOutput(
        output=result,
        summary=f"Crunch_Ang analysed {result['rows']} rows x {len(columns)} columns on {result['device']}",
        device=result["device"],
        warnings=tuple(result["warnings"]),
    )


# --- Paint_Ang -------------------------------------------------------------------------

# Mood words -> hue (degrees): conventional associations a designer would start from.
_MOOD_HUES = {
    "finance": 215, "bank": 215, "trust": 210, "secure": 215, "calm": 195, "health": 165,
    "medical": 185, "clinic": 185, "eco": 130, "green": 130, "nature": 120, "garden": 110,
    "energy": 15, "sport": 10, "fitness": 10, "food": 25, "restaurant": 20, "coffee": 28,
    "luxury": 280, "beauty": 330, "fashion": 320, "kids": 45, "playful": 45, "education": 40,
    "tech": 250, "developer": 245, "ai": 260, "data": 230, "music": 300, "travel": 190,
}  # fmt: skip
_LAYOUTS = (
    (("dashboard", "admin", "analytics", "internal"), "sidebar navigation + card grid",
     ["sidebar", "top bar", "stat cards", "data table", "chart"]),
    (("shop", "store", "ecommerce", "checkout", "product"), "product grid + cart drawer",
     ["header with search", "filter panel", "product card", "cart drawer", "checkout form"]),
    (("mobile", "ios", "android"), "single column + bottom navigation",
     ["app bar", "list cells", "bottom navigation", "floating action button"]),
    (("landing", "launch", "marketing", "waitlist", "startup"), "hero + feature sections + call to action",
     ["hero with headline", "feature grid", "social proof", "pricing table", "signup form", "footer"]),
)  # fmt: skip
_EXTRA_COMPONENTS = {
    "form": "form", "signup": "signup form", "chart": "chart", "pricing": "pricing table",
    "search": "search bar", "map": "map", "chat": "chat panel", "calendar": "calendar",
}  # fmt: skip


def _hex(h: float, lightness: float, saturation: float) -> str:
    r, g, b = colorsys.hls_to_rgb((h % 360) / 360, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _luminance(color: str) -> float:
    """WCAG 2.x relative luminance of a #rrggbb colour."""
    chans = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in chans]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return round((la + 0.05) / (lb + 0.05), 2)


def _on(color: str) -> str:
    """Black or white, whichever reads better on `color`."""
    return max(("#111827", "#ffffff"), key=lambda t: contrast_ratio(color, t))


def design_spec(brief: str, *, audience: str = "", brand_color: str | None = None) -> dict[str, Any]:
    """A deterministic design direction from the brief's words (and brand colour, if any)."""
    words = set(text.words(f"{brief} {audience}"))
    if brand_color:
        r, g, b = (int(brand_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
        hue = colorsys.rgb_to_hls(r, g, b)[0] * 360
    else:
        hits = sorted(_MOOD_HUES[w] for w in words if w in _MOOD_HUES)
        # No mood word: a stable hue from the brief itself, so a brief keeps its colours.
        hue = hits[len(hits) // 2] if hits else int(hashlib.sha256(brief.encode()).hexdigest()[:6], 16) % 360
    primary = brand_color.lower() if brand_color else _hex(hue, 0.42, 0.65)
    palette = {
        "primary": primary,
        "secondary": _hex(hue + 30, 0.35, 0.45),
        "accent": _hex(hue + 180, 0.50, 0.75),
        "background": _hex(hue, 0.98, 0.30),
        "surface": "#ffffff",
        "text": "#111827",
    }
    layout, components = "header + content + footer", ["header", "content sections", "footer"]
    for cues, name, parts in _LAYOUTS:
        if words & set(cues):
            layout, components = name, list(parts)
            break
    components += [c for w, c in _EXTRA_COMPONENTS.items() if w in words and c not in components]
    formal = bool(words & {"finance", "bank", "legal", "medical", "clinic", "enterprise", "secure"})
    return {
        "palette": palette,
        "text_on_primary": _on(primary),
        "contrast": {
            "text_on_background": contrast_ratio(palette["text"], palette["background"]),
            "text_on_primary": contrast_ratio(_on(primary), primary),
        },
        "typography": {
            "heading": "IBM Plex Sans" if formal else "Poppins",
            "body": "Inter",
            "scale": [12, 14, 16, 20, 24, 32, 48],
        },
        "layout": layout,
        "components": components,
        "grid": {"columns": 12, "gutter_px": 24, "max_width_px": 1200},
    }


def design(
    req: TaskRequest,
    *,
    models: Sequence[str] = ("flux-schnell", "stable-diffusion-xl"),
    chat_model: str = "gpt-4.1-nano",
    client: ChatClient | None = None,
) -> FunctionOutput:
    """Paint_Ang: a design spec, its rationale from the chat model, and an image prompt."""
    p = parse_payload(DesignPayload, req)
    image_model = _model(p.model, models, "Paint_Ang")
    spec = design_spec(p.brief, audience=p.audience, brand_color=p.brand_color)
    system = (
        "You are Paint_Ang, a product designer. In at most five lines starting with '- ', explain "
        "why this palette, layout and component set fit the brief and the audience."
    )
    prompt = f"Brief: {p.brief}\nAudience: {p.audience or 'general'}\nSpec: {json.dumps(spec)}"
    reply, usage, warnings = _ask(client or chat_client_from_env(), chat_model, system, prompt)
    spec["rationale"] = [m.group(1) for line in reply.splitlines() if (m := _BULLET.match(line))]
    colors = ", ".join(spec["palette"].values())
    spec["image_prompt"] = f"UI mockup, {spec['layout']}, colours {colors}: {p.brief[:300]}"
    spec["render_with"] = image_model
    warnings.append(f"{image_model} is not loaded in this build: the output is a spec, not an image")
    return FunctionOutput(
        output=spec,
        summary=f"Paint_Ang designed a {spec['layout']} with {len(spec['components'])} components",
        usage=(usage,),
        warnings=tuple(warnings),
    )
