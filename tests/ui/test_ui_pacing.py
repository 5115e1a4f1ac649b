"""The window's side of pacing: hotkeys N and P, the status bar, and the interim badges."""

from __future__ import annotations

import pygame
import pytest

from game.match.pacing import Pacing
from game.rules.steps import Scan
from game.ui import theme
from game.ui.app import GameUI
from game.ui.help import CONTROLS
from game.ui.overlay import status_lines
from planner.events import PlanDelivered, RoundDone
from planner.fallback import AgentOutcome, Tier
from tests.ui_fakes import colour_count, make_session, press, round_events

pytestmark = pytest.mark.usefixtures("pygame_display")


def toasts(ui: GameUI) -> list[str]:
    return [text for text, _, _ in ui.view.toasts.items]


def line3(ui: GameUI) -> str:
    return " | ".join(text for text, _ in status_lines(ui.session)[2])


def test_n_and_p_switch_interim_plans_and_planning_ahead() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    assert session.pacing == Pacing()  # interim on, planning ahead on
    assert "interim on" in line3(ui) and "ahead on" in line3(ui)
    press(ui, pygame.K_n)
    assert session.pacing == Pacing(interim=False)
    assert "interim plans off" in toasts(ui)[-1] and "interim off" in line3(ui)
    press(ui, pygame.K_p)
    assert session.pacing == Pacing(interim=False, plan_ahead=False)
    assert toasts(ui)[-1] == "planning ahead off (from next round)"
    assert "ahead off" in line3(ui)
    press(ui, pygame.K_n)
    press(ui, pygame.K_p)
    assert session.pacing == Pacing()
    assert "interim plans on" in toasts(ui)[-2] and "planning ahead on" in toasts(ui)[-1]
    assert "ahead on" in line3(ui)
    keys = {k for _, items in CONTROLS for k, _ in items}
    assert {"N", "P"} <= keys


def test_the_status_bar_shows_the_lead_in_effect() -> None:
    session, planner = make_session()
    session.set_pacing(Pacing(plan_ahead=True))
    ui = GameUI(session, (1280, 800))
    session.step_tick()
    (first,) = planner.submitted
    events = round_events(tuple(s.me.id for s in first.snapshots), round_id=first.round_id)
    assert isinstance(events[-1], RoundDone)
    # Plans waited 150, 0 (cache), 350, 450, 550 and 0 ms: the p90 of those the LLM was
    # asked for, 550 ms, is three ticks.
    planner.queued.extend(events)
    session.step_tick()
    assert "ahead 750 ms" in line3(ui)
    segments = dict(status_lines(session)[2])
    assert segments["interim on"] == theme.INTERIM  # also the badges' legend


def test_an_interim_agent_wears_its_own_badge_until_its_plan_lands() -> None:
    session, planner = make_session()
    ui = GameUI(session, (1280, 800))
    ui.view.reveal_all = True
    session.step_tick()  # the round goes out; every red agent gets an interim plan
    (first,) = planner.submitted
    red = [s.me.id for s in first.snapshots]
    assert set(session.interim_agents) == set(red)
    for event in round_events(tuple(red), round_id=first.round_id)[:1]:  # RoundStarted
        planner.queued.append(event)
    session.step_tick()
    screen = pygame.display.get_surface()
    ui.draw(screen)
    lay = ui.layout().board

    def badge_colours(uid: int) -> dict[str, int]:
        u = session.world.units[uid]
        top = lay.tile_rect(u.x, u.y).top
        above = pygame.Rect(lay.centre(u.x, u.y)[0] - 45, top - 40, 90, 40)
        colours = {"interim": theme.INTERIM, **{t.value: c for t, c in theme.TIER_COLOURS.items()}}
        return {name: colour_count(screen, above, c) for name, c in colours.items()}

    seen = badge_colours(red[0])
    assert seen["interim"] > 40 and all(n == 0 for k, n in seen.items() if k != "interim")
    # Its plan lands: the tier's badge replaces the interim one.
    outcome = AgentOutcome(red[0], (Scan(), Scan()), Tier.simplified_llm, None, False, False)
    planner.queued.append(
        PlanDelivered(first.round_id, "red", outcome, 300.0, None, 1, "", "", 0.3)
    )
    session.step_tick()
    assert red[0] not in session.interim_agents
    ui.draw(screen)
    seen = badge_colours(red[0])
    assert seen["interim"] == 0 and seen[Tier.simplified_llm.value] > 40
    assert badge_colours(red[1])["interim"] > 40  # still waiting: still interim


def test_the_status_bar_says_when_the_server_refused_the_key() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    line1 = status_lines(ui.session)[0]
    assert not any("refused" in text for text, _ in line1)
    session.log.key_refused = 401
    line1 = status_lines(ui.session)[0]
    assert ("the server refused the key (HTTP 401): check OPENAI_API_KEY", theme.TEXT_BAD) in line1
