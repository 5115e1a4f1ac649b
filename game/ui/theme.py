"""Colours, sizes and fonts: every visual constant lives here, defined once.

`TIER_COLOURS` is the single source of a tier's colour: the unit badges, the
waterfall bars, the status bar counts and the inspector's history all read it.
`Fonts` owns every `pygame.font.Font` and caches rendered text by content, so the
frame loop never creates a font and re-renders a string only when it changes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

import pygame

from game.ui.drawn import DrawnRects
from planner.fallback import Tier

Colour = tuple[int, int, int]

# ---------------------------------------------------------------- tiers (one colour each)
TIER_COLOURS: Final[dict[Tier, Colour]] = {
    Tier.full_llm: (168, 110, 255),  # violet
    Tier.simplified_llm: (40, 200, 190),  # cyan / blue-green
    Tier.heuristic: (255, 178, 40),  # amber
    Tier.emergency: (240, 60, 60),  # red
}
TIER_SHORT: Final[dict[Tier, str]] = {
    Tier.full_llm: "FULL",
    Tier.simplified_llm: "SIMP",
    Tier.heuristic: "HEUR",
    Tier.emergency: "EMRG",
}
"""Short names for badges and legends (colour is never the only cue)."""
TIER_LABEL: Final[dict[Tier, str]] = {
    Tier.full_llm: "full LLM",
    Tier.simplified_llm: "simplified LLM",
    Tier.heuristic: "heuristic",
    Tier.emergency: "emergency",
}
INTERIM: Final[Colour] = (236, 128, 196)
"""An LLM agent running an interim rule plan until its own lands (pink: no tier's hue)."""
INTERIM_LABEL: Final = "interim"
PENDING: Final[Colour] = (110, 116, 128)
"""A bar or badge whose plan has not arrived yet."""
PREFILL: Final[Colour] = (120, 128, 150)
"""Waterfall: the server reading the prompt (request -> first token)."""
THINKING: Final[Colour] = (200, 170, 90)
"""Waterfall: a reasoning model thinking before it writes the plan."""
CHART_TTFP: Final[Colour] = (120, 200, 255)
CHART_ALL: Final[Colour] = (255, 220, 120)
CACHE_MARK: Final[Colour] = (120, 255, 140)
"""The "served from the prompt cache" mark (a green C / tick)."""
FALLBACK_MARK: Final[Colour] = (255, 90, 90)

# ---------------------------------------------------------------- squads and terrain
SQUAD_COLOURS: Final[dict[str, Colour]] = {"blue": (70, 140, 255), "red": (225, 85, 70)}
SQUAD_DARK: Final[dict[str, Colour]] = {"blue": (20, 45, 100), "red": (90, 25, 20)}
TERRAIN_COLOURS: Final[dict[str, Colour]] = {
    "floor": (62, 68, 60),
    "wall": (126, 118, 108),
    "cover": (84, 108, 62),
    "water": (38, 78, 128),
    "objective": (112, 98, 44),
}
WALL_EDGE: Final[Colour] = (86, 80, 74)
COVER_BAG: Final[Colour] = (150, 140, 96)
WATER_WAVE: Final[Colour] = (70, 118, 170)
OBJECTIVE_EDGE: Final[Colour] = (230, 200, 80)
GRID_LINE: Final[Colour] = (54, 59, 52)
FOG_ALPHA: Final = 120
"""How much unseen tiles are darkened (0..255)."""
SMOKE: Final[tuple[int, int, int, int]] = (200, 200, 205, 150)

# ---------------------------------------------------------------- effects
SHOT_HIT: Final[Colour] = (255, 240, 120)
SHOT_MISS: Final[Colour] = (170, 170, 170)
EXPLOSION: Final[Colour] = (255, 140, 30)
HEAL: Final[Colour] = (90, 255, 120)
DEATH: Final[Colour] = (240, 240, 240)
SELECTED: Final[Colour] = (255, 255, 255)
PATH: Final[Colour] = (255, 255, 255)
PLANNED_PATH: Final[dict[str, Colour]] = {"red": (255, 150, 135), "blue": (150, 190, 255)}
"""An LLM agent's planned path (the debug view): a light tint of its squad's colour."""
HP_GOOD: Final[Colour] = (80, 220, 90)
HP_LOW: Final[Colour] = (240, 70, 60)
AMMO: Final[Colour] = (240, 200, 70)
BAR_BACK: Final[Colour] = (25, 25, 25)

# ---------------------------------------------------------------- panels and text
BACKGROUND: Final[Colour] = (18, 20, 24)
PANEL: Final[Colour] = (28, 31, 37)
PANEL_EDGE: Final[Colour] = (60, 66, 78)
TEXT: Final[Colour] = (232, 234, 238)
TEXT_DIM: Final[Colour] = (160, 166, 178)
TEXT_WARN: Final[Colour] = (255, 200, 80)
TEXT_BAD: Final[Colour] = (255, 110, 100)
TEXT_GOOD: Final[Colour] = (120, 230, 140)
AXIS: Final[Colour] = (90, 96, 110)
TOAST_BACK: Final[tuple[int, int, int, int]] = (10, 12, 16, 225)
DIM_SCREEN: Final[tuple[int, int, int, int]] = (0, 0, 0, 170)

BREAKER_COLOURS: Final[dict[str, Colour]] = {
    "closed": TEXT_GOOD,
    "half_open": TEXT_WARN,
    "open": TEXT_BAD,
}

# ---------------------------------------------------------------- sizes (px)
TEXT_SIZE: Final = 18
"""Body text size; 16 is the smallest used anywhere (badges use 15 bold)."""
SMALL_SIZE: Final = 16
TITLE_SIZE: Final = 24
BIG_SIZE: Final = 44
STATUS_BAR_H: Final = 66
INSPECTOR_W: Final = 420
PAD: Final = 8

TEXT_CACHE_MAX: Final = 1500
TALL_SAMPLE: Final = "(|)[_]{gjÅ}"
"""Glyphs that reach highest and lowest: rendered text is as tall as these at most."""

_SANS: Final = "dejavusans,freesans,liberationsans,arial,helvetica"
_MONO: Final = "dejavusansmono,liberationmono,freemono,couriernew,monospace"


class Fonts:
    """All fonts, created once; `text()` returns a cached surface per (string, style)."""

    def __init__(self) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self._fonts: dict[tuple[str, int, bool], pygame.font.Font] = {}
        self._cache: OrderedDict[tuple[str, str, int, bool, Colour], pygame.Surface] = OrderedDict()
        self.drawn = DrawnRects()
        """Where this frame's text and labels went (cleared per frame; for layout tests)."""

    def font(
        self, kind: str = "sans", size: int = TEXT_SIZE, bold: bool = False
    ) -> pygame.font.Font:
        key = (kind, size, bold)
        f = self._fonts.get(key)
        if f is None:
            # SysFont falls back to pygame's bundled font when none of the names exist.
            f = pygame.font.SysFont(_MONO if kind == "mono" else _SANS, size, bold=bold)
            self._fonts[key] = f
        return f

    def text(
        self,
        s: str,
        colour: Colour = TEXT,
        *,
        size: int = TEXT_SIZE,
        kind: str = "sans",
        bold: bool = False,
    ) -> pygame.Surface:
        key = (s, kind, size, bold, colour)
        surf = self._cache.get(key)
        if surf is not None:
            self._cache.move_to_end(key)
            return surf
        surf = self.font(kind, size, bold).render(s, True, colour)
        self._cache[key] = surf
        if len(self._cache) > TEXT_CACHE_MAX:
            self._cache.popitem(last=False)
        return surf

    def line_height(self, size: int = TEXT_SIZE, kind: str = "sans") -> int:
        """Rows of text this far apart never overlap (some fonts render taller than their
        line spacing)."""
        f = self.font(kind, size)
        return int(max(f.get_linesize(), f.get_height(), f.size(TALL_SAMPLE)[1]))

    def width(self, s: str, size: int = TEXT_SIZE, kind: str = "sans", bold: bool = False) -> int:
        return int(self.font(kind, size, bold).size(s)[0])

    def fit(
        self, s: str, room: int, size: int = TEXT_SIZE, kind: str = "sans", bold: bool = False
    ) -> str:
        """`s` if it fits in `room` px; else cut at a word boundary with an ellipsis (mid-word
        only when the first word alone is too long); "" when not even "…" fits."""
        if self.width(s, size, kind, bold) <= room:
            return s
        words = s.split(" ")
        for n in range(len(words) - 1, 0, -1):
            short = " ".join(words[:n]).rstrip(" ,;:·-(") + "…"
            if self.width(short, size, kind, bold) <= room:
                return short
        for n in range(len(s) - 1, 0, -1):
            short = s[:n].rstrip() + "…"
            if self.width(short, size, kind, bold) <= room:
                return short
        return "…" if self.width("…", size, kind, bold) <= room else ""


def tier_colour(tier: Tier | None) -> Colour:
    return PENDING if tier is None else TIER_COLOURS[tier]


def fmt_ms(value: float | None) -> str:
    """Milliseconds for display: "412 ms", "1.84 s", or "-" when unknown."""
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"
