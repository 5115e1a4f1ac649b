"""Mouse and keyboard: selection, player orders and the hotkeys.

`Controls.handle(event)` turns one pygame event into session commands (orders,
settings) and view changes (`ViewState`). It never touches the world directly:
orders go through `session.order`, settings through `session.set_settings`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pygame

from game.rules.grid import NEIGHBOURS_8
from game.rules.sight import dist2, line_of_sight
from game.rules.state import Unit
from game.rules.steps import (
    AoEAttack,
    Approach,
    Attack,
    Block,
    Distract,
    Heal,
    MarkTarget,
    MoveTo,
    Reload,
    Retreat,
    Scan,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
    Wait,
)
from game.ui import SessionLike, theme
from game.ui.board import BoardLayout
from game.ui.inspector import llm_agent_ids
from game.ui.overlay import Toasts, replay_position
from planner.fallback import Tier

Tile = tuple[int, int]

SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
FAULT_RATES: tuple[float, ...] = (0.0, 0.2, 0.5, 1.0)
DRAG_THRESHOLD = 6
"""Pixels the mouse must move with the button down before a click becomes a box."""
LEFT, RIGHT = 1, 3


@dataclass
class ViewState:
    """What the window shows; owned by the UI, never by the session."""

    selected: set[int] = field(default_factory=set)
    inspected: int | None = None
    show_inspector: bool = True
    show_waterfall: bool = True
    show_chart: bool = False
    """The waterfall panel shows the per-match chart instead (L)."""
    show_help: bool = False
    reveal_all: bool = True
    """The debug view (default): every unit, with the LLM agents' badges, intents and
    planned paths. O turns fog of war on: only what the blue squad sees."""
    mouse: tuple[int, int] = (0, 0)
    drag_from: tuple[int, int] | None = None
    quit: bool = False
    screenshot_to: str | None = None
    toasts: Toasts = field(default_factory=Toasts)

    @property
    def drag_rect(self) -> pygame.Rect | None:
        if self.drag_from is None:
            return None
        (x0, y0), (x1, y1) = self.drag_from, self.mouse
        if abs(x1 - x0) < DRAG_THRESHOLD and abs(y1 - y0) < DRAG_THRESHOLD:
            return None
        return pygame.Rect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))


def screenshot_name(now: float | None = None) -> str:
    """screenshots/squadmind-YYYYmmdd-HHMMSS-mmm.png (milliseconds: two in a second differ)."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"screenshots/squadmind-{stamp}-{int(now * 1000) % 1000:03d}.png"


def spread_goals(session: SessionLike, target: Tile, count: int, exclude: set[int]) -> list[Tile]:
    """`count` distinct walkable tiles nearest `target` (breadth-first), so a group
    ordered to one tile does not pile onto it."""
    world = session.world
    grid = world.grid
    taken = {u.pos for u in world.living() if u.id not in exclude}
    out: list[Tile] = []
    seen = {target}
    todo = deque([target])
    while todo and len(out) < count:
        t = todo.popleft()
        if grid.walkable(*t) and t not in taken:
            out.append(t)
        for dx, dy in NEIGHBOURS_8:
            n = (t[0] + dx, t[1] + dy)
            if n not in seen and grid.in_bounds(*n) and dist2(n, target) <= 9:
                seen.add(n)
                todo.append(n)
    return out or [target]


