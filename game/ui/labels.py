"""The labels above LLM agents (tier badge, thinking dots, intent), laid out so that none
overlaps another or covers a unit.

One label per agent: its plan's intent (if it stated one, shortened) over a chip that is
either the tier badge (tier colour, cache mark, plan_wait), the pink `interim` chip, or
the thinking dots while the agent waits. Each label goes in the free spot nearest its
unit, searched outward on a grid of label-sized steps inside the board; a label moved
away from its unit gets a leader line back to it. A label that finds no free spot at
all is counted into one "+N" chip instead of being drawn over another.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pygame

from game.match.planlog import PlanningLog
from game.rules.state import Unit
from game.rules.world import World
from game.ui import theme
from game.ui.board import BoardLayout

BADGE_SIZE = 15
INTENT_PX = 120
"""Widest an intent line may be; longer intents end in an ellipsis at a word."""
DOTS_W = 30
GAP = 2
SEARCH_RINGS = 8


@dataclass(frozen=True)
class Label:
    unit: Unit
    chip: str
    """"dots", "interim" or "tier"."""
    colour: theme.Colour
    text: str
    cached: bool
    intent: str


def agent_labels(
    world: World, log: PlanningLog, shown: Collection[int], interim: Collection[int]
) -> list[Label]:
    """What each shown agent's label says (agents with no round yet get none)."""
    out = []
    for uid in sorted(shown):
        u = world.units.get(uid)
        state = log.agents.get(uid)
        if u is None or not u.alive or state is None:
            continue
        timing = state.timing
        intent = "" if state.waiting or not state.intent else state.intent.strip()
        if uid in interim:
            out.append(Label(u, "interim", theme.INTERIM, theme.INTERIM_LABEL, False, ""))
        elif state.waiting:
            out.append(Label(u, "dots", theme.PANEL, "", False, ""))
        elif timing is not None and timing.tier is not None:
            text = "-" if timing.plan_wait_ms is None else f"{timing.plan_wait_ms:.0f}ms"
            colour = theme.TIER_COLOURS[timing.tier]
            out.append(Label(u, "tier", colour, text, timing.from_cache, intent))
    return out


def _candidates(anchor: tuple[int, int], size: tuple[int, int], tile: int) -> list[pygame.Rect]:
    """Spots for a label of `size` whose bottom centre is near `anchor` (the unit's tile
    top), nearest first: right above, then outward in label-sized steps (up preferred)."""
    w, h = size
    sx, sy = w // 2 + GAP, h + GAP
    spots: list[tuple[float, int, int]] = []
    for dy in range(-SEARCH_RINGS, SEARCH_RINGS + 1):
        for dx in range(-SEARCH_RINGS, SEARCH_RINGS + 1):
            cost = abs(dx) + abs(dy) + (0.5 if dy < 0 else 0.0)  # dy < 0: below the unit
            spots.append((cost, dx, dy))
    spots.sort()
    out = []
    for _, dx, dy in spots:
        r = pygame.Rect(0, 0, w, h)
        below = tile + h if dy < 0 else 0  # below: skip over the unit's own tile
        r.midbottom = (anchor[0] + dx * sx, anchor[1] - dy * sy + below)
        out.append(r)
    return out


def place(
    sizes: list[tuple[tuple[int, int], tuple[int, int]]],
    bounds: pygame.Rect,
    obstacles: list[pygame.Rect],
    tile: int,
) -> list[pygame.Rect | None]:
    """A rectangle per (anchor, size) inside `bounds`, overlapping no other and, where
    possible, no obstacle (the units); None where no free spot exists."""
    placed: list[pygame.Rect] = []
    out: list[pygame.Rect | None] = []
    for anchor, size in sizes:
        spot = None
        for avoid in (placed + obstacles, placed):
            for r in _candidates(anchor, size, tile):
                if bounds.contains(r) and r.collidelist(avoid) < 0:
                    spot = r
                    break
            if spot is not None:
                break
        if spot is not None:
            placed.append(spot)
        out.append(spot)
    return out


def _size(fonts: theme.Fonts, label: Label) -> tuple[tuple[int, int], tuple[int, int]]:
    """(chip size, intent line size)."""
    ch = fonts.line_height(BADGE_SIZE)
    if label.chip == "dots":
        chip = (DOTS_W, ch - 4)
    else:
        cache_w = 16 if label.cached else 0
        chip = (fonts.width(label.text, BADGE_SIZE, bold=True) + 8 + cache_w, ch)
    intent = (0, 0)
    if label.intent:
        intent = (fonts.width(label.intent, BADGE_SIZE) + 6, ch)
    return chip, intent


