"""The planning log remembers a refused key (401/403) until a request succeeds again."""

from __future__ import annotations

from game.match.planlog import PlanningLog
from planner.events import ResponseEnded


def ended(status: int, error: str, finish: str = "error") -> ResponseEnded:
    return ResponseEnded(
        1, "red", 1, finish, error, "http_status" if error else "", status, None, 0, 0, 0, 1.0, 0.0
    )


def test_a_refused_key_is_remembered_until_a_request_succeeds() -> None:
    log = PlanningLog()
    log.apply(ended(500, "HTTP 500"))
    assert log.key_refused is None
    log.apply(ended(403, "HTTP 403"))
    assert log.key_refused == 403
    log.apply(ended(0, "", finish="late"))
    assert log.key_refused == 403
    log.apply(ended(0, "", finish="stop"))
    assert log.key_refused is None
