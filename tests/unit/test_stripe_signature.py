"""``Stripe-Signature`` verification: any v1 under any secret, constant-time, within the tolerance."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from system_apis.connectors.stripe.signature import SignatureError, verify

BODY = b'{"id":"evt_1","type":"invoice.paid"}'
NOW = 1_800_000_000


def v1(secret: str, timestamp: int, body: bytes = BODY) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_any_v1_under_any_configured_secret_is_authentic() -> None:
    header = f"t={NOW},v1={v1('whsec_other', NOW)},v1={v1('whsec_new', NOW)},v0=ignored"
    assert verify(header, BODY, ["whsec_old", "whsec_new"], tolerance=300, now=NOW + 299) == NOW


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "signature"),
        ("", "signature"),
        (f"v1={v1('whsec_new', NOW)}", "signature"),
        (f"t={NOW}", "signature"),
        (f"t=soon,v1={v1('whsec_new', NOW)}", "signature"),
        (f"t={NOW},v1={v1('whsec_unknown', NOW)}", "signature"),
        (f"t={NOW},v1={v1('whsec_new', NOW, BODY + b' ')}", "signature"),
        (f"t={NOW - 301},v1={v1('whsec_new', NOW - 301)}", "replay"),
        (f"t={NOW + 301},v1={v1('whsec_new', NOW + 301)}", "replay"),
        ("t=1," + "v1=x," * 2000, "signature"),
    ],
)
def test_a_missing_wrong_or_stale_signature_is_refused(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as refused:
        verify(header, BODY, ["whsec_new"], tolerance=300, now=NOW)
    assert refused.value.reason == reason


def test_no_secret_authenticates_nothing() -> None:
    with pytest.raises(SignatureError):
        verify(f"t={NOW},v1={v1('', NOW)}", BODY, [], tolerance=300, now=NOW)
