"""The pygame window: board, controls, overlay, waterfall and inspector.

The only package that imports pygame. It reads the session's state (world,
planning log, settings) and sends commands back through the session's methods;
it never mutates the world itself. `SessionLike` is the narrow surface it needs,
which `game.match.session.Session` satisfies structurally (tests may use a stand-in).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from typing import Any, Protocol

from game.match.pacing import Pacing
from game.match.planlog import PlanningLog
from game.rules.scenarios import Scenario
from game.rules.steps import Step
from game.rules.world import World
from planner.settings import PlannerSettings

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def _import_pygame() -> None:
    """Import pygame without pkg_resources: pygame.pkgdata imports it (setuptools, about
    0.18 s of start-up) only to find pygame's bundled files, which it finds without it
    too. Blocked for that one import only."""
    if "pygame" in sys.modules or "pkg_resources" in sys.modules:
        return
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # ImportError inside
    try:
        import pygame  # noqa: F401
    finally:
        del sys.modules["pkg_resources"]


_import_pygame()


class SessionLike(Protocol):
    """What the window reads from and sends to a running match."""

    @property
    def world(self) -> World: ...
    @property
    def scenario(self) -> Scenario: ...
    @property
    def log(self) -> PlanningLog: ...
    @property
    def player_squad(self) -> str | None:
        """The human's squad (None: spectating; the view then follows blue)."""

    @property
    def llm_squads(self) -> tuple[str, ...]: ...
    @property
    def backend_description(self) -> str: ...
    @property
    def settings(self) -> PlannerSettings: ...
    @property
    def pacing(self) -> Pacing:
        """Interim plans and planning ahead (the match's switches, hotkeys N and P)."""

    @property
    def plan_ahead_ms(self) -> float | None:
        """The lead the LLM squads plan ahead by now (None: nothing learned yet)."""

    @property
    def opening(self) -> bool:
        """The match has not started: the LLM squads' first rounds are still planning."""

    @property
    def opening_ms(self) -> float | None:
        """How long the opening has lasted so far (None: there is none)."""

    @property
    def interim_agents(self) -> Collection[int]:
        """LLM agents running an interim rule plan until their LLM plan lands."""

    @property
    def fault_rate(self) -> float: ...
    @property
    def fault_injection_available(self) -> bool: ...
    @property
    def breaker_state(self) -> str: ...
    @property
    def turn_clock(self) -> float: ...
    @property
    def finished(self) -> bool: ...
    @property
    def winner(self) -> str | None: ...

    @property
    def replaying(self) -> bool: ...

    paused: bool
    speed: float

    def replay_rounds(self) -> list[int]: ...
    def replay_round(self) -> int: ...
    def seek_round(self, index: int) -> int: ...
    def step_tick(self) -> None: ...

    def set_settings(self, settings: PlannerSettings) -> None: ...
    def set_pacing(self, pacing: Pacing) -> None: ...
    def set_fault_rate(self, rate: float) -> None: ...
    def update(self, real_dt: float) -> None: ...
    def order(self, unit_id: int, steps: list[Step]) -> str | None: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...
    def result_summary(self) -> dict[str, Any]: ...
