"""From arguments to a session: who plans each squad, in the window and headless."""

from __future__ import annotations

from game.match.cli import build_parser
from game.match.launch import build
from game.match.maps import load
from game.rules.steps import Scan


def session_for(*args: str, window: bool):  # type: ignore[no-untyped-def]
    parsed = build_parser().parse_args(["--backend", "sim", "--scenario", "skirmish", *args])
    return build(parsed, load("skirmish"), window=window).session


def test_the_window_gives_blue_to_the_player_by_default() -> None:
    session = session_for(window=True)
    try:
        assert session.player_squad == "blue" and "blue" not in session.controllers
        unit = next(iter(session.world.living("blue")))
        assert session.order(unit.id, [Scan()]) is None
    finally:
        session.close()


def test_naming_a_blue_planner_in_the_window_spectates() -> None:
    session = session_for("--blue", "heuristic", window=True)
    try:
        assert session.player_squad is None and "blue" in session.controllers
        unit = next(iter(session.world.living("blue")))
        assert session.order(unit.id, [Scan()]) == f"unit {unit.id} is not yours"
    finally:
        session.close()


def test_headless_blue_defaults_to_the_rule_planner() -> None:
    session = session_for("--headless", window=False)
    assert session.player_squad is None and "blue" in session.controllers
    assert session.llm_squads == ("red",)
    session.close()
