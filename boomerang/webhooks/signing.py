"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

The scheme of https://www.standardwebhooks.com, so any receiver with a Standard
Webhooks library can check what Boomerang sends, and Boomerang can check what a
compute function sends back:

    signer = WebhookSigner.from_secret("whsec_...")
    headers = signer.headers("run-1/00003/checkpoint_opened", body)   # to send
    webhook_id = signer.verify(body, request.headers)                   # to receive

Verification raises one `WebhookVerificationError` subclass per failure, so the
receiver can say exactly what was wrong without ever saying what was expected.
A timestamp more than `tolerance` (5 minutes) away from now, in either direction,
is refused: a captured request cannot be replayed later, and the receiver only
has to remember ids for that long to refuse a replay inside the window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from boomerang.errors import BoomerangError

SECRET_PREFIX = "whsec_"  # noqa: S105  # the scheme's marker, not a secret
TOLERANCE = timedelta(minutes=5)
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
MAX_ID_LENGTH = 512
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_DIGEST_SIZE = hashlib.sha256().digest_size


class WebhookVerificationError(BoomerangError):
    """A received webhook cannot be trusted; the subclass says why."""


class MissingHeaderError(WebhookVerificationError):
    """`webhook-id`, `webhook-timestamp` or `webhook-signature` is absent or empty."""


class MalformedHeaderError(WebhookVerificationError):
    """A header is present but unreadable: a non-integer timestamp, a signature that is not base64."""


class StaleTimestampError(WebhookVerificationError):
    """The timestamp is older than the tolerance: a late replay, or a sender's clock far behind."""


class FutureTimestampError(WebhookVerificationError):
    """The timestamp is ahead by more than the tolerance: a pre-signed request, or a clock far ahead."""


class BadSignatureError(WebhookVerificationError):
    """No signature matches: the body was altered, or it was signed with another secret."""


class InvalidSecretError(BoomerangError, ValueError):
    """The configured secret is not `whsec_` followed by base64 of at least 16 bytes."""


def generate_secret(nbytes: int = 32) -> str:
    """A new random secret in the `whsec_<base64>` form receivers expect."""
    if nbytes < 16:
        raise ValueError(f"a webhook secret needs at least 16 random bytes, got {nbytes}")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def _secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecretError("the webhook secret must be whsec_ followed by base64") from None
    if len(key) < 16:
        raise InvalidSecretError("the webhook secret must decode to at least 16 bytes")
    return key


class WebhookSigner:
    """Signs and verifies with one secret; its `repr` never shows the key."""

    def __init__(self, key: bytes, *, tolerance: timedelta = TOLERANCE) -> None:
        if not key:
            raise InvalidSecretError("the webhook key is empty")
        if tolerance <= timedelta(0):
            raise ValueError(f"tolerance must be positive, got {tolerance}")
        self._key = key
        self.tolerance = tolerance

    @classmethod
    def from_secret(cls, secret: str | SecretStr, *, tolerance: timedelta = TOLERANCE) -> WebhookSigner:
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        return cls(_secret_key(raw), tolerance=tolerance)

    def __repr__(self) -> str:
        return f"WebhookSigner(key=[redacted], tolerance={self.tolerance})"

    def _digest(self, webhook_id: str, timestamp: int, body: bytes) -> bytes:
        return hmac.new(self._key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()

    def sign(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` value for this id, timestamp (unix seconds) and body."""
        return "v1," + base64.b64encode(self._digest(webhook_id, timestamp, body)).decode()

    def headers(self, webhook_id: str, body: bytes, *, now: datetime | None = None) -> dict[str, str]:
        """The three headers to send with `body`; `now` is the signing time (default: the clock)."""
        if not webhook_id:
            raise ValueError("a webhook id is required")
        timestamp = int((now or datetime.now(UTC)).timestamp())
        return {
            ID_HEADER: webhook_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: self.sign(webhook_id, timestamp, body),
        }

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None) -> str:
        """Check a received webhook; returns its `webhook-id`, raises `WebhookVerificationError`."""
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id, raw_ts, raw_sig = (
            lowered.get(h, "").strip() for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
        )
        missing = [
            h
            for h, v in ((ID_HEADER, webhook_id), (TIMESTAMP_HEADER, raw_ts), (SIGNATURE_HEADER, raw_sig))
            if not v
        ]
        if missing:
            raise MissingHeaderError(f"missing header(s): {', '.join(missing)}")
        if len(webhook_id) > MAX_ID_LENGTH:
            raise MalformedHeaderError(f"{ID_HEADER} is longer than {MAX_ID_LENGTH} characters")
        timestamp = self._check_timestamp(raw_ts, now or datetime.now(UTC))
        candidates = _v1_signatures(raw_sig)
        expected = self._digest(webhook_id, timestamp, body)
        # compare_digest against every candidate: how many were tried says nothing about the key.
        if not any([hmac.compare_digest(expected, c) for c in candidates]):  # noqa: C419
            raise BadSignatureError("no signature matches the body (altered body or another secret)")
        return webhook_id

    def _check_timestamp(self, raw: str, now: datetime) -> int:
        if not _TIMESTAMP.match(raw):
            raise MalformedHeaderError(f"{TIMESTAMP_HEADER} must be whole unix seconds")
        timestamp = int(raw)
        skew = timestamp - now.timestamp()
        if skew < -self.tolerance.total_seconds():
            raise StaleTimestampError(f"{TIMESTAMP_HEADER} is more than {self.tolerance} old")
        if skew > self.tolerance.total_seconds():
            raise FutureTimestampError(f"{TIMESTAMP_HEADER} is more than {self.tolerance} in the future")
        return timestamp


def _v1_signatures(header: str) -> list[bytes]:
    """Every `v1,<base64>` entry of the header (others are for other schemes and skipped)."""
    found: list[bytes] = []
    for entry in header.split():
        version, sep, encoded = entry.partition(",")
        if not sep:
            raise MalformedHeaderError(f"{SIGNATURE_HEADER} entries must look like v1,<base64>")
        if version != "v1":
            continue
        try:
            digest = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedHeaderError(
                f"{SIGNATURE_HEADER} holds a v1 signature that is not base64"
            ) from None
        if len(digest) != _DIGEST_SIZE:
            raise MalformedHeaderError(f"{SIGNATURE_HEADER} holds a v1 signature of the wrong length")
        found.append(digest)
    if not found:
        raise MalformedHeaderError(f"{SIGNATURE_HEADER} holds no v1 signature")
    return found


def signed_headers(
    signers: list[WebhookSigner], webhook_id: str, body: bytes, *, now: datetime | None = None
) -> dict[str, str]:
    """The headers with one `v1,…` entry per signer (a rotation's overlap: old and new secret)."""
    if not signers:
        raise ValueError("at least one signer is needed")
    headers = signers[0].headers(webhook_id, body, now=now)
    timestamp = int(headers[TIMESTAMP_HEADER])
    headers[SIGNATURE_HEADER] = " ".join(s.sign(webhook_id, timestamp, body) for s in signers)
    return headers
