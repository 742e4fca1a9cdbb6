"""The inbox pages: sign in, what waits, decide it, and one run's story.

Every decision goes through `BoomerangClient.decide` (the run's validated `decide`
update), exactly like `POST /hitl/approve`: the same refusals, word for word. A
form carries the opening it showed and a decision id minted when it was rendered,
so a stale form is refused with the run's reason and a resubmitted one is a
duplicate. The pages are not part of the OpenAPI document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from boomerang.api.deps import ApiContext, context, owned_run, upstream
from boomerang.errors import InvalidDecisionError, UnknownRunError
from boomerang.inbox import views
from boomerang.inbox.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Session,
    SignedIn,
    cookie_secure,
    login_csrf_matches,
    new_login_csrf,
)
from boomerang.models.decisions import DecisionInput, ReceiptStatus
from boomerang.models.pipeline import Decision
from boomerang.store.queries import charter_for_run
from boomerang.store.tokens import authenticate

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(when=views.when, span=views.span, dom_id=views.dom_id)
Ctx = Annotated[ApiContext, Depends(context)]

_RECEIPT_TEXT = {
    ReceiptStatus.APPLIED: "Decision recorded.",
    ReceiptStatus.HELD: "Decision held: it applies when the checkpoint opens.",
    ReceiptStatus.DUPLICATE: "Already recorded: this form was sent before, nothing changed.",
    ReceiptStatus.PENDING: "Sent: no worker has taken it yet; it is kept and applied once one does.",
}


def _no_store(response: Response) -> Response:
    # Pages carry per-form ids and CSRF values: never serve one from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/inbox", status_code=303)


@router.get("/inbox/login")
async def login_form(request: Request, error: str = "", next: str = "/inbox") -> Response:
    csrf = new_login_csrf()
    response = templates.TemplateResponse(
        request, "login.html", {"csrf": csrf, "error": error, "next": _local(next)},
        status_code=401 if error else 200,
    )  # fmt: skip
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                        secure=cookie_secure(request), path="/inbox")  # fmt: skip
    return _no_store(response)


@router.post("/inbox/login")
async def login(request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    if not login_csrf_matches(request, str(form.get("csrf", ""))):
        raise HTTPException(403, "the sign-in form expired; reload it")
    secret = str(form.get("token", "")).strip()
    token = await authenticate(ctx.pool, secret) if secret else None
    if token is None:
        return await login_form(request, error="That token is not valid (unknown or revoked).")
    response = RedirectResponse(_local(str(form.get("next", "/inbox"))), status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict",
                        secure=cookie_secure(request), path="/")  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/inbox")
    return response


@router.post("/inbox/logout")
async def logout(request: Request, who: SignedIn) -> Response:
    who.check_csrf(str((await request.form()).get("csrf", "")))
    response = RedirectResponse("/inbox/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/inbox")
async def inbox(request: Request, who: SignedIn, ctx: Ctx,
                project: str = "", checkpoint: str = "", age: str = "") -> Response:  # fmt: skip
    filters = views.Filters(project=project, checkpoint=checkpoint, age=age)
    return await _render_inbox(request, who, ctx, filters)


@router.post("/inbox/decide")
async def decide(request: Request, who: SignedIn, ctx: Ctx) -> Response:
    form = await request.form()
    who.check_csrf(str(form.get("csrf", "")))
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    key = f"{fields.get('run_id', '')}:{fields.get('checkpoint', '')}"
    if not who.may_decide:
        result = views.Result(
            key, False, "refused", "A viewer token can see checkpoints but not decide them."
        )
        return await _render_inbox(request, who, ctx, views.Filters(), result=result, status_code=403)
    (ok, shown, message), code = await _decide(ctx, who, fields)
    outcome = views.Result(key, ok, shown, message)
    return await _render_inbox(request, who, ctx, views.Filters(), result=outcome, status_code=code)


async def _decide(ctx: ApiContext, who: Session, fields: dict[str, str]) -> tuple[tuple[bool, str, str], int]:
    run_id = fields.get("run_id", "")
    try:
        decision = DecisionInput(
            checkpoint=fields.get("checkpoint", ""),
            approver=who.token.name,
            decision=Decision(fields.get("decision", "")),
            comment=fields.get("comment") or None,
            decision_id=fields.get("decision_id") or None,
            target_phase=fields.get("target_phase") or None,
            budget_usd=Decimal(fields["budget_usd"]) if fields.get("budget_usd") else None,
            opening=int(fields["opening"]) if fields.get("opening") else None,
        )
    except (ValueError, InvalidOperation, ValidationError) as exc:
        return (False, "refused", f"The form is not a decision: {_first_error(exc)}"), 422
    try:
        await owned_run(ctx, run_id, who.token.tenant)
        async with upstream("decision", ctx.timeout_s):
            receipt = await ctx.client.decide(run_id, decision, wait_s=ctx.timeout_s / 2)
    except InvalidDecisionError as exc:
        return (False, "refused", str(exc)), 409
    except UnknownRunError:
        return (False, "refused", f"No run {run_id!r}."), 404
    except HTTPException as exc:
        return (False, "refused", str(exc.detail)), exc.status_code
    code = 202 if receipt.status is ReceiptStatus.PENDING else 200
    return (True, receipt.status.value, _RECEIPT_TEXT[receipt.status]), code


@router.get("/inbox/runs/{run_id}")
async def run_page(request: Request, run_id: str, who: SignedIn, ctx: Ctx) -> Response:
    await owned_run(ctx, run_id, who.token.tenant)
    async with upstream("status", ctx.timeout_s):
        status = await ctx.client.status(run_id)
    charter = await charter_for_run(ctx.pool, run_id, who.token.tenant)
    page = {"who": who, "status": status, "charter": charter, "phases": views.phases(status, charter),
            "now": datetime.now(UTC)}  # fmt: skip
    return _no_store(templates.TemplateResponse(request, "run.html", page))


async def _render_inbox(
    request: Request,
    who: Session,
    ctx: ApiContext,
    filters: views.Filters,
    *,
    result: views.Result | None = None,
    status_code: int = 200,
) -> Response:
    now = datetime.now(UTC)
    async with upstream("approvals", ctx.timeout_s):
        pending = await ctx.client.pending_approvals(who.token.tenant)
    items = []
    for p in pending:
        if who.may_decide and p.checkpoint.deciders and who.token.name not in p.checkpoint.deciders:
            continue  # someone else's to decide (the run's roster); viewers still see everything
        targets: tuple[str, ...] = ()
        if Decision.PIVOT in p.checkpoint.options:
            async with upstream("status", ctx.timeout_s):
                targets = views.pivot_targets(await ctx.client.status(p.run_id), p.checkpoint.phase)
        items.append(views.item(p, now, pivot_targets=targets))
    page: dict[str, Any] = {
        "who": who,
        "items": [i for i in items if filters.keep(i.pending, now)],
        "total": len(items),
        "filters": filters,
        "projects": sorted({i.pending.project_id for i in items}),
        "checkpoints": sorted({i.pending.checkpoint.name for i in items}),
        "ages": list(views.AGES),
        "result": result,
        "result_in_item": result is not None and any(i.key == result.key for i in items),
    }
    return _no_store(templates.TemplateResponse(request, "inbox.html", page, status_code=status_code))


def _local(target: str) -> str:
    """Only a path on this site may follow sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/inbox"


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/inbox/login?next={quote(target, safe='')}", status_code=303)