def draw_agent_labels(
    surf: pygame.Surface,
    lay: BoardLayout,
    fonts: theme.Fonts,
    world: World,
    log: PlanningLog,
    shown: Collection[int],
    interim: Collection[int],
    obstacles: list[pygame.Rect],
    anim: float,
) -> None:
    """Draw every shown LLM agent's label without overlaps (see the module doc)."""
    labels = [
        lab
        if not lab.intent
        else Label(
            lab.unit,
            lab.chip,
            lab.colour,
            lab.text,
            lab.cached,
            fonts.fit(lab.intent, INTENT_PX, BADGE_SIZE),
        )
        for lab in agent_labels(world, log, shown, interim)
    ]
    # Bottom rows first: their natural spot (above) is where the others are not.
    labels.sort(key=lambda lab: (-lab.unit.y, lab.unit.x))
    sizes = []
    parts = []
    for lab in labels:
        chip, intent = _size(fonts, lab)
        w = max(chip[0], intent[0])
        h = chip[1] + (intent[1] + 1 if lab.intent else 0)
        cx, _ = lay.centre(lab.unit.x, lab.unit.y)
        sizes.append(((cx, lay.tile_rect(lab.unit.x, lab.unit.y).top + 1), (w, h)))
        parts.append((chip, intent))
    bounds = lay.rect
    spots = place(sizes, bounds, obstacles, lay.tile)
    hidden = 0
    for lab, (anchor, _), spot, (chip, intent) in zip(labels, sizes, spots, parts, strict=True):
        if spot is None:
            hidden += 1
            continue
        if spot.midbottom != anchor:
            _leader(surf, lab.colour if lab.chip != "dots" else theme.TEXT_DIM, anchor, spot)
        y = spot.y
        if lab.intent:
            box = pygame.Rect(0, y, intent[0], intent[1])
            box.centerx = spot.centerx
            pygame.draw.rect(surf, theme.PANEL, box, border_radius=3)
            img = fonts.text(lab.intent, theme.TEXT, size=BADGE_SIZE)
            surf.blit(img, img.get_rect(center=box.center))
            y = box.bottom + 1
        box = pygame.Rect(0, y, chip[0], chip[1])
        box.centerx = spot.centerx
        _draw_chip(surf, fonts, lab, box, anim)
        fonts.drawn.add("board", spot, bounds, f"#{lab.unit.id} {lab.text} {lab.intent}")
    if hidden:
        _draw_hidden(surf, fonts, hidden, bounds, obstacles + [s for s in spots if s])


def _leader(
    surf: pygame.Surface, colour: theme.Colour, anchor: tuple[int, int], spot: pygame.Rect
) -> None:
    """A thin line from the unit to the nearest point of its moved label."""
    x = max(spot.left, min(anchor[0], spot.right - 1))
    y = max(spot.top, min(anchor[1], spot.bottom - 1))
    pygame.draw.line(surf, colour, anchor, (x, y), 1)
    pygame.draw.circle(surf, colour, anchor, 2)


def _draw_chip(
    surf: pygame.Surface, fonts: theme.Fonts, lab: Label, box: pygame.Rect, anim: float
) -> None:
    if lab.chip == "dots":
        pygame.draw.rect(surf, theme.PANEL, box, border_radius=6)
        pygame.draw.rect(surf, theme.PANEL_EDGE, box, 1, border_radius=6)
        phase = int(anim * 6) % 3
        for i in range(3):
            colour = theme.TEXT if i == phase else theme.AXIS
            centre = (box.centerx - 8 + 8 * i, box.centery)
            pygame.draw.circle(surf, colour, centre, 3 if i == phase else 2)
        return
    pygame.draw.rect(surf, lab.colour, box, border_radius=4)
    pygame.draw.rect(surf, theme.BACKGROUND, box, 1, border_radius=4)
    cache_w = 16 if lab.cached else 0
    img = fonts.text(lab.text, theme.BACKGROUND, size=BADGE_SIZE, bold=True)
    surf.blit(img, (box.x + 4 + cache_w, box.y))
    if lab.cached:
        mark = pygame.Rect(box.x + 2, box.y + 2, 14, box.height - 4)
        pygame.draw.rect(surf, theme.BACKGROUND, mark, border_radius=3)
        c = fonts.text("C", theme.CACHE_MARK, size=BADGE_SIZE, bold=True)
        surf.blit(c, c.get_rect(center=mark.center))


def _draw_hidden(
    surf: pygame.Surface,
    fonts: theme.Fonts,
    hidden: int,
    bounds: pygame.Rect,
    taken: list[pygame.Rect],
) -> None:
    """One chip counting the labels with no free spot, in the first free board corner."""
    text = f"+{hidden} labels (no room)"
    img = fonts.text(text, theme.TEXT, size=BADGE_SIZE)
    box = img.get_rect().inflate(8, 0)
    for corner in ("topleft", "topright", "bottomleft", "bottomright"):
        setattr(box, corner, getattr(bounds.inflate(-4, -4), corner))
        if bounds.contains(box) and box.collidelist(taken) < 0:
            pygame.draw.rect(surf, theme.PANEL, box, border_radius=4)
            surf.blit(img, img.get_rect(center=box.center))
            fonts.drawn.add("board", box, bounds, text)
            return
