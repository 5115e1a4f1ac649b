"""The window's controls, driven with posted pygame events under the dummy driver."""

from __future__ import annotations

import pygame
import pytest

from game.rules.steps import Approach, Attack, MoveTo
from game.ui.app import GameUI
from game.ui.help import CONTROLS
from planner.fallback import Tier
from tests.ui_fakes import DUEL, make_session, press

pytestmark = pytest.mark.usefixtures("pygame_display")


def click(ui: GameUI, pos: tuple[int, int], button: int = 1) -> None:
    pygame.event.post(
        pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(0, 0, 0))
    )
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=button))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=button))
    ui.process_events()


def toasts(ui: GameUI) -> list[str]:
    return [text for text, _, _ in ui.view.toasts.items]


def test_b_cycles_dispatch_mode() -> None:
    session, planner = make_session()
    ui = GameUI(session, (1280, 800))
    seen = []
    for _ in range(3):
        press(ui, pygame.K_b)
        seen.append(planner.settings.mode)
    assert seen == ["batched", "sequential", "parallel"]
    assert any("dispatch: batched" in t for t in toasts(ui))


@pytest.mark.parametrize(
    ("key", "field", "first", "second"),
    [
        (pygame.K_s, "stream", False, True),
        (pygame.K_k, "cache", False, True),
        (pygame.K_t, "start_tier", Tier.full_llm, Tier.simplified_llm),
    ],
)
def test_toggles_change_the_setting_they_name(
    key: int, field: str, first: object, second: object
) -> None:
    session, planner = make_session()
    ui = GameUI(session, (1280, 800))
    press(ui, key)
    assert getattr(planner.settings, field) == first
    assert "from next round" in toasts(ui)[-1]
    press(ui, key)
    assert getattr(planner.settings, field) == second


def test_f_cycles_fault_injection() -> None:
    rates: list[float] = []
    session, _ = make_session(faults=rates)
    ui = GameUI(session, (1280, 800))
    for _ in range(4):
        press(ui, pygame.K_f)
    assert rates == [0.2, 0.5, 1.0, 0.0]
    assert session.fault_rate == 0.0


def test_f_says_not_available_without_the_sim() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    press(ui, pygame.K_f)
    assert session.fault_rate == 0.0
    assert "not available" in toasts(ui)[-1]


def test_view_keys() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    v = ui.view
    press(ui, pygame.K_i)
    press(ui, pygame.K_w)
    assert (v.show_inspector, v.show_waterfall) == (False, False)
    press(ui, pygame.K_TAB)  # Tab also reopens the inspector
    red = [u.id for u in session.world.living("red")]
    assert v.show_inspector and v.inspected == red[0]
    press(ui, pygame.K_TAB)
    assert v.inspected == red[1]
    for _ in range(len(red) - 1):
        press(ui, pygame.K_TAB)
    assert v.inspected == red[0]  # wraps around
    paused = []
    for _ in range(2):
        press(ui, pygame.K_SPACE)
        paused.append(session.paused)
    assert paused == [True, False]
    press(ui, pygame.K_PLUS)
    assert session.speed == 2.0
    press(ui, pygame.K_MINUS)
    press(ui, pygame.K_MINUS)
    assert session.speed == 0.5
    helps = []
    for key in (pygame.K_h, pygame.K_F1):
        press(ui, key)
        helps.append(v.show_help)
    assert helps == [True, False]
    press(ui, pygame.K_F12)
    assert v.screenshot_to is not None and v.screenshot_to.startswith("screenshots/")
    assert v.screenshot_to.endswith(".png")
    press(ui, pygame.K_ESCAPE)
    assert v.quit


def test_help_lists_every_letter_hotkey() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    listed = {
        part.strip() for _, items in CONTROLS for keys, _ in items for part in keys.split("/")
    }
    for key in ui.controls._keys():
        name = pygame.key.name(key)
        if len(name) == 1 and name.isalpha():
            assert name.upper() in listed, f"key {name} missing from help"
    assert {"Tab", "Space", "F12", "Esc", "H", "F1"} <= listed


