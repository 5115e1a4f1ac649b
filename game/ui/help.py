"""The help overlay (H or F1): every control, in one place.

`CONTROLS` is the single list the overlay shows; keep it in step with `input.py`
(tests/test_ui_controls.py checks that every bound letter key appears here).
"""

from __future__ import annotations

import pygame

from game.ui import theme
from game.ui.overlay import dim

Sections = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

CONTROLS: Sections = (
    (
        "Planner (each switch takes effect from the next round)",
        (
            ("B", "dispatch: batched / sequential / parallel"),
            ("S", "streaming on / off"),
            ("K", "prompt cache on / off"),
            ("T", "start tier: simplified / full"),
            ("F", "fault injection 0% / 20% / 50% / 100% (sim)"),
            ("N", "interim plans on / off (no idle agents)"),
            ("P", "plan ahead on / off (rounds start before the turn)"),
        ),
    ),
    (
        "View",
        (
            ("Tab", "inspect the next LLM agent (or click one)"),
            ("I / W", "show / hide inspector / waterfall"),
            ("L", "match chart (ttfp, time_to_all, LLM share, fallbacks)"),
            ("Wheel", "scroll the waterfall's agent rows"),
            ("O", "fog of war: only what blue sees (off: debug view)"),
            ("Space", "pause"),
            ("+ / -", "game speed"),
            ("[ / ]", "replay: previous / next round"),
            (".", "step one tick (paused)"),
            ("F12", "screenshot to ./screenshots/"),
            ("H / F1", "this help"),
            ("Esc", "quit"),
        ),
    ),
    (
        "Your squad (blue)",
        (
            ("Left click / drag", "select units (Shift adds)"),
            ("Right click", "move to tile / attack enemy"),
            ("R", "reload"),
            ("C", "take cover at nearest cover"),
            ("G / E", "throw smoke / explosive at cursor"),
            ("A", "area fire at cursor"),
            ("M / D", "mark / distract enemy at cursor"),
            ("U", "retreat from nearest enemy"),
            ("X / V", "scan / heal"),
            ("Q / Z", "wait / block"),
            ("Enter", "new match (when it is over)"),
        ),
    ),
)


def _column_size(fonts: theme.Fonts, sections: Sections, size: int) -> tuple[int, int, int]:
    """(key column width, total width, height) of one column of sections."""
    lh = fonts.line_height(size)
    key_w = max(fonts.width(k, size, bold=True) for _, items in sections for k, _ in items)
    text_w = max(fonts.width(d, size) for _, items in sections for _, d in items)
    head_w = max(fonts.width(h, size, bold=True) for h, _ in sections)
    rows = sum(len(items) + 1 for _, items in sections)
    height = rows * lh + (len(sections) - 1) * (lh // 2) + 2 * len(sections)
    return key_w + 24, max(key_w + 24 + text_w, head_w), height


def _draw_column(
    surf: pygame.Surface,
    fonts: theme.Fonts,
    sections: Sections,
    at: tuple[int, int],
    key_w: int,
    size: int,
    panel: pygame.Rect,
) -> None:
    x, y = at
    lh = fonts.line_height(size)

    def put(text: str, colour: theme.Colour, pos: tuple[int, int], bold: bool) -> None:
        room = panel.right - 10 - pos[0]
        text = fonts.fit(text, room, size, bold=bold)
        img = fonts.text(text, colour, size=size, bold=bold)
        r = img.get_rect(topleft=pos)
        if text and panel.contains(r):
            surf.blit(img, r)
            fonts.drawn.add("help", r, panel, text)

    for heading, items in sections:
        put(heading, theme.TEXT_WARN, (x, y), True)
        y += lh + 2
        for key, desc in items:
            put(key, theme.TEXT, (x + 8, y), True)
            put(desc, theme.TEXT_DIM, (x + key_w, y), False)
            y += lh
        y += lh // 2


def draw_help(surf: pygame.Surface, area: pygame.Rect, fonts: theme.Fonts) -> None:
    """Two columns (planner and view | your squad) in a panel centred on `area`, in the
    largest text size whose columns fit (descriptions shortened if still too wide)."""
    dim(surf, area)
    columns = (CONTROLS[:2], CONTROLS[2:])
    gap = 40
    title = fonts.text("Controls", theme.TEXT, size=theme.TITLE_SIZE, bold=True)
    for size in (theme.TEXT_SIZE, theme.SMALL_SIZE, HELP_MIN_SIZE):
        sizes = [_column_size(fonts, c, size) for c in columns]
        width = sum(w for _, w, _ in sizes) + gap + 40
        height = title.get_height() + 10 + max(h for _, _, h in sizes) + 30
        if width <= area.width - 10 and height <= area.height - 10:
            break
    panel = pygame.Rect(0, 0, min(width, area.width - 10), min(height, area.height - 10))
    panel.center = area.center
    pygame.draw.rect(surf, theme.PANEL, panel, border_radius=8)
    pygame.draw.rect(surf, theme.PANEL_EDGE, panel, 2, border_radius=8)
    x, y = panel.x + 20, panel.y + 14
    surf.blit(title, (x, y))
    y += title.get_height() + 10
    for sections, (key_w, col_w, _) in zip(columns, sizes, strict=True):
        _draw_column(surf, fonts, sections, (x, y), key_w, size, panel)
        x += col_w + gap


HELP_MIN_SIZE = 14
