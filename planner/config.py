"""The planner's environment variables, read in one place and checked all at once.

`PlannerConfig.from_env(env)` reads every `LLM_*` variable the planner uses and raises
one `ConfigError` whose message is one line naming the variable and what it accepts.
The launcher calls it before any planner thread starts, so a bad value is a one-line
exit 2, never a traceback in a thread nor a hang. The pure parts (cache, resilience)
never read the environment; they are built from this model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from planner.cache import DEFAULT_CAPACITY, MAX_CAPACITY
from planner.clock import Clock
from planner.errors import ConfigError
from planner.resilience import CircuitBreaker, RetryPolicy, Timeouts


@dataclass(frozen=True)
class EnvVar:
    name: str
    field: str
    whole: bool
    low: float
    high: float
    unit: str = " (milliseconds)"

    def accepts(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {self.low:g} to {self.high:.0f}{self.unit}"


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("LLM_TIMEOUT_MS", "timeout_ms", False, 1, 3_600_000),
    EnvVar("LLM_CONNECT_TIMEOUT_MS", "connect_timeout_ms", False, 1, 3_600_000),
    EnvVar("LLM_CACHE_CAP", "cache_cap", True, 1, MAX_CAPACITY, " (plans)"),
    EnvVar("LLM_RETRY_MAX", "retry_max", True, 1, 100, " (attempts in all)"),
    EnvVar("LLM_BREAKER_THRESHOLD", "breaker_threshold", True, 1, 10_000, " (failures)"),
    EnvVar(
        "LLM_BREAKER_COOLDOWN_MS", "breaker_cooldown_ms", False, 0, 3_600_000, " (milliseconds)"
    ),
)
"""Every variable the planner reads: its field and the range it accepts."""


def _read(var: EnvVar, raw: str) -> float:
    text = raw.strip()
    try:
        value = int(text) if var.whole else float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not var.low <= value <= var.high:
        raise ConfigError(f"{var.name}={raw!r}: expected {var.accepts()}")
    return value


class PlannerConfig(BaseModel):
    """The planner's tunables from the environment (defaults when unset or empty)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_ms: float = Timeouts.request_ms
    connect_timeout_ms: float = Timeouts.connect_ms
    cache_cap: int = DEFAULT_CAPACITY
    retry_max: int = RetryPolicy.max_attempts
    breaker_threshold: int = 5
    breaker_cooldown_ms: float = 5000.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PlannerConfig:
        """Every `LLM_*` variable checked; the first bad one is a one-line ConfigError."""
        values: dict[str, float] = {}
        for var in ENV_VARS:
            raw = env.get(var.name, "")
            if raw.strip():
                values[var.field] = _read(var, raw)
        return cls.model_validate(values)

    def timeouts(self) -> Timeouts:
        return Timeouts(
            request_ms=self.timeout_ms,
            connect_ms=min(self.connect_timeout_ms, self.timeout_ms),
        )

    def retry(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.retry_max)

    def breaker(self, clock: Clock) -> CircuitBreaker:
        return CircuitBreaker(
            clock, threshold=self.breaker_threshold, cooldown_s=self.breaker_cooldown_ms / 1000
        )
