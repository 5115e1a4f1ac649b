"""The project's own small error hierarchy and the named causes of every fallback.

Exceptions from dependencies (httpx, anyio, json) are mapped into these once, at
the edge (the backend), so nothing above it ever catches an httpx type.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

Cause = Literal[
    "timeout",  # connect/read timeout of one request
    "deadline",  # the round's budget_ms passed before this agent had a plan
    "http_status",  # server answered an error status (or an error line mid-stream)
    "connect",  # could not connect, or the connection dropped mid-stream
    "parse_error",  # the text was not the JSON asked for (or was truncated)
    "validation_error",  # parsed, but no legal step survived validation
    "missing_from_batch",  # the response ended without a plan for this agent
    "over_budget",  # auto: no request could land this agent's plan before the deadline
    "circuit_open",  # the breaker was open, no request was made
    "oversize",  # the response passed the size or step bound and was cancelled
    "cancelled",  # superseded by a newer round
    "heuristic_error",  # the heuristic planner raised (emergency tier follows)
    "truncated",  # the answer hit its output budget (finish_reason "length") before this plan
    "thinking_over_budget",  # a reasoning model thought past its output or time budget
]
CAUSES: tuple[str, ...] = Cause.__args__  # type: ignore[attr-defined]


class PlannerError(Exception):
    """Base of every error the planner raises on purpose."""

    cause: Cause = "http_status"
    transient: bool = False
    """Worth a retry (connect/read timeout, 429, 5xx, error mid-stream)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.at: float | None = None
        """When it happened on the backend's clock, if known (the sim sets it in virtual time)."""


class BackendError(PlannerError):
    """A request to an LLM server failed."""


class BackendTimeout(BackendError):
    cause: Cause = "timeout"
    transient = True


class BackendConnectError(BackendError):
    """Connection refused, reset, or dropped mid-stream."""

    cause: Cause = "connect"
    transient = True


class BackendHTTPStatus(BackendError):
    cause: Cause = "http_status"

    def __init__(
        self, message: str, status: int, body: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.transient = status == 429 or status >= 500


class BackendStreamError(BackendError):
    """The server reported an error in-band, in the middle of a stream."""

    cause: Cause = "http_status"
    transient = True


class ResponseTooLarge(BackendError):
    cause: Cause = "oversize"


class MalformedResponse(BackendError):
    """The answer's bytes are not text the protocol allows (invalid UTF-8): the model's
    text is damaged, as with a parse_error inside it. Not retried, and not counted
    against the breaker (the server answered; what it answered is broken)."""

    cause: Cause = "parse_error"


class CircuitOpen(PlannerError):
    cause: Cause = "circuit_open"


class ConfigError(PlannerError):
    """Bad user configuration (unknown backend, unreachable named server, ...)."""


def first_error(exc: ValidationError, *, within: str = "", top: str = "") -> str:
    """A pydantic error in one line: where its first problem is (the dotted path, under
    `within`; `top` when it is the whole input) and what it is."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if within:
        where = f"{within}.{where}" if where else within
    where = where or top
    return f"{where}: {first['msg']}" if where else str(first["msg"])
