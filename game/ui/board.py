"""The board: terrain, fog of war, smoke, units, effects, selection and paths.

Static layers are cached: the terrain is drawn once per tile size, and the
terrain + fog + smoke composite once per change of what the player can see
(at most once per tick). Per frame only units, effects and marks are drawn.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

import pygame

from game.rules.grid import Grid
from game.rules.sight import bresenham
from game.rules.state import AreaFire, Died, Explosion, Healed, Shot, SmokePlaced, Unit
from game.rules.steps import POSITION_ACTS
from game.rules.world import World
from game.ui import theme

Tile = tuple[int, int]

ROLE_MARK: dict[str, str] = {"rifleman": "R", "scout": "S", "medic": "M", "heavy": "H"}
EFFECT_SHOWN_TICKS = 4
"""Effects fade out over this many ticks."""


# ---------------------------------------------------------------- geometry
@dataclass(frozen=True)
class BoardLayout:
    """Where the grid sits in the window: square tiles, centred in `area`."""

    area: pygame.Rect
    grid_w: int
    grid_h: int
    tile: int
    ox: int
    oy: int

    @classmethod
    def fit(cls, area: pygame.Rect, grid_w: int, grid_h: int) -> BoardLayout:
        tile = max(4, min(area.width // grid_w, area.height // grid_h))
        ox = area.x + (area.width - tile * grid_w) // 2
        oy = area.y + (area.height - tile * grid_h) // 2
        return cls(pygame.Rect(area), grid_w, grid_h, tile, ox, oy)

    @property
    def rect(self) -> pygame.Rect:
        return pygame.Rect(self.ox, self.oy, self.tile * self.grid_w, self.tile * self.grid_h)

    def tile_rect(self, x: int, y: int) -> pygame.Rect:
        return pygame.Rect(self.ox + x * self.tile, self.oy + y * self.tile, self.tile, self.tile)

    def centre(self, x: int, y: int) -> tuple[int, int]:
        t = self.tile
        return (self.ox + x * t + t // 2, self.oy + y * t + t // 2)

    def tile_at(self, px: int, py: int) -> Tile | None:
        """The tile under a window pixel, or None off the board."""
        if px < self.ox or py < self.oy:
            return None
        x, y = (px - self.ox) // self.tile, (py - self.oy) // self.tile
        if x >= self.grid_w or y >= self.grid_h:
            return None
        return (x, y)

    def tiles_in(self, r: pygame.Rect) -> tuple[int, int, int, int]:
        """Inclusive tile bounds (x0, y0, x1, y1) a pixel rectangle overlaps, clamped."""
        x0 = max(0, (r.left - self.ox) // self.tile)
        y0 = max(0, (r.top - self.oy) // self.tile)
        x1 = min(self.grid_w - 1, (r.right - 1 - self.ox) // self.tile)
        y1 = min(self.grid_h - 1, (r.bottom - 1 - self.oy) // self.tile)
        return x0, y0, x1, y1


# ---------------------------------------------------------------- fog of war
@lru_cache(maxsize=32)
def _rays(radius: int) -> tuple[tuple[Tile, ...], ...]:
    """Bresenham offsets from (0,0) to every tile on the square of `radius`, clipped to
    the sight circle. Position independent, so computed once per sight radius."""
    r2 = radius * radius
    ends = [(dx, -radius) for dx in range(-radius, radius + 1)]
    ends += [(dx, radius) for dx in range(-radius, radius + 1)]
    ends += [(-radius, dy) for dy in range(-radius + 1, radius)]
    ends += [(radius, dy) for dy in range(-radius + 1, radius)]
    rays = []
    for end in ends:
        ray = tuple(t for t in bresenham((0, 0), end)[1:] if t[0] * t[0] + t[1] * t[1] <= r2)
        rays.append(ray)
    return tuple(rays)


def seen_from(grid: Grid, smoke: Collection[Tile], pos: Tile, sight: int) -> frozenset[Tile]:
    """Tiles a viewer at `pos` sees: rays stop after a wall or a smoke tile (both seen).

    An approximation of `game.rules.sight.can_see` good enough for dimming tiles; which
    enemies are shown always comes from the world's own visibility.
    """
    px, py = pos
    seen = {pos}
    for ray in _rays(sight):
        for dx, dy in ray:
            x, y = px + dx, py + dy
            if not grid.in_bounds(x, y):
                break
            seen.add((x, y))
            if grid.blocks_sight(x, y) or (x, y) in smoke:
                break
    return frozenset(seen)


class FogOfWar:
    """Tiles the player's squad sees, recomputed only for viewers that moved."""

    def __init__(self) -> None:
        self._per_viewer: dict[tuple[Tile, int, frozenset[Tile]], frozenset[Tile]] = {}
        self._key: tuple[object, ...] | None = None
        self._seen: frozenset[Tile] = frozenset()

    def seen(self, world: World, squad: str) -> tuple[frozenset[Tile], tuple[object, ...]]:
        """(seen tiles, a key that changes whenever they may have changed)."""
        smoke = world.smoke_tiles()
        viewers = tuple((u.pos, world.sight_of(u)) for u in world.living(squad))
        key: tuple[object, ...] = (id(world), viewers, smoke)
        if key != self._key:
            cache: dict[tuple[Tile, int, frozenset[Tile]], frozenset[Tile]] = {}
            seen: set[Tile] = set()
            for pos, sight in viewers:
                k = (pos, sight, smoke)
                tiles = self._per_viewer.get(k)
                if tiles is None:
                    tiles = seen_from(world.grid, smoke, pos, sight)
                cache[k] = tiles
                seen |= tiles
            self._per_viewer = cache
            self._key = key
            self._seen = frozenset(seen)
        return self._seen, key


