"""Signed webhooks (Standard Webhooks): signing, verification and delivery records.

signer = WebhookSigner.from_secret(secret)          # "whsec_<base64>"
headers = signer.headers(webhook_id, body)          # webhook-id / -timestamp / -signature
signer.verify(body, request_headers)                 # raises a `WebhookVerificationError`
"""

from boomerang.webhooks.signing import (
    BadSignatureError,
    FutureTimestampError,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    StaleTimestampError,
    WebhookSigner,
    WebhookVerificationError,
    generate_secret,
)

__all__ = [
    "BadSignatureError",
    "FutureTimestampError",
    "InvalidSecretError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "StaleTimestampError",
    "WebhookSigner",
    "WebhookVerificationError",
    "generate_secret",
]
