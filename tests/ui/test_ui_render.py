"""Rendering: overlay, badges, waterfall and inspector for every tier and for cache hits,
fed with real planner event objects; plus the scripted frame loop and its screenshot."""

from __future__ import annotations

from pathlib import Path

import pygame
import pytest

from game.rules.grid import Grid
from game.rules.steps import Attack, MoveTo, Reload
from game.ui import script, theme
from game.ui.app import FrameStats, GameUI, compute_layout, run_window
from game.ui.board import BoardLayout, seen_from
from game.ui.inspector import fmt_step, inspector_lines
from game.ui.overlay import end_lines, status_lines
from game.ui.timeline import bar_marks, nice_step, round_label
from planner.events import PlanDelivered, RoundStarted
from planner.fallback import Tier
from tests.ui_fakes import TIER_CASES, colour_count, make_session, round_events

pytestmark = pytest.mark.usefixtures("pygame_display")


def played_ui() -> tuple[GameUI, list[int]]:
    """A session whose red agents have plans on every tier (two of them cache hits)."""
    session, _ = make_session()
    red = tuple(u.id for u in session.world.living("red"))
    for event in round_events(red):
        session.log.apply(event)
    ui = GameUI(session, (1280, 800))
    ui.view.reveal_all = True  # red starts in the fog; show every badge
    return ui, list(red)


def test_badges_show_each_agents_tier_colour() -> None:
    ui, red = played_ui()
    screen = pygame.display.get_surface()
    ui.draw(screen)
    lay = ui.layout().board
    world = ui.session.world
    for i, uid in enumerate(red):
        tier, _, cached = TIER_CASES[i % len(TIER_CASES)]
        u = world.units[uid]
        top = lay.tile_rect(u.x, u.y).top
        above = pygame.Rect(lay.centre(u.x, u.y)[0] - 45, top - 22, 90, 22)
        assert colour_count(screen, above, theme.TIER_COLOURS[tier]) > 40, (uid, tier)
        has_mark = colour_count(screen, above, theme.CACHE_MARK) > 0
        assert has_mark == cached, uid


def test_waterfall_bars_in_tier_colours_with_marks() -> None:
    ui, _ = played_ui()
    screen = pygame.display.get_surface()
    ui.draw(screen)
    rect = ui.layout().waterfall
    assert rect is not None
    for tier in Tier:
        assert colour_count(screen, rect, theme.TIER_COLOURS[tier]) > 20, tier
    view = ui.session.log.rounds[-1]
    marks = [bar_marks(b) for b in view.bars.values()]
    assert "C" in marks and "! deadline" in marks and "! heuristic_error" in marks
    assert round_label(view) == "round 1 · batched · stream"


def test_badges_inspector_and_waterfall_read_one_timing_record() -> None:
    ui, red = played_ui()
    log = ui.session.log
    view = log.rounds[-1]
    for uid in red:
        timing = log.agents[uid].timing
        assert timing is view.bars[uid]  # the badge's and inspector's figures are the bar's
        assert timing is not None and timing.tier is not None
        assert timing.requested_ms == (None if timing.from_cache else pytest.approx(10.0))
    # A delivery for a round no longer on screen still gives the agent its figures.
    late = next(e for e in round_events(red[:1], round_id=99) if isinstance(e, PlanDelivered))
    log.apply(late)
    state = log.agents[red[0]]
    assert state.timing is not None and state.timing.plan_wait_ms == late.plan_wait_ms
    assert all(r.round_id != 99 for r in log.rounds)
    snap = ui.inspector.snapshot(ui.session.world, red[0])
    text = [line.text for line in inspector_lines(red[0], state, snap, log, "red")]
    assert any("plan_wait 150 ms" in t for t in text)