# ---------------------------------------------------------------- terrain
def draw_terrain(grid: Grid, tile: int) -> pygame.Surface:
    """The whole map at `tile` px per tile, drawn by code (no assets)."""
    surf = pygame.Surface((grid.width * tile, grid.height * tile))
    surf.fill(theme.TERRAIN_COLOURS["floor"])
    for y in range(grid.height):
        for x in range(grid.width):
            kind = grid.tile(x, y)
            r = pygame.Rect(x * tile, y * tile, tile, tile)
            pygame.draw.rect(surf, theme.TERRAIN_COLOURS[kind], r)
            if kind == "floor":
                pygame.draw.rect(surf, theme.GRID_LINE, r, 1)
            elif kind == "wall":
                pygame.draw.rect(surf, theme.WALL_EDGE, r, max(1, tile // 8))
                pygame.draw.line(surf, theme.WALL_EDGE, r.midleft, r.midright, 1)
            elif kind == "cover":
                pygame.draw.rect(surf, theme.GRID_LINE, r, 1)
                bag = pygame.Rect(0, 0, tile * 2 // 3, max(3, tile // 4))
                bag.center = (r.centerx, r.centery - tile // 7)
                pygame.draw.rect(surf, theme.COVER_BAG, bag, border_radius=2)
                bag.center = (r.centerx, r.centery + tile // 7)
                pygame.draw.rect(surf, theme.COVER_BAG, bag, border_radius=2)
            elif kind == "water":
                for k in (1, 2):
                    yy = r.y + k * tile // 3
                    pygame.draw.line(
                        surf, theme.WATER_WAVE, (r.x + tile // 5, yy), (r.right - tile // 5, yy)
                    )
            elif kind == "objective":
                pygame.draw.rect(surf, theme.OBJECTIVE_EDGE, r.inflate(-tile // 2, -tile // 2), 1)
    return surf


# ---------------------------------------------------------------- the view
class BoardView:
    """Draws the board; holds only caches (the world is read, never changed)."""

    def __init__(self, fonts: theme.Fonts) -> None:
        self.fonts = fonts
        self.fog = FogOfWar()
        self._terrain: tuple[tuple[int, int], pygame.Surface] | None = None
        self._layer: tuple[tuple[object, ...], pygame.Surface] | None = None
        self._fog_tile: tuple[int, pygame.Surface] | None = None
        self._smoke_tile: tuple[int, pygame.Surface] | None = None

    def terrain(self, grid: Grid, tile: int) -> pygame.Surface:
        key = (id(grid), tile)
        if self._terrain is None or self._terrain[0] != key:
            self._terrain = (key, draw_terrain(grid, tile).convert())
        return self._terrain[1]

    def _alpha_tile(self, tile: int, rgba: tuple[int, int, int, int]) -> pygame.Surface:
        s = pygame.Surface((tile, tile), pygame.SRCALPHA)
        s.fill(rgba)
        return s

    def static_layer(self, world: World, squad: str, lay: BoardLayout) -> pygame.Surface:
        """Terrain + fog + smoke, rebuilt only when sight or smoke changed."""
        seen, vis_key = self.fog.seen(world, squad)
        key = (lay.tile, id(world.grid), vis_key)
        if self._layer is not None and self._layer[0] == key:
            return self._layer[1]
        t = lay.tile
        layer = self.terrain(world.grid, t).copy()
        if self._fog_tile is None or self._fog_tile[0] != t:
            self._fog_tile = (t, self._alpha_tile(t, (0, 0, 0, theme.FOG_ALPHA)))
            self._smoke_tile = (t, self._alpha_tile(t, theme.SMOKE))
        fog = self._fog_tile[1]
        for y in range(world.grid.height):
            for x in range(world.grid.width):
                if (x, y) not in seen:
                    layer.blit(fog, (x * t, y * t))
        assert self._smoke_tile is not None
        for x, y in world.smoke:
            if (x, y) in seen:
                layer.blit(self._smoke_tile[1], (x * t, y * t))
        self._layer = (key, layer)
        return layer

    def shown_units(self, world: World, squad: str, reveal: bool = False) -> list[Unit]:
        """Living units the player may see: their own squad plus enemies visible to it
        (every unit when `reveal` is on)."""
        visible = world.visible_enemy_ids(squad)
        return [u for u in world.living() if reveal or u.squad == squad or u.id in visible]

    def draw(
        self,
        surf: pygame.Surface,
        lay: BoardLayout,
        world: World,
        squad: str,
        selected: Iterable[int],
        planned: Collection[int] = (),
        reveal: bool = False,
    ) -> None:
        """Draw the board: the selected units' paths in white, and the planned paths of
        `planned` (the shown LLM agents) in their squad's colour."""
        surf.blit(self.static_layer(world, squad, lay), (lay.ox, lay.oy))
        seen = self.fog.seen(world, squad)[0]
        self._draw_dead(surf, lay, world, seen)
        sel = set(selected)
        for uid in sorted(planned):
            u = world.units.get(uid)
            if u is not None and u.alive and uid not in sel:
                self._draw_path(surf, lay, u, theme.PLANNED_PATH.get(u.squad, theme.PATH), 1)
        for uid in sorted(sel):
            u = world.units.get(uid)
            if u is not None and u.alive and u.squad == squad:
                self._draw_path(surf, lay, u)
        shown = self.shown_units(world, squad, reveal)
        for u in shown:
            self._draw_unit(surf, lay, u, u.id in sel)
        self._draw_effects(surf, lay, world, seen)

    def unit_rects(self, lay: BoardLayout, units: Iterable[Unit]) -> list[pygame.Rect]:
        """The drawn body of each unit (circle and bars): what labels must not cover."""
        inset = max(1, lay.tile // 8)
        return [lay.tile_rect(u.x, u.y).inflate(-2 * inset, -inset) for u in units]

    # ------------------------------------------------------------ pieces
    def _draw_unit(self, surf: pygame.Surface, lay: BoardLayout, u: Unit, selected: bool) -> None:
        t = lay.tile
        cx, cy = lay.centre(u.x, u.y)
        cy -= t // 10  # leave room for the bars under the circle
        radius = max(3, int(t * 0.36))
        if selected:
            pygame.draw.circle(surf, theme.SELECTED, (cx, cy), radius + 3, 2)
        pygame.draw.circle(surf, theme.SQUAD_COLOURS.get(u.squad, theme.TEXT), (cx, cy), radius)
        pygame.draw.circle(
            surf, theme.SQUAD_DARK.get(u.squad, theme.BACKGROUND), (cx, cy), radius, 2
        )
        if u.posture == "cover":
            ring = pygame.Rect(0, 0, 2 * radius + 6, 2 * radius + 6)
            ring.center = (cx, cy)
            pygame.draw.arc(surf, theme.COVER_BAG, ring, 3.6, 5.8, 2)
        mark = self.fonts.text(
            ROLE_MARK.get(u.role, "?"), (255, 255, 255), size=max(14, t * 2 // 3), bold=True
        )
        surf.blit(mark, mark.get_rect(center=(cx, cy + 1)))
        st = u.stats
        r = lay.tile_rect(u.x, u.y)
        bar_w = t - 4
        hp_frac = max(0.0, min(1.0, u.hp / st.hp))
        y_hp = r.bottom - 6
        pygame.draw.rect(surf, theme.BAR_BACK, (r.x + 2, y_hp, bar_w, 3))
        pygame.draw.rect(
            surf,
            theme.HP_GOOD if hp_frac > 0.35 else theme.HP_LOW,
            (r.x + 2, y_hp, round(bar_w * hp_frac), 3),
        )
        ammo_frac = max(0.0, min(1.0, u.ammo / st.ammo)) if st.ammo else 0.0
        pygame.draw.rect(surf, theme.BAR_BACK, (r.x + 2, y_hp + 3, bar_w, 2))
        pygame.draw.rect(surf, theme.AMMO, (r.x + 2, y_hp + 3, round(bar_w * ammo_frac), 2))

    def _draw_dead(
        self, surf: pygame.Surface, lay: BoardLayout, world: World, seen: frozenset[Tile]
    ) -> None:
        s = max(3, lay.tile // 4)
        for u in world.units.values():
            if u.dead and u.pos in seen:
                cx, cy = lay.centre(u.x, u.y)
                colour = theme.SQUAD_DARK.get(u.squad, theme.AXIS)
                pygame.draw.line(surf, colour, (cx - s, cy - s), (cx + s, cy + s), 3)
                pygame.draw.line(surf, colour, (cx - s, cy + s), (cx + s, cy - s), 3)

    def _draw_path(
        self,
        surf: pygame.Surface,
        lay: BoardLayout,
        u: Unit,
        colour: theme.Colour = theme.PATH,
        width: int = 2,
    ) -> None:
        points = [lay.centre(u.x, u.y)]
        if u.active is not None and u.active.path:
            points += [lay.centre(x, y) for x, y in u.active.path]
        goals: list[Tile] = []
        steps = ([u.active.step] if u.active is not None else []) + list(u.queue)
        for step in steps:
            if isinstance(step, POSITION_ACTS):
                goals.append((step.x, step.y))
        if len(points) == 1 and goals:
            points.append(lay.centre(*goals[0]))
        if len(points) > 1:
            pygame.draw.lines(surf, colour, False, points, width)
        for gx, gy in goals:
            r = lay.tile_rect(gx, gy).inflate(-lay.tile // 3, -lay.tile // 3)
            pygame.draw.rect(surf, colour, r, width)

    def _draw_effects(
        self, surf: pygame.Surface, lay: BoardLayout, world: World, seen: frozenset[Tile]
    ) -> None:
        t = lay.tile
        for e in world.effects:
            age = world.tick - e.tick
            if age > EFFECT_SHOWN_TICKS:
                continue
            fresh = age <= 1
            match e:
                case Shot(src=src, dst=dst, hit=hit):
                    if src in seen or dst in seen:
                        colour = theme.SHOT_HIT if hit else theme.SHOT_MISS
                        pygame.draw.line(
                            surf, colour, lay.centre(*src), lay.centre(*dst), 3 if fresh else 1
                        )
                        if hit and fresh:
                            pygame.draw.circle(surf, colour, lay.centre(*dst), max(3, t // 5))
                case AreaFire(src=src, centre=c, radius=rad):
                    if c in seen or src in seen:
                        box = lay.tile_rect(c[0] - rad, c[1] - rad)
                        box.size = (t * (2 * rad + 1), t * (2 * rad + 1))
                        pygame.draw.line(surf, theme.SHOT_HIT, lay.centre(*src), lay.centre(*c), 2)
                        pygame.draw.rect(surf, theme.SHOT_HIT, box, 2)
                case Explosion(centre=c, radius=rad):
                    if c in seen:
                        grow = 0.5 + age / EFFECT_SHOWN_TICKS
                        pygame.draw.circle(
                            surf, theme.EXPLOSION, lay.centre(*c), int(t * (rad + grow)), 3
                        )
                        if fresh:
                            pygame.draw.circle(surf, theme.SHOT_HIT, lay.centre(*c), t // 2)
                case Healed(at=at):
                    if at in seen:
                        cx, cy = lay.centre(*at)
                        cy -= t // 2 + age * 2
                        s = max(3, t // 5)
                        pygame.draw.line(surf, theme.HEAL, (cx - s, cy), (cx + s, cy), 3)
                        pygame.draw.line(surf, theme.HEAL, (cx, cy - s), (cx, cy + s), 3)
                case Died(at=at):
                    if at in seen:
                        pygame.draw.circle(
                            surf, theme.DEATH, lay.centre(*at), int(t * (0.4 + age * 0.15)), 2
                        )
                case SmokePlaced():
                    pass  # smoke itself is drawn in the static layer while it lasts
