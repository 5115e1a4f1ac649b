"""Layout from the drawing itself: at every supported size, on every shipped map, with the
red squad crowded onto the objective (each agent with a badge and a long intent), no two
labels of a panel overlap and no text runs outside its panel. The renderer reports each
rectangle it drew (`Fonts.drawn`); these tests compare them."""

from __future__ import annotations

import pygame
import pytest

from game.match.maps import load
from game.rules.scenarios import Scenario
from game.ui import theme
from game.ui.app import GameUI, window_size
from game.ui.help import CONTROLS
from game.ui.inspector import inspector_lines
from game.ui.labels import place
from planner.events import RoundStarted
from planner.fallback import Tier
from tests.ui_fakes import colour_count, make_session, press, round_events

pytestmark = pytest.mark.usefixtures("pygame_display")

SIZES = [(1024, 640), (1280, 800), (1920, 1080)]
MAPS = ["skirmish", "village", "siege"]
INTENT = "flank the objective from the east wall while the heavy covers the door"


def crowd_on_objective(scenario: Scenario, ui: GameUI) -> None:
    """Every red unit on a walkable tile around the objective's centre, shoulder to
    shoulder: the badges' worst case."""
    world = ui.session.world
    centre = scenario.objective_centre
    assert centre is not None
    free = sorted(
        (
            (x, y)
            for y in range(world.grid.height)
            for x in range(world.grid.width)
            if world.grid.walkable(x, y) and world.occupant((x, y)) is None
        ),
        key=lambda t: (t[0] - centre[0]) ** 2 + (t[1] - centre[1]) ** 2,
    )
    for u, (x, y) in zip(world.living("red"), free, strict=False):
        u.x, u.y = x, y


def busy_ui(name: str, size: tuple[int, int], *, waiting: bool = False) -> GameUI:
    scenario = load(name)
    session, _ = make_session(scenario)
    red = tuple(u.id for u in session.world.living("red"))
    for event in round_events(red):
        session.log.apply(event)
    for uid in red:
        session.log.agents[uid].intent = INTENT
    if waiting:  # a second round in flight: half the squad thinks, one runs an interim plan
        session.log.apply(RoundStarted(2, "red", red[::2], "parallel", True, Tier.full_llm, 101.0))
        session.interim_agents.add(red[0])
    ui = GameUI(session, size)
    crowd_on_objective(scenario, ui)
    return ui


def draw_at(ui: GameUI, size: tuple[int, int]) -> pygame.Surface:
    screen = pygame.display.set_mode(size)
    ui.draw(screen)
    return screen


def describe(pairs: list[tuple[object, object]]) -> str:
    return "; ".join(f"{a} / {b}" for a, b in pairs[:4])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("waiting", [False, True], ids=["planned", "waiting"])
def test_no_label_overlaps_or_runs_outside_its_panel(
    name: str, size: tuple[int, int], waiting: bool
) -> None:
    ui = busy_ui(name, size, waiting=waiting)
    draw_at(ui, size)
    drawn = ui.fonts.drawn
    assert not drawn.overlaps(), describe(drawn.overlaps())  # type: ignore[arg-type]
    assert not drawn.outside(), drawn.outside()[:4]
    # Every red agent is labelled, or counted in the "+N labels" chip.
    board = drawn.group("board")
    hidden = sum(int(d.text.split()[0][1:]) for d in board if d.text.endswith("labels (no room)"))
    labelled = [d for d in board if d.text.startswith("#")]
    red = len(list(ui.session.world.living("red")))
    assert len(labelled) + hidden == red
    assert len(labelled) >= red // 2, "most agents keep their own label"
    assert any(INTENT[:8] in d.text for d in labelled) or waiting
    # The status bar still names the map and the backend; the waterfall its rounds.
    status = " ".join(d.text for d in drawn.group("status"))
    assert name in status and "plans by tier" in status
    waterfall = [d.text for d in drawn.group("waterfall")]
    assert any(t.startswith("#") for t in waterfall)  # agent row labels
    assert any(t.endswith("ms") or t.endswith("s") for t in waterfall)  # axis ticks


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_board_fills_the_window(size: tuple[int, int]) -> None:
    ui = busy_ui("village", size)
    lay = ui.layout()
    left = lay.left
    # The board is as large as its column allows along one axis (square tiles).
    assert lay.board.rect.width > left.width - lay.board.tile * 2 or (
        lay.waterfall is not None
        and lay.board.rect.height > lay.waterfall.top - left.top - lay.board.tile * 2
    )


