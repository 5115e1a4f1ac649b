"""URL credentials are dropped and anything like a key is redacted before it is stored."""

from __future__ import annotations

import pytest

from planner.backends.http_edge import (
    HttpEdge,
    has_userinfo,
    normalize_base_url,
    redact,
    strip_userinfo,
)
from planner.backends.openai import OpenAIBackend


@pytest.mark.parametrize(
    ("url", "bare"),
    [
        ("http://alice:secret@127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("alice:secret@127.0.0.1:8080", "127.0.0.1:8080"),
        ("https://token@example.com/x", "https://example.com/x"),
        ("http://127.0.0.1:8080/v1?next=a@b", "http://127.0.0.1:8080/v1?next=a@b"),
    ],
)
def test_userinfo_is_stripped(url: str, bare: str) -> None:
    assert strip_userinfo(url) == bare
    assert has_userinfo(url) == (url != bare)
    assert "secret" not in normalize_base_url(url) and "alice" not in normalize_base_url(url)


def test_backends_never_keep_url_credentials() -> None:
    backend = OpenAIBackend("http://alice:secret@127.0.0.1:9/v1", "m", env={})
    for text in (backend.url, backend.describe(), repr(backend)):
        assert "alice" not in text and "secret" not in text
    assert HttpEdge("http://a:b@127.0.0.1:9").base_url == "http://127.0.0.1:9"


def test_redact_hides_keys_and_authorization_values() -> None:
    body = (
        '{"error": "bad key sk-abcdef123456, you sent Authorization: Bearer plainkey1 '
        'and x-api-key: foo12345 from http://alice:secret@h/ with my-own-value", '
        '"headers": {"authorization": "Basic YWxpY2U6c2VjcmV0"}}'
    )
    clean = redact(body, ("my-own-value",))
    for secret in ("sk-abcdef", "plainkey1", "foo12345", "alice", "secret", "my-own-value", "YWxp"):
        assert secret not in clean
    assert "bad key" in clean and "***" in clean and clean.startswith('{"error"')
