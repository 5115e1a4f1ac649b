"""A replay in the window: paused, stepped and scrubbed round by round."""

from __future__ import annotations

from pathlib import Path

import pygame
import pytest

from game.__main__ import main
from game.match.cli import build_parser
from game.match.launch import build_replay
from game.ui.app import GameUI
from tests.ui_fakes import press

pytestmark = pytest.mark.usefixtures("pygame_display")


def test_scrubbing_a_replay_round_by_round(tmp_path: Path) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "7"]
    assert main([*args, "--blue", "random", "--record", str(record)]) == 0
    session = build_replay(
        build_parser().parse_args(["--replay", str(record)]), window=True
    ).session
    ui = GameUI(session, (1280, 800))
    try:
        rounds = session.replay_rounds()
        assert len(rounds) >= 3
        press(ui, pygame.K_RIGHTBRACKET)
        press(ui, pygame.K_RIGHTBRACKET)
        assert session.paused and session.replay_round() == 1
        second = (session.world.tick, session.world.state_hash())
        assert session.log.rounds and session.log.rounds[-1].done  # its round is on screen
        press(ui, pygame.K_RIGHTBRACKET)
        assert session.replay_round() == 2
        press(ui, pygame.K_LEFTBRACKET)
        # Scrubbing back gives exactly the world we had at that round.
        assert (session.world.tick, session.world.state_hash()) == second
        tick = session.world.tick
        press(ui, pygame.K_PERIOD)
        assert session.world.tick == tick + 1
        ui.draw(pygame.display.get_surface())  # the overlay renders the replay state
    finally:
        session.close()