def test_waiting_agents_think_instead_of_badging() -> None:
    session, _ = make_session()
    red = tuple(u.id for u in session.world.living("red"))
    session.log.apply(RoundStarted(1, "red", red, "parallel", False, Tier.full_llm, 5.0))
    ui = GameUI(session, (1280, 800))
    ui.view.reveal_all = True
    screen = pygame.display.get_surface()
    ui.draw(screen)
    u = session.world.units[red[0]]
    lay = ui.layout().board
    above = pygame.Rect(lay.centre(u.x, u.y)[0] - 20, lay.tile_rect(u.x, u.y).top - 16, 40, 16)
    assert colour_count(screen, above, theme.PANEL) > 0  # the dots' pill
    assert all(colour_count(screen, above, c) == 0 for c in theme.TIER_COLOURS.values())
    assert round_label(session.log.rounds[-1]) == "round 1 · parallel · no stream"


def test_inspector_renders_every_tier_and_cache_hit() -> None:
    ui, red = played_ui()
    screen = pygame.display.get_surface()
    log = ui.session.log
    for i, uid in enumerate(red):
        tier, cause, cached = TIER_CASES[i % len(TIER_CASES)]
        ui.view.inspected = uid
        ui.draw(screen)
        rect = ui.layout().inspector
        assert rect is not None
        assert colour_count(screen, rect, theme.TIER_COLOURS[tier]) > 20
        text = "\n".join(
            line.text
            for line in inspector_lines(
                uid, log.agents[uid], ui.inspector.snapshot(ui.session.world, uid), log, "red"
            )
        )
        assert theme.TIER_LABEL[tier] in text
        assert ("from prompt cache" in text) == cached
        if cause is not None:
            assert f"cause {cause}" in text and "tile (0,0) is wall" in text
        else:
            assert "Dropped steps (0)" in text
        if not cached:
            assert "shared prefix 900 chars" in text and f"agent {uid} block" in text


def test_status_bar_names_the_switches_and_timings() -> None:
    ui, _ = played_ui()
    line1, line2, line3 = (" | ".join(t for t, _ in line) for line in status_lines(ui.session))
    assert "village" in line1 and "test planner" in line1
    assert "mode auto" in line2 and "stream on" in line2 and "breaker closed" in line2
    assert "cache on (hit 33%: 2 hit, 3 miss," in line2  # 2 of 6 plans came from the cache
    assert "0 adapted, 0 rejected, 0 refreshed)" in line2
    assert "act_wait" in line3
    assert "ttft 80 ms" in line3 and "ttfp 150 ms" in line3 and "time_to_all 450 ms" in line3
    assert "p50" in line3 and "p95" in line3


def test_end_screen_shows_result_and_statistics() -> None:
    ui, red = played_ui()
    world = ui.session.world
    for uid in red:
        world.units[uid].hp = 0
    world.step_tick()
    assert ui.session.finished
    lines = end_lines(ui.session)
    assert "winner: blue" in lines
    assert any(line.startswith("plans by tier:") for line in lines)
    screen = pygame.display.get_surface()
    ui.draw(screen)
    assert colour_count(screen, ui.layout().left, theme.TEXT_GOOD) > 50  # "Victory"


def test_help_and_small_window_render() -> None:
    ui, _ = played_ui()
    ui.view.show_help = True
    ui.handle(pygame.event.Event(pygame.VIDEORESIZE, w=700, h=450, size=(700, 450)))
    screen = pygame.display.set_mode((700, 450))
    ui.draw(screen)
    lay = ui.layout()
    assert lay.board.rect.right <= (lay.inspector.x if lay.inspector else 700)
    assert lay.waterfall is not None and lay.waterfall.top >= lay.board.rect.bottom


def test_layout_scales_the_board_to_the_window() -> None:
    small = compute_layout((1280, 800), 33, 24, True, True)
    big = compute_layout((1920, 1080), 33, 24, True, True)
    bare = compute_layout((1280, 800), 33, 24, False, False)
    assert small.board.tile < big.board.tile
    assert small.board.tile < bare.board.tile
    assert bare.waterfall is None and bare.inspector is None


def test_board_geometry_round_trips() -> None:
    lay = BoardLayout.fit(pygame.Rect(10, 20, 330, 240), 33, 24)
    assert lay.tile == 10
    assert lay.tile_at(*lay.centre(7, 5)) == (7, 5)
    assert lay.tile_at(0, 0) is None


