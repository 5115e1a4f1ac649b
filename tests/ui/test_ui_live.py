"""The window against the real planner thread: a hotkey reaches the planner, and the next
round runs with it (the other UI tests drive a stand-in planner for exact control)."""

from __future__ import annotations

import pygame
import pytest

from game.match.cli import build_parser
from game.match.launch import build
from game.match.maps import load
from game.rules.world import TICK_SECONDS, TICKS_PER_TURN
from game.ui.app import GameUI
from planner.service import PlannerService
from tests.planning_helpers import wait_until

pytestmark = pytest.mark.usefixtures("pygame_display")


def test_hotkeys_switch_the_real_planner_and_the_next_round_uses_them() -> None:
    args = build_parser().parse_args(
        ["--backend", "sim", "--sim-preset", "instant", "--scenario", "skirmish"]
    )
    session = build(args, load("skirmish"), window=True).session
    assert isinstance(session.planner, PlannerService)
    ui = GameUI(session, (1280, 800))
    try:
        for key in (pygame.K_b, pygame.K_b, pygame.K_s, pygame.K_k):  # seq., stream/cache off
            pygame.event.post(
                pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0)
            )
        ui.process_events()
        live = session.planner.settings
        assert (live.mode, live.stream, live.cache) == ("sequential", False, False)

        # The opening: the world waits for the first round (on the wall clock).
        def opened() -> bool:
            session.update(0.0)
            return not session.opening

        wait_until(opened, lambda: session.opening_ms)
        # Play into the second turn: its round must run with the new settings too.
        for _ in range(TICKS_PER_TURN + 1):
            session.update(TICK_SECONDS)

        def newest_done() -> bool:
            # Round 1 may finish, or be superseded (done, cancelled), before round 2 starts:
            # wait for the second turn's round itself.
            session.update(0.0)
            rounds = session.log.rounds
            newest = rounds[-1] if rounds else None
            return newest is not None and newest.round_id >= 2 and newest.done

        wait_until(newest_done, lambda: [(r.mode, r.done) for r in session.log.rounds])
        newest = session.log.rounds[-1]
        assert not newest.cancelled  # the second turn's round ran to its end
        assert newest.mode == "sequential" and newest.stream is False
        # Sequential: one request per agent.
        assert len(newest.requests) == len(newest.bars)
    finally:
        session.close()
