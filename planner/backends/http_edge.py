"""The HTTP edge shared by the real-server backends.

One lazily created `httpx.AsyncClient` per backend, explicit timeouts, and the ONE
place where httpx exceptions become `planner.errors` types. Nothing above this
module catches an httpx exception.
"""

from __future__ import annotations

import codecs
import email.utils
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from planner.backends.base import TextBudget
from planner.errors import (
    BackendConnectError,
    BackendError,
    BackendHTTPStatus,
    BackendTimeout,
    ConfigError,
    MalformedResponse,
)

MAX_BODY_CHARS = 32 * 1024 * 1024
"""Hard bound on a whole HTTP body (SSE/NDJSON framing included): junk never piles up."""
ERROR_BODY_CHARS = 500
"""How much of an error response body is kept in a BackendHTTPStatus."""
MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml"})
"""Media types that are a page, never an API's answer (a wrong URL, a proxy's login
page): such a 2xx answer is an error with its status, said plainly."""
NOT_AN_ANSWER = " is an HTML page, not the API's answer (wrong URL, or a proxy's page?)"
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def whole_body_chars(max_response_chars: int) -> int:
    """Bound on a whole (non-streaming) answer's body for `max_response_chars` of text:
    room for JSON escaping and the fields around the text."""
    return 4 * max_response_chars + 65536


def default_timeout(
    connect: float = 5.0, read: float = 60.0, write: float = 10.0, pool: float = 5.0
) -> httpx.Timeout:
    """Explicit per-operation timeouts. `read` bounds the gap between two chunks, so a
    server that stalls mid-stream trips it; the round deadline bounds the total."""
    return httpx.Timeout(connect=connect, read=read, write=write, pool=pool)


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*@)")
"""`user:password@` at the start of a URL's authority (with or without a scheme)."""


def strip_userinfo(url: str) -> str:
    """`url` without `user:password@`: credentials in a URL are never printed, reported,
    recorded or sent (httpx would turn them into Basic auth)."""
    return _USERINFO.sub(lambda m: m.group(1) or "", url.strip(), count=1)


def has_userinfo(url: str) -> bool:
    return strip_userinfo(url) != url.strip()


_SECRET_PATTERNS = (
    # an Authorization header's value, in a header dump or echoed as JSON
    re.compile(
        r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;}]+"
    ),
    re.compile(r"(?i)(bearer\s+)[^\s\"',;}]+"),
    re.compile(r"(?i)(\b(?:x-)?api[-_]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{6,}"),
    re.compile(r"(://)[^/?#@\s]+(?=@)"),
)
REDACTED = "***"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with anything that looks like a key (sk-..., Bearer ..., an Authorization
    or api-key value, URL credentials) and every one of `secrets` replaced by ***."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def normalize_base_url(url: str) -> str:
    """'127.0.0.1:11434' -> 'http://127.0.0.1:11434'; no trailing slash; no credentials."""
    text = strip_userinfo(url)
    if "://" not in text:
        text = "http://" + text
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"invalid server URL {text!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"invalid server URL {text!r}: expected http(s)://host[:port]")
    return text.rstrip("/")


def is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host == "localhost" or host == "::1" or host.startswith("127.")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: either delta-seconds or an HTTP-date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN -> None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _connect_reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "refused" in text or "all connection attempts failed" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return str(exc) or type(exc).__name__


@contextmanager
def mapped_errors(where: str) -> Iterator[None]:
    """Translate httpx exceptions raised inside the block into planner errors.

    `where` names the server for the message (a URL without credentials). The
    httpx exception stays as `__cause__` for debugging; httpx masks the
    Authorization header in its reprs, and messages here never include headers.
    """
    try:
        yield
    except BackendError:
        raise
    except httpx.ConnectTimeout as exc:
        raise BackendTimeout(f"timed out connecting to {where}") from exc
    except httpx.ConnectError as exc:
        raise BackendConnectError(f"cannot connect to {where}: {_connect_reason(exc)}") from exc
    except httpx.ReadTimeout as exc:
        raise BackendTimeout(f"{where} sent nothing within the read timeout") from exc
    except httpx.WriteTimeout as exc:
        raise BackendTimeout(f"timed out sending the request to {where}") from exc
    except httpx.PoolTimeout as exc:
        raise BackendTimeout(f"no free connection to {where} within the pool timeout") from exc
    except httpx.TimeoutException as exc:
        raise BackendTimeout(f"timed out talking to {where}") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError) as exc:
        raise BackendConnectError(f"connection to {where} dropped: {exc}") from exc
    except httpx.HTTPError as exc:
        raise BackendConnectError(f"request to {where} failed: {exc}") from exc