def test_click_selects_and_right_click_moves_the_unit() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    unit = session.world.units[1]
    start = unit.pos
    click(ui, ui.tile_centre(*start))
    assert ui.view.selected == {1}
    goal = (start[0] + 4, start[1])
    click(ui, ui.tile_centre(*goal), button=3)
    assert list(unit.queue) == [MoveTo(x=goal[0], y=goal[1])]
    for _ in range(6):
        session.step_tick()
    assert unit.pos == goal


def test_drag_box_selects_blue_units_only() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    lay = ui.layout().board
    a, b = lay.tile_rect(0, 0).topleft, lay.tile_rect(8, 23).bottomright
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=a, button=1))
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=b, rel=(0, 0), buttons=(1, 0, 0)))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=b, button=1))
    ui.process_events()
    blue = {u.id for u in session.world.living("blue")}
    assert ui.view.selected == blue
    # A group move spreads the goals so the units do not pile onto one tile.
    click(ui, ui.tile_centre(5, 12), button=3)
    goals = {
        (s.x, s.y) for uid in blue for s in session.world.units[uid].queue if isinstance(s, MoveTo)
    }
    assert len(goals) == len(blue)


def test_right_click_on_a_visible_enemy_attacks_it() -> None:
    session, _ = make_session(DUEL)
    ui = GameUI(session, (1280, 800))
    me, enemy = session.world.units[1], session.world.units[2]
    assert enemy.id in session.world.visible_enemy_ids("blue")
    click(ui, ui.tile_centre(*me.pos))
    click(ui, ui.tile_centre(*enemy.pos), button=3)
    assert list(me.queue) == [Attack(target_id=2)]
    ammo = me.ammo
    session.step_tick()
    assert me.ammo == ammo - 1  # the shot was fired


def test_attack_out_of_range_approaches_first() -> None:
    session, _ = make_session(DUEL)
    ui = GameUI(session, (1280, 800))
    me, far = session.world.units[1], session.world.units[2]
    far.x = 9  # 8 tiles away: in sight (9), out of rifle range (7)
    session.world.touch()
    assert far.id in session.world.visible_enemy_ids("blue")
    click(ui, ui.tile_centre(*me.pos))
    click(ui, ui.tile_centre(*far.pos), button=3)
    assert list(me.queue) == [Approach(target_id=2), Attack(target_id=2)]


def test_refused_order_is_shown_not_applied() -> None:
    session, _ = make_session(DUEL)
    ui = GameUI(session, (1280, 800))
    click(ui, ui.tile_centre(1, 1))
    press(ui, pygame.K_r)  # ammo is full
    assert not session.world.units[1].queue
    assert "ammo already full" in toasts(ui)[-1]


def test_keys_at_cursor_order_throws() -> None:
    session, _ = make_session(DUEL)
    ui = GameUI(session, (1280, 800))
    click(ui, ui.tile_centre(1, 1))
    pygame.event.post(
        pygame.event.Event(
            pygame.MOUSEMOTION, pos=ui.tile_centre(4, 2), rel=(0, 0), buttons=(0, 0, 0)
        )
    )
    ui.process_events()
    press(ui, pygame.K_g)
    step = session.world.units[1].queue[0]
    assert (step.act, step.x, step.y) == ("ThrowSmoke", 4, 2)  # type: ignore[union-attr]


def test_orders_without_selection_are_explained() -> None:
    session, _ = make_session()
    ui = GameUI(session, (1280, 800))
    click(ui, ui.tile_centre(10, 10), button=3)
    assert "select a blue unit" in toasts(ui)[-1]
    assert not any(u.queue for u in session.world.living("blue"))


def test_enter_restarts_a_finished_match() -> None:
    session, _ = make_session(DUEL)
    ui = GameUI(session, (1280, 800))
    session.world.units[2].hp = 0
    session.world.step_tick()
    finished = [session.finished]
    press(ui, pygame.K_RETURN)
    finished.append(session.finished)
    assert finished == [True, False]
    assert session.world.units[2].hp > 0
