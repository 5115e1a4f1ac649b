"""A replay in the window: paused, stepped and scrubbed round by round."""

from __future__ import annotations

import re
from pathlib import Path

import pygame
import pytest

from game.__main__ import main
from game.match.cli import build_parser
from game.match.launch import build_replay
from game.ui.app import GameUI
from game.ui.inspector import inspector_lines
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


def test_scrubbing_keeps_every_panel_on_one_round(tmp_path: Path) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "skirmish", "--seed", "3"]
    assert main([*args, "--blue", "random", "--turns", "8", "--record", str(record)]) == 0
    session = build_replay(
        build_parser().parse_args(["--replay", str(record)]), window=True
    ).session
    ui = GameUI(session, (1280, 800))
    screen = pygame.display.get_surface()
    try:
        total = len(session.replay_rounds())
        assert total >= 4
        for key in [pygame.K_RIGHTBRACKET] * 4 + [pygame.K_LEFTBRACKET] * 2:
            press(ui, key)
            ui.draw(screen)
            here = session.log.latest_round
            assert here == session.replay_round() + 1  # one numbering: from 1 each scrub
            status = " ".join(d.text for d in ui.fonts.drawn.group("status"))
            assert f"REPLAY round {here}/{total}" in status
            waterfall = " ".join(d.text for d in ui.fonts.drawn.group("waterfall"))
            columns = [int(n) for n in re.findall(r"round (\d+) ·", waterfall)]
            assert columns and columns[-1] == here  # the newest column is this round
            assert columns == sorted(columns)
            agent = ui.inspected()
            assert agent is not None
            state = session.log.agents[agent]
            snap = ui.inspector.snapshot(session.world, agent)
            text = [line.text for line in inspector_lines(agent, state, snap, session.log, "red")]
            newest = text[text.index("Tier history (newest first)") + 1]
            assert newest.startswith(f"round {here} ")
            replay_toasts = [t for t, _, _ in ui.view.toasts.items if t.startswith("replay:")]
            assert replay_toasts == [f"replay: round {here}/{total} (paused; . steps a tick)"]
    finally:
        session.close()
