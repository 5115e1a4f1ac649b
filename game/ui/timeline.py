"""The round waterfall: the last few planning rounds side by side, one bar per agent.

Each bar runs from the agent's request to its plan's delivery, coloured by the tier
it ended on; a white tick marks the first token, a green "C" a cache hit, a red
"!" a fallback (with its cause), and a violet band the time a reasoning model spent
thinking before its first plan text. All rounds share one ms axis, so a streaming
round (staggered bar ends) and a non-streaming one (all ends together) read
differently at a glance; each round is also labelled with its mode and stream.
"""

from __future__ import annotations

import pygame

from game.match.planlog import AgentTrace, PlanningLog, RoundTrace
from game.ui import theme

MIN_COLUMN_W = 250
MAX_ROUNDS = 4
LABEL_W = 34
AXIS_H = 18
HEADER_H = 22
AXIS_STEPS_MS = (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 60_000)


def nice_step(span_ms: float, ticks: int = 4) -> float:
    """A round tick interval so that about `ticks` labels fit in `span_ms`."""
    for step in AXIS_STEPS_MS:
        if span_ms / step <= ticks:
            return float(step)
    return float(AXIS_STEPS_MS[-1])


def round_label(view: RoundTrace) -> str:
    stream = "stream" if view.stream else "no stream"
    shape = f" · {view.shape}" if view.shape else ""
    return f"round {view.round_id} · {view.mode}{shape} · {stream}"


# --- reasoning models: the thinking segment (kept apart from the rest of the bar) ---
THINKING_COLOUR = (150, 110, 220)


def thinking_span(bar: AgentTrace, end_ms: float | None) -> tuple[float, float] | None:
    """Where the bar's thinking segment runs (ms): from thinking's start to the first
    plan text, or to the bar's end while no text has come; None if it did not think."""
    if bar.thinking_ms is None:
        return None
    stop = bar.first_content_ms if bar.first_content_ms is not None else end_ms
    if stop is None:
        return None
    return bar.thinking_ms, max(bar.thinking_ms, stop)


def bar_marks(bar: AgentTrace) -> str:
    """Text marks after a bar: C for a cache hit, ! and the cause for a fallback."""
    marks = []
    if bar.from_cache:
        marks.append("C")
    if bar.cause is not None:
        marks.append(f"! {bar.cause}")
    return " ".join(marks)