class Controls:
    def __init__(
        self,
        session: SessionLike,
        view: ViewState,
        layout: Callable[[], BoardLayout],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.view = view
        self.layout = layout
        self.clock = clock

    # ------------------------------------------------------------ helpers
    def toast(self, text: str, colour: theme.Colour = theme.TEXT) -> None:
        self.view.toasts.push(text, self.clock(), colour)

    @property
    def squad(self) -> str:
        return self.session.player_squad or "blue"

    def my_selected(self) -> list[Unit]:
        world = self.session.world
        units = [world.units.get(i) for i in sorted(self.view.selected)]
        return [u for u in units if u is not None and u.alive and u.squad == self.squad]

    def cursor_tile(self) -> Tile | None:
        return self.layout().tile_at(*self.view.mouse)

    def enemy_at(self, tile: Tile | None) -> Unit | None:
        """A living enemy on `tile` that the player can see (or any, with reveal on)."""
        if tile is None:
            return None
        world = self.session.world
        u = world.occupant(tile)
        if u is None or u.squad == self.squad:
            return None
        if self.view.reveal_all or u.id in world.visible_enemy_ids(self.squad):
            return u
        return None

    def nearest_enemy(self, me: Unit) -> Unit | None:
        world = self.session.world
        seen = world.visible_enemies(self.squad)
        return min(seen, key=lambda e: (dist2(me.pos, e.pos), e.id), default=None)

    # ------------------------------------------------------------ orders
    def order_each(self, make: Callable[[Unit], list[Step] | str]) -> int:
        """Give every selected unit the order `make` builds; toast the first refusal."""
        units = self.my_selected()
        if not units:
            self.toast("select a blue unit first (left click or drag)", theme.TEXT_WARN)
            return 0
        ok = 0
        refusal: str | None = None
        for u in units:
            steps = make(u)
            reason = steps if isinstance(steps, str) else self.session.order(u.id, steps)
            if reason is None:
                ok += 1
            elif refusal is None:
                refusal = f"unit {u.id}: {reason}"
        if refusal is not None:
            self.toast(refusal, theme.TEXT_BAD)
        return ok

    def order_move(self, tile: Tile) -> None:
        units = self.my_selected()
        if not units:
            return
        goals = spread_goals(self.session, tile, len(units), {u.id for u in units})
        goal_of = {u.id: goals[i % len(goals)] for i, u in enumerate(units)}
        self.order_each(lambda u: [MoveTo(x=goal_of[u.id][0], y=goal_of[u.id][1])])

    def order_attack(self, enemy: Unit) -> None:
        world = self.session.world

        def plan(u: Unit) -> list[Step]:
            in_reach = dist2(u.pos, enemy.pos) <= u.stats.range**2
            if in_reach and line_of_sight(world.grid, world.smoke, u.pos, enemy.pos):
                return [Attack(target_id=enemy.id)]
            return [Approach(target_id=enemy.id), Attack(target_id=enemy.id)]

        if self.order_each(plan):
            self.toast(f"attack #{enemy.id}")

    def order_at_cursor(self, build: Callable[[int, int], Step], what: str) -> None:
        tile = self.cursor_tile()
        if tile is None:
            self.toast(f"{what}: point at a board tile first", theme.TEXT_WARN)
            return
        if self.order_each(lambda u: [build(*tile)]):
            self.toast(f"{what} at ({tile[0]},{tile[1]})")

    def order_on_enemy(self, build: Callable[[int], Step], what: str) -> None:
        enemy = self.enemy_at(self.cursor_tile())
        if enemy is None:
            self.toast(f"{what}: point at a visible enemy first", theme.TEXT_WARN)
            return
        if self.order_each(lambda u: [build(enemy.id)]):
            self.toast(f"{what} #{enemy.id}")

    def order_cover(self) -> None:
        def plan(u: Unit) -> list[Step] | str:
            cover = self.session.world.snapshot_of(u.id).cover
            if not cover:
                return "no free cover nearby"
            return [TakeCover(x=cover[0][0], y=cover[0][1])]

        self.order_each(plan)

    def order_retreat(self) -> None:
        def plan(u: Unit) -> list[Step] | str:
            enemy = self.nearest_enemy(u)
            return (
                "no visible enemy to retreat from"
                if enemy is None
                else [Retreat(target_id=enemy.id)]
            )

        self.order_each(plan)

    def order_simple(self, step: Step, what: str) -> None:
        if self.order_each(lambda u: [step]):
            self.toast(what)

    # ------------------------------------------------------------ settings
    def cycle_mode(self) -> None:
        s = self.session.settings.next_mode()
        self.session.set_settings(s)
        self.toast(f"dispatch: {s.mode} (from next round)")

    def toggle_stream(self) -> None:
        s = self.session.settings
        self.session.set_settings(s.with_(stream=not s.stream))
        self.toast(f"streaming {'on' if not s.stream else 'off'} (from next round)")

    def toggle_cache(self) -> None:
        s = self.session.settings
        self.session.set_settings(s.with_(cache=not s.cache))
        self.toast(f"prompt cache {'on' if not s.cache else 'off'} (from next round)")

    def toggle_tier(self) -> None:
        s = self.session.settings
        tier = Tier.simplified_llm if s.start_tier == Tier.full_llm else Tier.full_llm
        self.session.set_settings(s.with_(start_tier=tier))
        self.toast(
            f"start tier: {theme.TIER_LABEL[tier]} (from next round)", theme.TIER_COLOURS[tier]
        )

    def toggle_interim(self) -> None:
        p = self.session.pacing
        self.session.set_pacing(p.with_(interim=not p.interim))
        self.toast(
            "interim plans on (idle agents get a rule plan until theirs lands)"
            if not p.interim
            else "interim plans off (agents wait for their plan)"
        )

    def toggle_plan_ahead(self) -> None:
        p = self.session.pacing
        self.session.set_pacing(p.with_(plan_ahead=not p.plan_ahead))
        self.toast(f"planning ahead {'on' if not p.plan_ahead else 'off'} (from next round)")

    def cycle_faults(self) -> None:
        if not self.session.fault_injection_available:
            self.toast(
                f"fault injection not available with {self.session.backend_description}",
                theme.TEXT_WARN,
            )
            return
        now = self.session.fault_rate
        nearest = min(range(len(FAULT_RATES)), key=lambda i: abs(FAULT_RATES[i] - now))
        rate = FAULT_RATES[(nearest + 1) % len(FAULT_RATES)]
        self.session.set_fault_rate(rate)
        colour = theme.TEXT_BAD if rate else theme.TEXT
        self.toast(f"fault injection {rate:.0%} (from next request)", colour)

    def change_speed(self, direction: int) -> None:
        now = self.session.speed
        nearest = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - now))
        self.session.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, nearest + direction))]
        self.toast(f"game speed {self.session.speed:g}x")

    def cycle_inspected(self) -> None:
        s = self.session
        ids = llm_agent_ids(s.world, s.log, s.llm_squads)
        if not ids:
            self.toast("no LLM agent to inspect", theme.TEXT_WARN)
            return
        cur = self.view.inspected
        later = [i for i in ids if cur is None or i > cur]
        self.view.inspected = later[0] if later else ids[0]
        self.view.show_inspector = True

    def restart(self) -> None:
        self.session.restart()
        self.view.selected.clear()
        self.toast("new match")

    # ------------------------------------------------------------ dispatch
    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.view.quit = True
        elif event.type == pygame.KEYDOWN:
            self.on_key(event.key, event.mod)
        elif event.type == pygame.MOUSEMOTION:
            self.view.mouse = event.pos
        elif event.type == pygame.MOUSEBUTTONDOWN:
            self.view.mouse = event.pos
            if event.button == LEFT:
                self.view.drag_from = event.pos
            elif event.button == RIGHT:
                self.on_right_click(event.pos)
        elif event.type == pygame.MOUSEBUTTONUP:
            self.view.mouse = event.pos
            if event.button == LEFT:
                self.on_left_release(event.pos, bool(pygame.key.get_mods() & pygame.KMOD_SHIFT))

    def on_key(self, key: int, mod: int = 0) -> None:
        v = self.view
        if key == pygame.K_ESCAPE:
            if v.show_help:
                v.show_help = False
            else:
                v.quit = True
            return
        if key in (pygame.K_h, pygame.K_F1):
            v.show_help = not v.show_help
            return
        if key == pygame.K_F12:
            v.screenshot_to = screenshot_name()
            return
        if self.session.finished and key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_r):
            self.restart()
            return
        handler = self._keys().get(key)
        if handler is not None:
            handler()

    def _keys(self) -> dict[int, Callable[[], None]]:
        v = self.view
        return {
            pygame.K_b: self.cycle_mode,
            pygame.K_s: self.toggle_stream,
            pygame.K_k: self.toggle_cache,
            pygame.K_t: self.toggle_tier,
            pygame.K_f: self.cycle_faults,
            pygame.K_n: self.toggle_interim,
            pygame.K_p: self.toggle_plan_ahead,
            pygame.K_TAB: self.cycle_inspected,
            pygame.K_i: lambda: setattr(v, "show_inspector", not v.show_inspector),
            pygame.K_w: lambda: setattr(v, "show_waterfall", not v.show_waterfall),
            pygame.K_l: self.toggle_chart,
            pygame.K_o: self.toggle_reveal,
            pygame.K_SPACE: self.toggle_pause,
            pygame.K_PLUS: lambda: self.change_speed(1),
            pygame.K_EQUALS: lambda: self.change_speed(1),
            pygame.K_KP_PLUS: lambda: self.change_speed(1),
            pygame.K_MINUS: lambda: self.change_speed(-1),
            pygame.K_KP_MINUS: lambda: self.change_speed(-1),
            pygame.K_r: lambda: self.order_simple(Reload(), "reload"),
            pygame.K_c: self.order_cover,
            pygame.K_g: lambda: self.order_at_cursor(lambda x, y: ThrowSmoke(x=x, y=y), "smoke"),
            pygame.K_e: lambda: self.order_at_cursor(
                lambda x, y: ThrowExplosive(x=x, y=y), "explosive"
            ),
            pygame.K_a: lambda: self.order_at_cursor(lambda x, y: AoEAttack(x=x, y=y), "area fire"),
            pygame.K_m: lambda: self.order_on_enemy(lambda t: MarkTarget(target_id=t), "mark"),
            pygame.K_d: lambda: self.order_on_enemy(lambda t: Distract(target_id=t), "distract"),
            pygame.K_u: self.order_retreat,
            pygame.K_x: lambda: self.order_simple(Scan(), "scan"),
            pygame.K_v: lambda: self.order_simple(Heal(), "heal"),
            pygame.K_q: lambda: self.order_simple(Wait(), "wait"),
            pygame.K_z: lambda: self.order_simple(Block(), "block"),
            pygame.K_LEFTBRACKET: lambda: self.seek_round(-1),
            pygame.K_RIGHTBRACKET: lambda: self.seek_round(+1),
            pygame.K_PERIOD: self.step_once,
        }

    def seek_round(self, delta: int) -> None:
        s = self.session
        if not s.replaying:
            self.toast("[ and ] scrub rounds in a replay (--replay PATH)", theme.TEXT_WARN)
            return
        s.seek_round(s.replay_round() + delta)
        s.paused = True
        self.view.toasts.push(
            f"replay: {replay_position(s)} (paused; . steps a tick)",
            self.clock(),
            replaces="replay:",
        )

    def step_once(self) -> None:
        s = self.session
        if not s.paused:
            self.toast(". steps one tick while paused (Space)", theme.TEXT_WARN)
            return
        s.step_tick()
        self.toast(f"tick {s.world.tick}")

    def toggle_pause(self) -> None:
        self.session.paused = not self.session.paused
        self.toast("paused" if self.session.paused else "resumed")

    def toggle_reveal(self) -> None:
        self.view.reveal_all = not self.view.reveal_all
        self.toast(
            "debug view: every unit, with red's badges and paths (fog off)"
            if self.view.reveal_all
            else "fog of war on: only what blue sees (red outside its sight is hidden)"
        )

    def toggle_chart(self) -> None:
        v = self.view
        v.show_chart = not v.show_chart or not v.show_waterfall
        v.show_waterfall = True

    def on_right_click(self, pos: tuple[int, int]) -> None:
        if self.session.finished:
            return
        tile = self.layout().tile_at(*pos)
        if tile is None:
            return
        enemy = self.enemy_at(tile)
        if enemy is not None:
            self.order_attack(enemy)
        elif self.my_selected():
            self.order_move(tile)
        else:
            self.toast("select a blue unit first (left click or drag)", theme.TEXT_WARN)

    def on_left_release(self, pos: tuple[int, int], additive: bool) -> None:
        v = self.view
        box = v.drag_rect
        v.drag_from = None
        lay = self.layout()
        world = self.session.world
        if box is not None:
            x0, y0, x1, y1 = lay.tiles_in(box)
            picked = {
                u.id
                for u in world.living(self.squad)
                if x0 <= u.x <= x1 and y0 <= u.y <= y1 and box.collidepoint(lay.centre(u.x, u.y))
            }
            v.selected = (v.selected | picked) if additive else picked
            return
        tile = lay.tile_at(*pos)
        u = world.occupant(tile) if tile is not None else None
        if u is not None and u.squad == self.squad:
            if additive:
                v.selected ^= {u.id}
            else:
                v.selected = {u.id}
        elif (
            u is not None
            and u.squad in self.session.llm_squads
            and (v.reveal_all or u.id in world.visible_enemy_ids(self.squad))
        ):
            v.inspected = u.id  # clicking an LLM agent inspects it
            v.show_inspector = True
        elif tile is not None and not additive:
            v.selected = set()
