"""The HTTP edge: the one place httpx errors become planner errors; pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from planner.backends.http_edge import (
    HttpEdge,
    is_loopback,
    mapped_errors,
    normalize_base_url,
    parse_retry_after,
)
from planner.backends.profiles import PROFILES, get_profile, profile_for_owners, profile_for_url
from planner.errors import (
    BackendConnectError,
    BackendError,
    BackendTimeout,
    ConfigError,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
REQUEST = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Sat, 01 Mar 2025 12:00:30 GMT", 30.0),
        ("Sat, 01 Mar 2025 11:59:00 GMT", 0.0),  # already past
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("exc", "kind", "cause"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), BackendConnectError, "connect"),
        (httpx.ConnectTimeout("timed out"), BackendTimeout, "timeout"),
        (httpx.ReadTimeout("timed out"), BackendTimeout, "timeout"),
        (httpx.WriteTimeout("timed out"), BackendTimeout, "timeout"),
        (httpx.PoolTimeout("timed out"), BackendTimeout, "timeout"),
        (httpx.RemoteProtocolError("peer closed connection"), BackendConnectError, "connect"),
        (httpx.ReadError("connection reset"), BackendConnectError, "connect"),
        (httpx.UnsupportedProtocol("ftp"), BackendConnectError, "connect"),
    ],
)
def test_httpx_errors_are_mapped_once(exc: httpx.HTTPError, kind: type, cause: str) -> None:
    with pytest.raises(BackendError) as info, mapped_errors("http://127.0.0.1:1"):
        raise exc
    assert type(info.value) is kind
    assert info.value.cause == cause
    assert info.value.transient
    assert info.value.__cause__ is exc
    assert "http://127.0.0.1:1" in str(info.value)


def test_connect_error_message_is_one_plain_line() -> None:
    with pytest.raises(BackendConnectError) as info, mapped_errors("http://h:1"):
        raise httpx.ConnectError("All connection attempts failed")
    assert str(info.value) == "cannot connect to http://h:1: connection refused"


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), mapped_errors("x"):
        raise KeyError("not ours to map")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ],
)
def test_normalize_base_url(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://host:abc"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        normalize_base_url(url)


def test_loopback_detection() -> None:
    assert is_loopback("http://127.0.0.1:11434") and is_loopback("http://localhost")
    assert is_loopback("http://[::1]:8080")
    assert not is_loopback("https://api.openai.com/v1")


def test_edge_repr_hides_headers() -> None:
    edge = HttpEdge("http://127.0.0.1:1", headers={"Authorization": "Bearer sk-secret"})
    assert "sk-secret" not in repr(edge)


def test_profiles_as_data() -> None:
    assert set(PROFILES) == {
        "ollama",
        "llamacpp",
        "llamacpp_python",
        "vllm",
        "sglang",
        "lmstudio",
        "openai",
        "generic",
    }
    local = ("ollama", "llamacpp", "llamacpp_python", "vllm", "sglang", "lmstudio")
    assert all(PROFILES[n].capabilities.schema_outside_prompt_cache for n in local)
    assert not PROFILES["openai"].capabilities.schema_outside_prompt_cache
    assert PROFILES["openai"].capabilities.cached_tokens
    assert profile_for_url("https://api.openai.com/v1") == "openai"
    assert profile_for_url("http://127.0.0.1:8080") is None
    assert profile_for_owners(["someone", "llamacpp"]) == "llamacpp"
    assert profile_for_owners(["vllm"]) == "vllm"
    assert profile_for_owners(["me"]) == "llamacpp_python"  # what llama-cpp-python says
    assert profile_for_owners(["organization_owner"]) == "generic"
    assert profile_for_owners([]) == "generic"
    with pytest.raises(ConfigError, match="unknown server profile"):
        get_profile("tgi")
