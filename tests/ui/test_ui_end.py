"""The end panel from the player's side, for every way a match ends; and the overlays
(help, end panel, toasts) never drawn over one another."""

from __future__ import annotations

import random

import pygame
import pytest

from game.match.controllers import HeuristicController
from game.match.maps import load
from game.match.session import MatchConfig, Planning, Session
from game.rules.scenarios import Scenario
from game.rules.world import TICKS_PER_TURN
from game.ui.app import GameUI
from game.ui.overlay import end_reason, end_title, score_line
from tests.ui_fakes import FakePlanner

pytestmark = pytest.mark.usefixtures("pygame_display")


def session_for(
    scenario: Scenario, *, player: str | None = "blue", turn_limit: int = 40
) -> Session:
    controllers = {} if player == "blue" else {"blue": HeuristicController(random.Random(0))}
    return Session(
        MatchConfig(scenario, 0, turn_limit, ("red",), player_squad=player),
        controllers,
        Planning(FakePlanner()),
    )


def wipe(session: Session, *squads: str) -> None:
    for u in list(session.world.living()):
        if u.squad in squads:
            u.hp = 0
    session.world.step_tick()
    assert session.finished


def end_texts(session: Session) -> list[str]:
    ui = GameUI(session, (1280, 800))
    ui.controls.toast("a toast that must not cover the result")
    ui.draw(pygame.display.get_surface())
    drawn = ui.fonts.drawn
    assert not drawn.group("toasts"), "toasts wait while the end panel is up"
    assert not drawn.overlaps() and not drawn.outside()
    ui.view.show_help = True  # help replaces the panel rather than drawing over it
    ui.draw(pygame.display.get_surface())
    assert not ui.fonts.drawn.group("end")
    ui.view.show_help = False
    ui.draw(pygame.display.get_surface())
    return [d.text for d in ui.fonts.drawn.group("end")]


def test_player_wins_when_the_other_squad_is_wiped() -> None:
    session = session_for(load("village"))
    wipe(session, "red")
    texts = end_texts(session)
    assert texts[:2] == ["Victory", "Red squad wiped out"]
    assert texts[2].startswith("blue 6 left · red 0 left · 1 turn · plans FULL 0")


def test_player_loses_when_its_squad_is_wiped() -> None:
    session = session_for(load("village"))
    wipe(session, "blue")
    assert end_texts(session)[:2] == ["Defeat", "Blue squad wiped out"]


def test_spectating_names_the_winner() -> None:
    session = session_for(load("village"), player=None)
    wipe(session, "blue")
    assert end_texts(session)[:2] == ["Red wins", "Blue squad wiped out"]
    session = session_for(load("village"), player=None)
    wipe(session, "red")
    assert end_texts(session)[:2] == ["Blue wins", "Red squad wiped out"]


def test_both_squads_wiped_is_a_draw() -> None:
    session = session_for(load("village"))
    wipe(session, "red", "blue")
    assert end_texts(session)[:2] == ["Draw", "Both squads wiped out"]


def test_the_objective_held_wins_and_says_so() -> None:
    scenario = load("skirmish")
    session = session_for(scenario)
    world = session.world
    for u, (x, y) in zip(world.living("red"), scenario.objective, strict=False):
        u.x, u.y = x, y
    while not session.finished:
        world.step_tick()
    assert world.win_reason == "objective"
    texts = end_texts(session)
    assert texts[:2] == ["Defeat", f"Red held the objective for {scenario.hold_turns} turns"]


def test_the_turn_limit_is_a_draw_with_its_reason() -> None:
    session = session_for(load("village"), turn_limit=1)
    while not session.finished:
        session.world.step_tick()
    assert session.world.tick == TICKS_PER_TURN
    assert end_texts(session)[:2] == ["Draw", "Turn limit reached (1 turns) with no winner"]


def test_end_title_wording() -> None:
    assert end_title("blue", "blue") == "Victory"
    assert end_title("red", "blue") == "Defeat"
    assert end_title("red", "red") == "Victory"  # a player commanding red
    assert end_title("red", None) == "Red wins"
    assert end_title("draw", "blue") == end_title("draw", None) == "Draw"
    session = session_for(load("village"))
    assert end_reason(session) == ""  # not over yet
    assert "0 turns" in score_line(session)
