"""Telling people a checkpoint waits: a Slack-compatible incoming webhook and e-mail over SMTP.

    notify = NotifyActivities.from_settings(settings)   # worker.py; unconfigured channels skip
    worker = Worker(..., activities=[*notify.activities])

One activity per channel, so a retry resends only the channel that failed. Temporal
retries them (workflows/notify.py); the run never waits on either.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import JsonValue
from temporalio import activity
from temporalio.exceptions import ApplicationError

from boomerang.models.notify import ApprovalNotice
from boomerang.settings import Settings

SKIPPED = "skipped"
SENT = "sent"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    sender: str = "boomerang@localhost"
    to: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout_s: float = 30.0


def slack_payload(notice: ApprovalNotice) -> dict[str, JsonValue]:
    """Slack's incoming-webhook shape (`text` + Block Kit); Mattermost and others read `text`."""
    return {
        "text": f"{notice.headline()}: {notice.link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{notice.headline()}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": notice.text()}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in the inbox"},
                        "url": notice.link,
                    }
                ],
            },
        ],
    }


def email_message(notice: ApprovalNotice, config: SmtpConfig) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[Boomerang] {notice.headline()}"
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Message-ID"] = f"<{notice.notice_id.replace(':', '.')}@boomerang>"
    message.set_content(notice.text())
    return message


class NotifyActivities:
    def __init__(
        self, *, slack_url: str | None = None, smtp: SmtpConfig | None = None, timeout_s: float = 30.0
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if smtp is not None and not smtp.to:
            raise ValueError("SMTP notifications need at least one recipient (BOOMERANG_SMTP_TO)")
        self._slack_url = slack_url
        self._smtp = smtp
        self._timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifyActivities:
        smtp = None
        if settings.smtp_host:
            smtp = SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                to=settings.smtp_to,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls,
            )
        slack = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
        return cls(slack_url=slack, smtp=smtp)

    @property
    def activities(self) -> list[Any]:
        return [self.notify_slack, self.notify_email]

    @activity.defn(name="notify_slack")
    async def notify_slack(self, notice: ApprovalNotice) -> str:
        if not self._slack_url:
            return SKIPPED
        async with httpx.AsyncClient(timeout=self._timeout_s) as http:
            response = await http.post(self._slack_url, json=slack_payload(notice))
        if response.status_code in (404, 410):  # the webhook was removed: retrying cannot help
            raise ApplicationError(f"Slack webhook gone ({response.status_code})", non_retryable=True)
        if response.status_code >= 300:
            raise ApplicationError(f"Slack webhook answered {response.status_code}")
        return SENT

    @activity.defn(name="notify_email")
    async def notify_email(self, notice: ApprovalNotice) -> str:
        config = self._smtp
        if config is None:
            return SKIPPED
        await asyncio.to_thread(_send_mail, email_message(notice, config), config)
        return SENT


def _send_mail(message: EmailMessage, config: SmtpConfig) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
        if config.starttls:
            smtp.starttls()
        if config.username and config.password:
            smtp.login(config.username, config.password)
        smtp.send_message(message)
