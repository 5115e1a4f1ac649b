"""The help overlay (H or F1): every control, in one place.

`CONTROLS` is the single list the overlay shows; keep it in step with `input.py`
(a test checks that every bound key appears here).
"""

from __future__ import annotations

import pygame

from game.ui import theme
from game.ui.overlay import dim

CONTROLS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Planner (each switch takes effect from the next round)",
        (
            ("B", "dispatch: batched / sequential / parallel"),
            ("S", "streaming on / off"),
            ("K", "prompt cache on / off"),
            ("T", "start tier: simplified / full"),
            ("F", "fault injection 0% / 20% / 50% / 100% (sim)"),
        ),
    ),
    (
        "View",
        (
            ("Tab", "inspect the next LLM agent (or click one)"),
            ("I / W", "show / hide inspector / waterfall"),
            ("O", "reveal all units (fog of war off)"),
            ("Space", "pause"),
            ("+ / -", "game speed"),
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


def draw_help(surf: pygame.Surface, area: pygame.Rect, fonts: theme.Fonts) -> None:
    dim(surf, area)
    lh = fonts.line_height()
    rows = sum(len(items) + 2 for _, items in CONTROLS)
    key_w = max(fonts.width(k) for _, items in CONTROLS for k, _ in items) + 24
    text_w = max(fonts.width(d) for _, items in CONTROLS for _, d in items)
    head_w = max(fonts.width(h) for h, _ in CONTROLS)
    panel = pygame.Rect(0, 0, max(key_w + text_w, head_w) + 40, rows * lh + 60)
    panel.width = min(panel.width, area.width - 10)
    panel.height = min(panel.height, area.height - 10)
    panel.center = area.center
    pygame.draw.rect(surf, theme.PANEL, panel, border_radius=8)
    pygame.draw.rect(surf, theme.PANEL_EDGE, panel, 2, border_radius=8)
    x, y = panel.x + 20, panel.y + 14
    title = fonts.text("Controls", theme.TEXT, size=theme.TITLE_SIZE, bold=True)
    surf.blit(title, (x, y))
    y += title.get_height() + 6
    for heading, items in CONTROLS:
        surf.blit(fonts.text(heading, theme.TEXT_WARN, bold=True), (x, y))
        y += lh + 2
        for key, desc in items:
            surf.blit(fonts.text(key, theme.TEXT, bold=True), (x + 8, y))
            surf.blit(fonts.text(desc, theme.TEXT_DIM), (x + key_w, y))
            y += lh
        y += lh // 2