class Waterfall:
    def __init__(self, fonts: theme.Fonts) -> None:
        self.fonts = fonts

    def rounds_shown(self, log: PlanningLog, width: int) -> list[RoundTrace]:
        n = max(1, min(MAX_ROUNDS, width // MIN_COLUMN_W))
        return list(log.rounds)[-n:]

    def draw(
        self, surf: pygame.Surface, rect: pygame.Rect, log: PlanningLog, now: float | None
    ) -> None:
        """`now` is the planner clock now (seconds), to grow the bars of a live round."""
        pygame.draw.rect(surf, theme.PANEL, rect)
        pygame.draw.rect(surf, theme.PANEL_EDGE, rect, 1)
        f = self.fonts
        title = f.text(
            "Planning waterfall (request -> plan, per agent)", theme.TEXT_DIM, size=theme.SMALL_SIZE
        )
        surf.blit(title, (rect.x + theme.PAD, rect.y + 4))
        inner = pygame.Rect(rect.x + theme.PAD, rect.y + 4 + title.get_height() + 2, 0, 0)
        inner.width = rect.width - 2 * theme.PAD
        inner.height = rect.bottom - inner.y - 4
        rounds = self.rounds_shown(log, inner.width)
        if not rounds:
            msg = f.text("no planning round yet", theme.TEXT_DIM)
            surf.blit(msg, msg.get_rect(center=inner.center))
            return
        live_ms = {
            r.round_id: r.ms(now) if now is not None and not r.done else None for r in rounds
        }
        span = max(max(r.end_ms(live_ms[r.round_id]) for r in rounds), 100.0) * 1.05
        gap = 14
        col_w = (inner.width - gap * (len(rounds) - 1)) // len(rounds)
        for i, view in enumerate(rounds):
            col = pygame.Rect(inner.x + i * (col_w + gap), inner.y, col_w, inner.height)
            self._draw_round(surf, col, view, span, live_ms[view.round_id])

    def _draw_round(
        self,
        surf: pygame.Surface,
        col: pygame.Rect,
        view: RoundTrace,
        span: float,
        live: float | None,
    ) -> None:
        f = self.fonts
        label = round_label(view)
        if view.cancelled:
            label += " · cancelled"
        head = f.text(label, theme.TEXT, size=theme.SMALL_SIZE, bold=True)
        surf.blit(head, (col.x, col.y), area=pygame.Rect(0, 0, col.width, head.get_height()))
        plot = pygame.Rect(col.x + LABEL_W, col.y + HEADER_H, col.width - LABEL_W, 0)
        plot.height = col.bottom - AXIS_H - plot.y
        self._draw_axis(surf, plot, span)
        bars = [view.bars[k] for k in sorted(view.bars)]
        if not bars or plot.height <= 4:
            return
        row_h = max(6, min(24, plot.height // len(bars)))
        scale = plot.width / span
        for j, bar in enumerate(bars):
            y = plot.y + j * row_h
            if y + row_h > plot.bottom + 1:
                break
            if row_h >= 15:
                lab = f.text(f"#{bar.agent_id}", theme.TEXT_DIM, size=theme.SMALL_SIZE)
                surf.blit(lab, (col.x, y + (row_h - lab.get_height()) // 2))
            self._draw_bar(surf, plot, y, row_h, bar, scale, live)

    def _draw_axis(self, surf: pygame.Surface, plot: pygame.Rect, span: float) -> None:
        y = plot.bottom + 1
        pygame.draw.line(surf, theme.AXIS, (plot.x, y), (plot.right, y), 1)
        step = nice_step(span)
        v = 0.0
        while v <= span:
            x = plot.x + round(v / span * plot.width)
            pygame.draw.line(surf, theme.AXIS, (x, plot.y), (x, y + 3), 1)
            text = "0" if v == 0 else (f"{v / 1000:g}s" if v >= 1000 else f"{v:g}ms")
            img = self.fonts.text(text, theme.TEXT_DIM, size=theme.SMALL_SIZE)
            surf.blit(img, (min(x + 2, plot.right - img.get_width()), y + 1))
            v += step

    def _draw_bar(
        self,
        surf: pygame.Surface,
        plot: pygame.Rect,
        y: int,
        row_h: int,
        bar: AgentTrace,
        scale: float,
        live: float | None,
    ) -> None:
        h = max(4, row_h - 6)
        top = y + (row_h - h) // 2
        start = bar.requested_ms if bar.requested_ms is not None else bar.plan_wait_ms
        if start is None:
            start = 0.0
        end = bar.plan_wait_ms if bar.plan_wait_ms is not None else live
        x0 = plot.x + round(start * scale)
        if end is None:  # never delivered in a finished/cancelled round
            pygame.draw.rect(surf, theme.PENDING, (x0, top, 3, h))
            return
        x1 = max(x0 + 3, plot.x + round(end * scale))
        x1 = min(x1, plot.right)
        colour = theme.tier_colour(bar.tier) if bar.plan_wait_ms is not None else theme.PENDING
        rect = pygame.Rect(x0, top, max(3, x1 - x0), h)
        pygame.draw.rect(surf, colour, rect, border_radius=2)
        span = thinking_span(bar, end)
        if span is not None:
            tx0 = max(rect.x, plot.x + round(span[0] * scale))
            tx1 = min(rect.right, plot.x + round(span[1] * scale))
            band = pygame.Rect(tx0, top + h // 3, max(2, tx1 - tx0), max(2, h // 3))
            pygame.draw.rect(surf, THINKING_COLOUR, band)
        if bar.first_token_ms is not None and bar.requested_ms is not None:
            fx = plot.x + round(bar.first_token_ms * scale)
            pygame.draw.line(surf, theme.TEXT, (fx, top - 2), (fx, top + h + 1), 2)
        if bar.predicted_ms is not None:
            # auto's expectation: a dim tick where the scheduler thought the request ends.
            px = min(plot.right - 1, plot.x + round(bar.predicted_ms * scale))
            pygame.draw.line(surf, theme.TEXT_DIM, (px, top - 3), (px, top + h + 2), 1)
        marks = bar_marks(bar)
        if marks and row_h >= 14:
            colour = theme.CACHE_MARK if bar.cause is None else theme.FALLBACK_MARK
            img = self.fonts.text(marks, colour, size=theme.SMALL_SIZE, bold=True)
            ty = y + (row_h - img.get_height()) // 2
            if rect.right + 4 + img.get_width() <= plot.right:
                surf.blit(img, (rect.right + 4, ty))
            elif rect.width >= img.get_width() + 8:
                # No room after the bar: write inside it, dark on the tier colour.
                dark = self.fonts.text(marks, theme.BACKGROUND, size=theme.SMALL_SIZE, bold=True)
                surf.blit(dark, (rect.right - 4 - dark.get_width(), ty))
            else:
                surf.blit(img, (max(plot.x, rect.x - img.get_width() - 4), ty))