def test_fog_stops_at_walls() -> None:
    grid = Grid.from_strings(["......", "..#...", "......"])
    seen = seen_from(grid, frozenset(), (0, 1), 8)
    assert (2, 1) in seen  # the wall itself is seen
    assert (3, 1) not in seen and (5, 1) not in seen
    assert (5, 0) in seen
    smoked = seen_from(grid, frozenset({(1, 0), (1, 1), (1, 2)}), (0, 1), 8)
    assert (1, 1) in smoked and (3, 0) not in smoked


def test_fmt_helpers() -> None:
    assert fmt_step(MoveTo(x=4, y=7)) == "MoveTo(4,7)"
    assert fmt_step(Attack(target_id=9)) == "Attack(#9)"
    assert fmt_step(Reload()) == "Reload"
    assert theme.fmt_ms(None) == "-" and theme.fmt_ms(1840) == "1.84 s"
    assert nice_step(2600) == 1000.0


def test_frame_stats_summary() -> None:
    stats = FrameStats()
    for ms in [1.0] * 98 + [10.0, 20.0]:
        stats.add(ms)
    assert stats.summary().startswith("frame time p50 1.0 ms, p99 10.0 ms, max 20.0 ms")


def test_script_parse_and_errors(tmp_path: Path) -> None:
    cmds = script.parse(
        "# a comment\nat 3 key b\n\nat 4 tile 1 2 right\nat 9 shot out dir/a b.png\n"
    )
    assert [(c.frame, c.verb, c.args) for c in cmds] == [
        (3, "key", ("b",)),
        (4, "tile", ("1", "2", "right")),
        (9, "shot", ("out dir/a b.png",)),
    ]
    for bad, msg in [
        ("at x key b", "frame must be a whole number"),
        ("at 1 jump", "unknown command 'jump'"),
        ("at 1 key nosuchkey", "unknown key"),
        ("at 1 click 3", "takes 2..3 arguments"),
        ("at 1 click 3 4 middle", "button must be left or right"),
        ("key b", "expected 'at FRAME COMMAND"),
    ]:
        with pytest.raises(script.ScriptError, match=msg):
            script.parse("\n" + bad, "s.txt")
    with pytest.raises(script.ScriptError, match=r"s\.txt:2:"):
        script.parse("\nat 1 jump", "s.txt")
    with pytest.raises(script.ScriptError, match="cannot read script"):
        script.load(tmp_path / "missing.txt")


def test_run_window_plays_a_script_and_saves_a_screenshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session, planner = make_session()
    src = tmp_path / "events.txt"
    mid = tmp_path / "mid.png"
    src.write_text(f"at 1 key b\nat 2 tile 1 1\nat 3 key w\nat 3 shot {mid}\n", "utf-8")
    out = tmp_path / "shot.png"
    stats = FrameStats()
    code = run_window(
        session,
        size=(1280, 800),
        frames=5,
        screenshot=str(out),
        script=str(src),
        stats=stats,
        fps=0,
    )
    assert code == 0
    assert planner.settings.mode == "batched"
    assert planner.closed  # the window closes the session on the way out
    assert len(stats.samples) == 5
    assert "frame time p50" in capsys.readouterr().out
    for png in (out, mid):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pygame.image.load(str(out)).get_size() == (1280, 800)


def test_run_window_reports_a_bad_script(tmp_path: Path) -> None:
    session, planner = make_session()
    src = tmp_path / "bad.txt"
    src.write_text("at 1 fly\n", "utf-8")
    assert run_window(session, frames=3, script=str(src), fps=0) == 2
    assert planner.closed


def test_escape_ends_the_loop_early(tmp_path: Path) -> None:
    session, _ = make_session()
    path = tmp_path / "esc.txt"
    path.write_text("at 2 key escape\n", "utf-8")
    stats = FrameStats()
    assert run_window(session, frames=50, script=str(path), stats=stats, fps=0) == 0
    assert len(stats.samples) == 2  # frames 0 and 1 ran; Esc arrived at the start of frame 2