class HttpEdge:
    """One backend's connection to one server.

    The client is created on first use, so it belongs to the event loop that uses
    it; `aclose()` releases it and a later call creates a fresh one.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.timeout = timeout or default_timeout()
        self._headers = dict(headers or {})
        self._transport = transport
        self._now = now
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never shows headers (they may hold an API key)
        return f"HttpEdge({self.base_url!r})"

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                headers=self._headers,
                transport=self._transport,
                # a proxy from the environment is for remote servers, never for loopback
                trust_env=not is_loopback(self.base_url),
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def where(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @asynccontextmanager
    async def open(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the streaming response once its status is 2xx.

        Non-2xx raises BackendHTTPStatus (body truncated, Retry-After parsed). Leaving
        the block closes the response, which cancels a request still streaming.
        """
        where = self.where(path)
        client = self._get_client()
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        with mapped_errors(where):
            request = client.build_request(method, path, json=json_body, **extra)
            async with _send(client, request) as resp:
                if resp.status_code >= 300:
                    raise await self._status_error(resp, where)
                if _media_type(resp.headers.get("content-type")) in MARKUP_TYPES:
                    raise await self._status_error(resp, where, NOT_AN_ANSWER)
                yield resp

    async def iter_text(self, response: httpx.Response) -> AsyncIterator[str]:
        """Decoded text as it arrives, with errors mapped.

        Always UTF-8, strictly (JSON, SSE and NDJSON are UTF-8 by their specs; a
        multi-byte character split across chunks is joined): bytes that are not UTF-8
        end the body in MalformedResponse (cause parse_error) once the text before them
        is handed on. A body that opens with '<' is markup, never an answer of these
        protocols: BackendHTTPStatus with the response's status, saying so."""
        where = str(response.request.url)
        budget = TextBudget(MAX_BODY_CHARS, f"response body from {where}")
        decoder = codecs.getincrementaldecoder("utf-8")()
        received = 0  # bytes before the current chunk
        opened = False  # the body's first non-blank character has been seen
        with mapped_errors(where):
            async for data in response.aiter_bytes():
                try:
                    text = decoder.decode(data)
                    bad = None
                except UnicodeDecodeError as exc:
                    # exc.object is the decoder's pending bytes followed by this chunk
                    text = exc.object[: exc.start].decode()
                    bad = received - (len(exc.object) - len(data)) + exc.start
                received += len(data)
                if not opened and text.lstrip(" \t\r\n\ufeff"):
                    opened = True
                    head = text.lstrip(" \t\r\n\ufeff")
                    if head[0] == "<":
                        status = response.status_code
                        page = redact(head[:ERROR_BODY_CHARS], self.secrets())
                        raise _http_error(status, where, page, None, NOT_AN_ANSWER)
                if text:
                    budget.spend(text)
                    yield text
                if bad is not None:
                    raise MalformedResponse(
                        f"{where} sent bytes that are not UTF-8 (at byte {bad} of its body)"
                    )

    async def read_text(self, response: httpx.Response, limit: int) -> str:
        """The whole body, bounded by `limit` characters."""
        budget = TextBudget(limit, f"response body from {response.request.url}")
        parts: list[str] = []
        async for text in self.iter_text(response):
            budget.spend(text)
            parts.append(text)
        return "".join(parts)

    async def get_json(
        self, path: str, *, timeout: httpx.Timeout | None = None, limit: int = 1024 * 1024
    ) -> Any:
        """GET a small JSON document (model lists); malformed JSON -> BackendError."""
        async with self.open("GET", path, timeout=timeout) as resp:
            text = await self.read_text(resp, limit)
        try:
            return json.loads(text)
        except ValueError:
            raise BackendError(f"{self.where(path)} did not answer JSON: {text[:80]!r}") from None

    async def _status_error(
        self, resp: httpx.Response, where: str, why: str = ""
    ) -> BackendHTTPStatus:
        body = ""
        try:
            async for text in resp.aiter_text():
                body += text
                if len(body) > ERROR_BODY_CHARS:
                    break
        except httpx.HTTPError:
            pass  # the status is the news; a body cut short is fine
        retry_after = parse_retry_after(resp.headers.get("retry-after"), self._now())
        body = redact(body[:ERROR_BODY_CHARS], self.secrets())
        return _http_error(resp.status_code, where, body, retry_after, why)

    def secrets(self) -> tuple[str, ...]:
        """What this edge sends that must never be stored: header values and their
        tokens (the API key), to redact from what a server echoes back."""
        found: list[str] = []
        for value in self._headers.values():
            found.append(value)
            found.extend(part for part in value.split() if len(part) >= 8)
        return tuple(found)


def _http_error(
    status: int, where: str, body: str, retry_after: float | None, why: str = ""
) -> BackendHTTPStatus:
    """The error for an answer that is not one: an error status, or (`why` says) a page."""
    body = body[:ERROR_BODY_CHARS]
    title = _TITLE.search(body) if why else None
    summary = " ".join((title.group(1) if title else body).split())[:200]
    message = f"HTTP {status} from {where}{why}" + (f": {summary}" if summary else "")
    return BackendHTTPStatus(message, status, body, retry_after)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


@asynccontextmanager
async def _send(client: httpx.AsyncClient, request: httpx.Request) -> AsyncIterator[httpx.Response]:
    response = await client.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()
