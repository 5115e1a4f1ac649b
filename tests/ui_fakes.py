"""Helpers for the UI tests: a real Session over a planner stand-in with no thread.

The stand-in records submitted rounds and releases whatever events a test queues,
so the window can be driven deterministically with real `PlanEvent` objects.
"""

from __future__ import annotations

import pygame

from game.match.maps import load
from game.match.session import MatchConfig, Planning, Session
from game.rules.actions import Illegal
from game.rules.scenarios import Scenario, parse
from game.rules.steps import MoveTo, Scan, Step
from game.ui import theme
from game.ui.app import GameUI
from planner.errors import Cause
from planner.events import (
    AgentFellBack,
    FirstToken,
    PlanDelivered,
    PlanEvent,
    RequestSent,
    RoundDone,
    RoundStarted,
    RoundStats,
)
from planner.fallback import AgentOutcome, Tier
from planner.validate import DroppedStep
from tests.planning_helpers import FakePlanner


def make_session(
    scenario: Scenario | None = None, *, faults: list[float] | None = None
) -> tuple[Session, FakePlanner]:
    planner = FakePlanner()
    control = faults.append if faults is not None else None
    session = Session(
        MatchConfig(scenario or load("village"), 0, 40, ("red",), player_squad="blue"),
        {},
        Planning(planner, fault_control=control),
    )
    return session, planner


# A tiny open map: blue rifleman 1 at (1,1), red rifleman 2 at (5,1) in plain sight.
DUEL = parse(
    """# name: duel
############
#r...R.....#
#..........#
#..+.......#
############
""",
    default_name="duel",
)


TIER_CASES: list[tuple[Tier, Cause | None, bool]] = [
    (Tier.full_llm, None, False),
    (Tier.simplified_llm, None, True),  # a cache hit
    (Tier.heuristic, "deadline", False),
    (Tier.emergency, "heuristic_error", False),
]


def round_events(
    agent_ids: tuple[int, ...],
    cases: list[tuple[Tier, Cause | None, bool]] | None = None,
    *,
    round_id: int = 1,
    squad: str = "red",
    t0: float = 100.0,
    stream: bool = True,
) -> list[PlanEvent]:
    """A whole round as the planner would emit it, one tier case per agent (cycled)."""
    cases = cases or TIER_CASES
    events: list[PlanEvent] = [
        RoundStarted(round_id, squad, agent_ids, "batched", stream, Tier.simplified_llm, t0)
    ]
    asked = tuple(
        a for i, a in enumerate(agent_ids) if not cases[i % len(cases)][2]
    )  # cache hits are not requested
    events.append(RequestSent(round_id, squad, 1, asked, Tier.simplified_llm, 900, 400, t0 + 0.01))
    events.append(FirstToken(round_id, squad, 1, 80.0, t0 + 0.09))
    for i, agent_id in enumerate(agent_ids):
        tier, cause, cached = cases[i % len(cases)]
        steps: tuple[Step, ...] = (MoveTo(x=4, y=2), Scan())
        dropped = (
            (DroppedStep(2, MoveTo(x=0, y=0), Illegal("impassable", "tile (0,0) is wall")),)
            if cause
            else ()
        )
        if cause is not None:
            events.append(
                AgentFellBack(
                    round_id, squad, agent_id, Tier.simplified_llm, tier, cause, "test", t0 + 0.3
                )
            )
        outcome = AgentOutcome(agent_id, steps, tier, cause, cached, False, dropped)
        wait = 0.0 if cached else 150.0 + 100 * i
        raw = "" if cached else f'{{"agent_id":{agent_id},"steps":[{{"act":"Scan"}}]}}'
        block = "" if cached else f"agent {agent_id} block"
        events.append(
            PlanDelivered(
                round_id,
                squad,
                outcome,
                wait,
                2.0,
                None if cached else 1,
                block,
                raw,
                t0 + wait / 1000,
            )
        )
    stats = RoundStats(len(agent_ids), 80.0, 150.0, 450.0, 1, 0, 1000, 600, 120, 1, 3, "closed")
    events.append(RoundDone(round_id, squad, stats, t0 + 0.5))
    return events


def press(ui: GameUI, key: int) -> None:
    """A key press as the window would receive it, handled at once."""
    import pygame

    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
    ui.process_events()


def colour_count(surf: pygame.Surface, rect: pygame.Rect, colour: theme.Colour) -> int:
    rect = rect.clip(surf.get_rect())
    return sum(
        1
        for x in range(rect.left, rect.right)
        for y in range(rect.top, rect.bottom)
        if tuple(surf.get_at((x, y)))[:3] == colour
    )
