"""What the hotkeys switch: immutable settings, replaced whole, read at each round start."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from planner.backends.base import DEFAULT_MAX_RESPONSE_CHARS
from planner.events import MODES, Mode
from planner.fallback import Tier


@dataclass(frozen=True)
class PlannerSettings:
    mode: Mode = "auto"
    stream: bool = True
    cache: bool = True
    start_tier: Tier = Tier.simplified_llm
    budget_ms: float = 2500.0
    """Per-round deadline: past it, agents without a plan get a heuristic one."""
    concurrency: int = 8
    """Most requests in flight at once in parallel mode (auto learns its own)."""
    similarity: bool = False
    """Near-identical situations hit the cache (only when the plan still validates). The
    one copy of this flag: each round's lookups and stores follow the round's settings."""
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS
    """Bound on each answer's generated text, sent with every request: the backend cuts
    the answer past it (cause oversize)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown dispatch mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.budget_ms <= 0:
            raise ValueError("budget_ms must be positive")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    def with_(self, **changes: Any) -> PlannerSettings:
        return replace(self, **changes)

    def next_mode(self) -> PlannerSettings:
        return replace(self, mode=MODES[(MODES.index(self.mode) + 1) % len(MODES)])
