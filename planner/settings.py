"""What the hotkeys switch: immutable settings, replaced whole, read at each round start."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from planner.backends.base import DEFAULT_MAX_RESPONSE_CHARS, THINK_CHOICES, Capabilities, Think
from planner.cache import SituationBuckets
from planner.events import MODES, Mode
from planner.fallback import Tier
from planner.schema import PLAN_FORMATS, PlanFormat

PlanFormatSetting = Literal["auto", "verbose", "compact"]
PLAN_FORMAT_SETTINGS: tuple[PlanFormatSetting, ...] = ("auto", *PLAN_FORMATS)


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
    similarity: bool = True
    """The same tactical situation hits the cache (planner/cache.py's situation key): the
    stored plan is adapted to the agent and used only if it validates. On by default: with
    the landmark key, squads served that way win as often as squads that always ask
    (docs/BENCHMARKS.md, issue 17). The one copy of this flag: each round's lookups and
    stores follow the round's settings."""
    situation_near: int = 6
    """Situation key: tiles within which an ally is near and the objective close."""
    situation_hp_bands: int = 3
    """Situation key: own hp in this many bands."""
    situation_enemies: int = 2
    """Situation key: the nearest enemies whose reach is in the key (one more counted)."""
    situation_allies: int = 1
    """Situation key: near allies counted up to this many (0: not at all)."""
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS
    """Bound on each answer's generated text, sent with every request: the backend cuts
    the answer past it (cause oversize)."""
    plan_format: PlanFormatSetting = "auto"
    """The plan format asked for (planner/schema.py); auto: the backend profile's."""
    intent: bool = True
    """Ask each plan for a short intent (schema, prompt) and deliver it (`--no-intent`:
    neither asked for nor kept)."""
    think: Think = "auto"
    """A reasoning model's thinking: auto (the server's default), on, or off, sent where
    the server has a switch for it (planner/backends/profiles.py)."""
    think_tokens: int = 1024
    """Output tokens added to a request's budget for thinking: with think on, or auto
    once the server has been seen thinking (never with off)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown dispatch mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.plan_format not in PLAN_FORMAT_SETTINGS:
            choices = ", ".join(PLAN_FORMAT_SETTINGS)
            raise ValueError(f"unknown plan format {self.plan_format!r}; choose from {choices}")
        if self.think not in THINK_CHOICES:
            raise ValueError(f"unknown think setting {self.think!r}; choose from auto, on, off")
        if self.budget_ms <= 0:
            raise ValueError("budget_ms must be positive")
        if self.think_tokens < 0:
            raise ValueError("think_tokens must not be negative")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if min(self.situation_near, self.situation_hp_bands) < 1:
            raise ValueError("situation buckets must be at least 1")
        if min(self.situation_enemies, self.situation_allies) < 0:
            raise ValueError("situation slot counts cannot be negative")

    @property
    def situation_buckets(self) -> SituationBuckets:
        return SituationBuckets(
            self.situation_near,
            self.situation_hp_bands,
            self.situation_enemies,
            self.situation_allies,
        )

    def plan_format_for(self, capabilities: Capabilities) -> PlanFormat:
        """The plan format to ask a backend with these capabilities for."""
        if self.plan_format == "auto":
            return capabilities.plan_format
        return self.plan_format

    def with_(self, **changes: Any) -> PlannerSettings:
        return replace(self, **changes)

    def next_mode(self) -> PlannerSettings:
        return replace(self, mode=MODES[(MODES.index(self.mode) + 1) % len(MODES)])
