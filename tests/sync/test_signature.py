"""Webhook signatures, Stripe style: ``t=<unix s>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">``, checked here against an HMAC computed independently."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from svc.bookkeepers.http import signature
from svc.settings import BookkeeperSetting


def test_the_signature_covers_the_timestamp_and_the_body():
    body = b'{"account_id":"a1"}'
    header = signature(SecretStr("s3cret"), body, 1_790_000_000)
    expected = hmac.new(b"s3cret", b'1790000000.{"account_id":"a1"}', hashlib.sha256)
    assert header == f"t=1790000000,v1={expected.hexdigest()}"
    assert signature(SecretStr("s3cret"), body, 1_790_000_001) != header  # fresh each time


def test_secrets_are_secret_and_the_first_of_several_signs():
    entry = BookkeeperSetting(adapter="http", url="http://b/x", secret=["new", "old"])
    assert [s.get_secret_value() for s in entry.secrets] == ["new", "old"]
    assert "new" not in repr(entry) and "old" not in repr(entry)
