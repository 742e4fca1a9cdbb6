"""Standard Webhooks signatures: interoperable both ways, and every bad request refused by name."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from boomerang.webhooks.signing import (
    BadSignatureError,
    FutureTimestampError,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    StaleTimestampError,
    WebhookSigner,
    generate_secret,
)
from tests.webhooks import SECRET

BODY = b'{"type":"checkpoint_opened","data":{"checkpoint":"approve_founders_brief"}}'
WEBHOOK_ID = "vp-clinic-1/00004/checkpoint_opened"


def signer() -> WebhookSigner:
    return WebhookSigner.from_secret(SECRET)


def signed(body: bytes = BODY, *, at: datetime | None = None) -> dict[str, str]:
    return signer().headers(WEBHOOK_ID, body, now=at)


def test_boomerang_signatures_verify_with_the_standard_library() -> None:
    headers = signed()
    reference = standardwebhooks.Webhook(SECRET.get_secret_value())
    assert reference.verify(BODY, headers) == {
        "type": "checkpoint_opened",
        "data": {"checkpoint": "approve_founders_brief"},
    }
    assert headers["webhook-signature"].startswith("v1,")


def test_standard_library_signatures_verify_with_boomerang() -> None:
    reference = standardwebhooks.Webhook(SECRET.get_secret_value())
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": reference.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, BODY.decode()),
    }
    assert signer().verify(BODY, headers) == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


@given(webhook_id=st.text(min_size=1, max_size=80).filter(lambda s: s.strip() == s and s.isprintable()),
       body=st.binary(max_size=2000).map(lambda b: base64.b64encode(b)))  # fmt: skip
def test_any_id_and_body_round_trip_with_the_standard_library(webhook_id: str, body: bytes) -> None:
    headers = WebhookSigner.from_secret(SECRET).headers(webhook_id, body)
    standardwebhooks.Webhook(SECRET.get_secret_value()).verify(body, headers, json_parse=False)
    assert WebhookSigner.from_secret(SECRET).verify(body, headers) == webhook_id


def test_wrong_secret_is_refused() -> None:
    other = WebhookSigner.from_secret(generate_secret())
    with pytest.raises(BadSignatureError):
        other.verify(BODY, signed())


def test_altered_body_is_refused() -> None:
    with pytest.raises(BadSignatureError):
        signer().verify(BODY.replace(b"founders", b"funders"), signed())


def test_changed_id_is_refused() -> None:
    headers = {**signed(), "webhook-id": "another-id"}
    with pytest.raises(BadSignatureError):
        signer().verify(BODY, headers)


@pytest.mark.parametrize(
    ("skew", "error"),
    [
        (timedelta(minutes=-6), StaleTimestampError),
        (timedelta(hours=-3), StaleTimestampError),
        (timedelta(minutes=6), FutureTimestampError),
        (timedelta(days=1), FutureTimestampError),
    ],
)
def test_timestamps_outside_five_minutes_are_refused_both_ways(
    skew: timedelta, error: type[Exception]
) -> None:
    headers = signed(at=datetime.now(UTC) + skew)  # correctly signed, but at the wrong time
    with pytest.raises(error):
        signer().verify(BODY, headers)


@pytest.mark.parametrize("skew", [timedelta(minutes=-4), timedelta(minutes=4), timedelta(0)])
def test_timestamps_inside_the_tolerance_are_accepted(skew: timedelta) -> None:
    assert signer().verify(BODY, signed(at=datetime.now(UTC) + skew)) == WEBHOOK_ID


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_named(header: str) -> None:
    headers = signed()
    del headers[header]
    with pytest.raises(MissingHeaderError, match=header):
        signer().verify(BODY, headers)
    with pytest.raises(MissingHeaderError, match=header):
        signer().verify(BODY, {**signed(), header: "  "})


@pytest.mark.parametrize(
    "signature",
    [
        "v1,not base64!!",
        "v1,AAAA",  # base64, but not a SHA-256 digest
        "v1",  # no comma
        "v2,aGVsbG8=",  # only another scheme
    ],
)
def test_malformed_signatures_are_refused(signature: str) -> None:
    with pytest.raises(MalformedHeaderError):
        signer().verify(BODY, {**signed(), "webhook-signature": signature})


@pytest.mark.parametrize("timestamp", ["soon", "1.5e9", "-100", "17000000000000"])
def test_malformed_timestamps_are_refused(timestamp: str) -> None:
    with pytest.raises(MalformedHeaderError):
        signer().verify(BODY, {**signed(), "webhook-timestamp": timestamp})


def test_one_matching_signature_among_several_is_enough() -> None:
    """Secret rotation: the sender signs with old and new secrets at once."""
    headers = signed()
    stale = WebhookSigner.from_secret(generate_secret()).headers(WEBHOOK_ID, BODY)["webhook-signature"]
    headers["webhook-signature"] = f"v2,ignored {stale} {headers['webhook-signature']}"
    assert signer().verify(BODY, headers) == WEBHOOK_ID


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in signed().items()}
    assert signer().verify(BODY, headers) == WEBHOOK_ID


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!", "whsec_c2hvcnQ=", "plain words"])
def test_bad_secrets_are_refused_up_front(secret: str) -> None:
    with pytest.raises(InvalidSecretError):
        WebhookSigner.from_secret(secret)


def test_the_key_never_shows_in_repr() -> None:
    key_b64 = SECRET.get_secret_value().removeprefix("whsec_")
    assert key_b64 not in repr(signer())
    assert "redacted" in repr(signer())