def test_text_is_shortened_at_a_word_with_an_ellipsis() -> None:
    ui = busy_ui("skirmish", (1024, 640))
    fit = ui.fonts.fit
    assert fit("short", 500) == "short"
    cut = fit("Prompt block (shared prefix 1220 chars)", 150)
    assert cut.endswith("…") and ui.fonts.width(cut) <= 150
    assert cut[:-1] in ("Prompt block", "Prompt block (shared", "Prompt")
    assert fit("x" * 200, 50).endswith("…")  # one long word: cut inside it, as a last resort


def test_labels_never_overlap_when_space_runs_out() -> None:
    bounds = pygame.Rect(0, 0, 100, 40)
    spots = place([((50, 20), (40, 15))] * 12, bounds, [], 10)
    rects = [r for r in spots if r is not None]
    assert 0 < len(rects) < 12  # some found room, the rest are reported as None
    for i, a in enumerate(rects):
        assert bounds.contains(a)
        assert all(not a.colliderect(b) for b in rects[i + 1 :])


def test_window_opens_at_a_size_that_fits_the_screen() -> None:
    assert window_size((1600, 1000)) == (1440, 900)
    assert window_size((1920, 1080)) == (1728, 972)
    assert window_size((600, 400)) == (640, 400)  # never under the minimum
    assert window_size(None) == (1280, 800)


def test_resizing_the_window_relays_the_board() -> None:
    ui = busy_ui("village", (1280, 800))
    before = ui.layout().board.tile
    ui.handle(pygame.event.Event(pygame.VIDEORESIZE, w=1920, h=1080, size=(1920, 1080)))
    assert ui.layout().board.tile > before
    draw_at(ui, (1920, 1080))
    assert not ui.fonts.drawn.outside()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_fits_its_panel(size: tuple[int, int]) -> None:
    ui = busy_ui("village", size)
    ui.view.show_help = True
    draw_at(ui, size)
    drawn = ui.fonts.drawn
    shown = " ".join(d.text for d in drawn.group("help"))
    assert "fog of war" in shown and "match chart" in shown  # O and L are listed
    entries = sum(1 + 2 * len(items) for _, items in CONTROLS)
    assert len(drawn.group("help")) == entries  # every key and heading, none dropped
    assert not drawn.overlaps() and not drawn.outside()
    assert not drawn.group("toasts") and not drawn.group("end")  # help alone on top


def test_the_match_chart_shows_every_finished_round() -> None:
    session, _ = make_session(load("village"))
    red = tuple(u.id for u in session.world.living("red"))
    for n in range(1, 31):
        for event in round_events(red, round_id=n, t0=100.0 + n):
            session.log.apply(event)
    points = list(session.log.series)
    assert [p.number for p in points] == list(range(1, 31))
    assert points[0].fallbacks == 2 and points[0].llm_share == pytest.approx(4 / 6)
    assert points[0].ttfp_ms == 150.0 and points[0].time_to_all_ms == 450.0
    ui = GameUI(session, (1024, 640))
    press(ui, pygame.K_l)
    assert ui.view.show_chart
    draw_at(ui, (1024, 640))
    drawn = ui.fonts.drawn
    texts = [d.text for d in drawn.group("waterfall")]
    assert "Match chart: 30 rounds   L: waterfall" in texts
    assert "1" in texts and "ttfp" in texts and "fallbacks" in texts  # round axis, legend
    assert not drawn.overlaps() and not drawn.outside()
    press(ui, pygame.K_l)
    draw_at(ui, (1024, 640))
    assert any(t.startswith("Planning waterfall") for t in (d.text for d in drawn.items))


def test_the_intent_is_drawn_above_the_unit_and_in_the_inspector() -> None:
    ui = busy_ui("skirmish", (1280, 800))
    uid = min(u.id for u in ui.session.world.living("red"))
    state = ui.session.log.agents[uid]
    state.intent = "hold the door"
    draw_at(ui, (1280, 800))
    assert any(
        d.text.startswith(f"#{uid} ") and d.text.endswith("hold the door")
        for d in ui.fonts.drawn.group("board")
    )
    snap = ui.inspector.snapshot(ui.session.world, uid)
    lines = inspector_lines(uid, state, snap, ui.session.log, "red")
    assert "intent: hold the door" in [line.text for line in lines]


def test_a_thinking_segment_is_drawn_where_the_trace_has_one() -> None:
    ui = busy_ui("skirmish", (1280, 800))
    screen = draw_at(ui, (1280, 800))
    rect = ui.layout().waterfall
    assert rect is not None
    legend_only = colour_count(screen, rect, theme.THINKING)  # its swatch in the legend
    bar = next(iter(ui.session.log.rounds[-1].bars.values()))
    bar.thinking_ms, bar.first_content_ms = 20.0, 120.0
    screen = draw_at(ui, (1280, 800))
    assert colour_count(screen, rect, theme.THINKING) > legend_only + 20
