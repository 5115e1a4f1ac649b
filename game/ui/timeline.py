"""The round waterfall and the per-match chart (one panel; L switches between them).

Waterfall: the last few planning rounds side by side, one row per agent. Each row runs
from round start to the agent's plan: a thin dim line while it waits for its request to
leave, a pale segment while the server reads the prompt (prefill: request -> first
token), a violet segment while a reasoning model thinks (to its
first plan text), and a solid segment in the tier's colour
while the plan is decoded, ending where the plan landed; a pink underline marks an
agent running an interim rule plan while it waits. A green "C" marks a cache hit, a red
"!" a fallback (with its cause). All rounds share one ms axis whose tick step is chosen
so that its labels never touch; rows keep a readable height and scroll (mouse wheel)
when the squad is larger than the panel.

Chart: the whole match at a glance, one column per finished round: ttfp and
time_to_all (ms), the share of LLM plans, and fallbacks.
"""

from __future__ import annotations

from collections.abc import Collection

import pygame

from game.match.planlog import AgentTrace, PlanningLog, RoundPoint, RoundTrace
from game.ui import theme
from planner.fallback import Tier

MIN_COLUMN_W = 250
MAX_ROUNDS = 4
LABEL_W = 34
HEADER_H = 20
ROW_MIN_H = 16
ROW_MAX_H = 24
FONT = 14
"""The waterfall's text (row labels, axis, marks): small, so rows stay compact."""
AXIS_STEPS_MS = (
    10,
    20,
    25,
    50,
    100,
    200,
    250,
    500,
    1000,
    2000,
    2500,
    5000,
    10_000,
    20_000,
    30_000,
    60_000,
    120_000,
)
LABEL_GAP = 10
LEGEND: tuple[tuple[str, theme.Colour], ...] = (
    ("wait", theme.AXIS),
    ("prefill", theme.PREFILL),
    ("think", theme.THINKING),
    ("decode", theme.TIER_COLOURS[Tier.full_llm]),
    ("interim", theme.INTERIM),
)


def axis_text(v: float) -> str:
    return "0" if v == 0 else (f"{v / 1000:g}s" if v >= 1000 else f"{v:g}ms")


def nice_step(span_ms: float, ticks: int = 4) -> float:
    """A round tick interval so that about `ticks` labels fit in `span_ms`."""
    for step in AXIS_STEPS_MS:
        if span_ms / step <= ticks:
            return float(step)
    return float(AXIS_STEPS_MS[-1])


def tick_step(span_ms: float, width_px: int, label_px: int) -> float:
    """The smallest step whose labels (each `label_px` wide at most) never touch."""
    need = (label_px + LABEL_GAP) / max(1, width_px) * span_ms  # ms between labels at least
    for step in AXIS_STEPS_MS:
        if step >= need:
            return float(step)
    return float(-(-need // AXIS_STEPS_MS[-1]) * AXIS_STEPS_MS[-1])


def round_label(view: RoundTrace, number: int | None = None) -> str:
    stream = "stream" if view.stream else "no stream"
    shape = f" · {view.shape}" if view.shape else ""
    n = view.round_id if number is None else number
    return f"round {n} · {view.mode}{shape} · {stream}"


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
        self.scroll = 0
        """First agent row shown (mouse wheel over the panel scrolls)."""
        self.show_chart = False

    def rounds_shown(self, log: PlanningLog, width: int) -> list[RoundTrace]:
        n = max(1, min(MAX_ROUNDS, width // MIN_COLUMN_W))
        return list(log.rounds)[-n:]

    def scroll_by(self, rows: int) -> None:
        self.scroll = max(0, self.scroll + rows)

    def _text(
        self,
        surf: pygame.Surface,
        text: str,
        colour: theme.Colour,
        pos: tuple[int, int],
        bounds: pygame.Rect,
        *,
        size: int = FONT,
        bold: bool = False,
    ) -> pygame.Rect:
        img = self.fonts.text(text, colour, size=size, bold=bold)
        r = img.get_rect(topleft=pos)
        surf.blit(img, r)
        self.fonts.drawn.add("waterfall", r, bounds, text)
        return r

    def draw(
        self,
        surf: pygame.Surface,
        rect: pygame.Rect,
        log: PlanningLog,
        now: float | None,
        interim: Collection[int] = (),
    ) -> None:
        """`now` is the planner clock now (seconds), to grow the bars of a live round."""
        pygame.draw.rect(surf, theme.PANEL, rect)
        pygame.draw.rect(surf, theme.PANEL_EDGE, rect, 1)
        if self.show_chart:
            self._draw_chart(surf, rect, log)
            return
        f = self.fonts
        inner = rect.inflate(-2 * theme.PAD, -8)
        title = "Planning waterfall (per agent: round start -> plan)   L: match chart"
        legend_w = self._legend_width()
        room = inner.width - (legend_w + 16 if inner.width > legend_w + 200 else 0)
        self._text(
            surf,
            f.fit(title, room, theme.SMALL_SIZE),
            theme.TEXT_DIM,
            inner.topleft,
            rect,
            size=theme.SMALL_SIZE,
        )
        if room < inner.width:
            self._draw_legend(surf, inner.right - legend_w, inner.y + 2, rect)
        top = inner.y + f.line_height(theme.SMALL_SIZE) + 2
        body = pygame.Rect(inner.x, top, inner.width, inner.bottom - top)
        rounds = self.rounds_shown(log, body.width)
        if not rounds:
            msg = f.text("no planning round yet", theme.TEXT_DIM)
            r = msg.get_rect(center=body.center)
            surf.blit(msg, r)
            f.drawn.add("waterfall", r, rect, "no planning round yet")
            return
        live_ms = {
            r.round_id: r.ms(now) if now is not None and not r.done else None for r in rounds
        }
        span = max(max(r.end_ms(live_ms[r.round_id]) for r in rounds), 100.0) * 1.05
        gap = 14
        col_w = (body.width - gap * (len(rounds) - 1)) // len(rounds)
        for i, view in enumerate(rounds):
            col = pygame.Rect(body.x + i * (col_w + gap), body.y, col_w, body.height)
            number = log.round_number(view.round_id)
            self._draw_round(surf, col, view, number, span, live_ms[view.round_id], interim)

    def _legend_width(self) -> int:
        return sum(self.fonts.width(name, FONT) + 16 for name, _ in LEGEND)

    def _draw_legend(self, surf: pygame.Surface, x: int, y: int, bounds: pygame.Rect) -> None:
        for name, colour in LEGEND:
            pygame.draw.rect(surf, colour, (x, y + 5, 8, 8))
            r = self._text(surf, name, theme.TEXT_DIM, (x + 11, y), bounds)
            x = r.right + 5

    def _draw_round(
        self,
        surf: pygame.Surface,
        col: pygame.Rect,
        view: RoundTrace,
        number: int,
        span: float,
        live: float | None,
        interim: Collection[int],
    ) -> None:
        f = self.fonts
        label = round_label(view, number) + (" · cancelled" if view.cancelled else "")
        bars = [view.bars[k] for k in sorted(view.bars)]
        lh = f.line_height(FONT)
        row_min = max(ROW_MIN_H, lh)  # a row is never lower than its label
        plot = pygame.Rect(col.x + LABEL_W, col.y + HEADER_H, col.width - LABEL_W, 0)
        plot.height = col.bottom - (lh + 3) - plot.y
        rows = max(1, plot.height // row_min)
        first = min(self.scroll, max(0, len(bars) - rows))
        shown = bars[first : first + rows]
        if len(shown) < len(bars):  # which rows, right after the round's number
            rows_text = f"rows {first + 1}-{first + len(shown)}/{len(bars)}"
            label = label.replace(" · ", f" · {rows_text} · ", 1)
        self._text(surf, f.fit(label, col.width, FONT, bold=True), theme.TEXT, col.topleft, col,
                   bold=True)  # fmt: skip
        self._draw_axis(surf, plot, span, col)
        if not shown or plot.height <= 4:
            return
        row_h = max(row_min, min(ROW_MAX_H, plot.height // len(shown)))
        scale = plot.width / span
        for j, bar in enumerate(shown):
            y = plot.y + j * row_h
            self._text(
                surf,
                f"#{bar.agent_id}",
                theme.TEXT_DIM,
                (col.x, y + (row_h - lh) // 2),
                col,
            )
            self._draw_bar(surf, plot, col, y, row_h, bar, scale, live, bar.agent_id in interim)

    def _draw_axis(
        self, surf: pygame.Surface, plot: pygame.Rect, span: float, bounds: pygame.Rect
    ) -> None:
        y = plot.bottom + 1
        pygame.draw.line(surf, theme.AXIS, (plot.x, y), (plot.right, y), 1)
        widest = max(self.fonts.width(axis_text(v), FONT) for v in (span, span / 3, 999.0))
        step = tick_step(span, plot.width, widest)
        v = 0.0
        last_right = plot.x - LABEL_GAP
        while v <= span:
            x = plot.x + round(v / span * plot.width)
            pygame.draw.line(surf, theme.AXIS, (x, plot.y), (x, y + 3), 1)
            text = axis_text(v)
            w = self.fonts.width(text, FONT)
            tx = min(x + 2, plot.right - w)
            if tx >= last_right + LABEL_GAP // 2:
                last_right = self._text(surf, text, theme.TEXT_DIM, (tx, y + 1), bounds).right
            v += step

    def _draw_bar(
        self,
        surf: pygame.Surface,
        plot: pygame.Rect,
        col: pygame.Rect,
        y: int,
        row_h: int,
        bar: AgentTrace,
        scale: float,
        live: float | None,
        interim: bool,
    ) -> None:
        h = max(4, row_h - 6)
        top = y + (row_h - h) // 2

        def px(ms: float) -> int:
            return min(plot.right, plot.x + round(ms * scale))

        requested = bar.requested_ms
        end = bar.plan_wait_ms if bar.plan_wait_ms is not None else live
        start = requested if requested is not None else (end if end is not None else 0.0)
        mid = top + h // 2
        # waiting: round start -> its request leaves (or the plan, for rule tiers)
        if start > 0:
            pygame.draw.line(surf, theme.AXIS, (plot.x, mid), (px(start), mid), 1)
        if interim and bar.plan_wait_ms is None:
            pygame.draw.line(surf, theme.INTERIM, (plot.x, top + h), (px(end or start), top + h), 2)
        if end is None:  # never delivered in a finished/cancelled round
            pygame.draw.rect(surf, theme.PENDING, (px(start), top, 3, h))
            return
        colour = theme.tier_colour(bar.tier) if bar.plan_wait_ms is not None else theme.PENDING
        first = bar.first_token_ms if requested is not None else None
        decode_from = start
        if first is not None and first > start:
            pygame.draw.rect(
                surf, theme.PREFILL, (px(start), top + 2, px(first) - px(start), h - 4)
            )
            decode_from = first
        thinking = thinking_span(bar, end)
        if thinking is not None:
            t0, t1 = thinking
            pygame.draw.rect(
                surf, theme.THINKING, (px(t0), top + 1, max(2, px(t1) - px(t0)), h - 2)
            )
            decode_from = max(decode_from, t1)
        x0 = px(decode_from)
        rect = pygame.Rect(x0, top, max(3, px(end) - x0), h)
        pygame.draw.rect(surf, colour, rect, border_radius=2)
        if first is not None:
            fx = px(first)
            pygame.draw.line(surf, theme.TEXT, (fx, top - 2), (fx, top + h + 1), 2)
        if bar.predicted_ms is not None:
            # auto's expectation: a dim tick where the scheduler thought the request ends.
            p = min(plot.right - 1, px(bar.predicted_ms))
            pygame.draw.line(surf, theme.TEXT_DIM, (p, top - 3), (p, top + h + 2), 1)
        marks = bar_marks(bar)
        if marks:
            self._draw_marks(surf, col, rect, y, row_h, marks, bar.cause is None)

    def _draw_marks(
        self,
        surf: pygame.Surface,
        col: pygame.Rect,
        rect: pygame.Rect,
        y: int,
        row_h: int,
        marks: str,
        cache_only: bool,
    ) -> None:
        """After the bar if there is room, else shortened to fit there ("! dead…", "!")."""
        f = self.fonts
        colour = theme.CACHE_MARK if cache_only else theme.FALLBACK_MARK
        ty = y + (row_h - f.line_height(FONT)) // 2
        room = col.right - rect.right - 4
        text = f.fit(marks, room, FONT, bold=True)
        if text and text != "…":
            self._text(surf, text, colour, (rect.right + 4, ty), col, bold=True)
            return
        short = marks.split(" ")[0]  # "C" or "!"
        w = f.width(short, FONT, bold=True)
        if rect.width >= w + 6:  # inside the bar, dark on the tier colour
            self._text(surf, short, theme.BACKGROUND, (rect.right - 3 - w, ty), col, bold=True)

    # ------------------------------------------------------------ the match chart
    def _draw_chart(self, surf: pygame.Surface, rect: pygame.Rect, log: PlanningLog) -> None:
        f = self.fonts
        inner = rect.inflate(-2 * theme.PAD, -8)
        points = list(log.series)
        title = f"Match chart: {len(points)} rounds   L: waterfall"
        self._text(
            surf, f.fit(title, inner.width // 2, theme.SMALL_SIZE), theme.TEXT_DIM,
            inner.topleft, rect, size=theme.SMALL_SIZE,
        )  # fmt: skip
        legend = [
            ("ttfp", theme.CHART_TTFP),
            ("time_to_all", theme.CHART_ALL),
            ("LLM share", theme.TIER_COLOURS[Tier.full_llm]),
            ("fallbacks", theme.FALLBACK_MARK),
        ]
        x = inner.right - sum(f.width(n, FONT) + 16 for n, _ in legend)
        for name, colour in legend:
            pygame.draw.rect(surf, colour, (x, inner.y + 5, 8, 8))
            x = self._text(surf, name, theme.TEXT_DIM, (x + 11, inner.y), rect).right + 5
        top = inner.y + f.line_height(theme.SMALL_SIZE) + 4
        axis_h = f.line_height(FONT) + 3
        plot = pygame.Rect(inner.x + 44, top, inner.width - 44, inner.bottom - top - axis_h)
        if not points or plot.height < 20 or plot.width < 40:
            self._text(surf, "no finished round yet", theme.TEXT_DIM, (plot.x, plot.y), rect)
            return
        self._draw_chart_body(surf, plot, points, rect)

    def _draw_chart_body(
        self, surf: pygame.Surface, plot: pygame.Rect, points: list[RoundPoint], bounds: pygame.Rect
    ) -> None:
        n = len(points)
        top_ms = max([p.time_to_all_ms or 0.0 for p in points] + [p.ttfp_ms or 0.0 for p in points])
        top_ms = max(top_ms, 100.0) * 1.1
        lat = pygame.Rect(plot.x, plot.y, plot.width, plot.height * 2 // 3)
        share = pygame.Rect(plot.x, lat.bottom + 4, plot.width, plot.bottom - lat.bottom - 4)
        pygame.draw.rect(surf, theme.BACKGROUND, lat)
        pygame.draw.rect(surf, theme.BACKGROUND, share)
        self._text(surf, axis_text(round(top_ms / 1.1)), theme.TEXT_DIM,
                   (plot.x - 42, lat.y), bounds)  # fmt: skip
        self._text(surf, "LLM %", theme.TEXT_DIM, (plot.x - 42, share.y), bounds)
        col_w = plot.width / n

        def cx(i: int) -> int:
            return plot.x + round((i + 0.5) * col_w)

        for attr, colour in (("ttfp_ms", theme.CHART_TTFP), ("time_to_all_ms", theme.CHART_ALL)):
            line = [
                (cx(i), lat.bottom - round(v / top_ms * lat.height))
                for i, p in enumerate(points)
                if (v := getattr(p, attr)) is not None
            ]
            if len(line) > 1:
                pygame.draw.lines(surf, colour, False, line, 2)
            for pt in line if n <= 60 else ():
                pygame.draw.circle(surf, colour, pt, 2)
        bar_w = max(1, int(col_w) - 2)
        for i, p in enumerate(points):
            if p.llm_share is not None:
                hgt = round(p.llm_share * share.height)
                r = pygame.Rect(0, share.bottom - hgt, bar_w, hgt)
                r.centerx = cx(i)
                pygame.draw.rect(surf, theme.TIER_COLOURS[Tier.full_llm], r)
            if p.fallbacks:
                dot = min(share.height // 2, 2 + p.fallbacks)
                pygame.draw.circle(surf, theme.FALLBACK_MARK, (cx(i), share.y + dot), dot)
        # round numbers along the bottom, as many as fit without touching
        widest = self.fonts.width(str(points[-1].number), FONT) + LABEL_GAP
        every = max(1, -(-widest // max(1, int(col_w))))
        last_right = plot.x - LABEL_GAP
        for i in range(0, n, every):
            text = str(points[i].number)
            w = self.fonts.width(text, FONT)
            tx = max(plot.x, min(cx(i) - w // 2, plot.right - w))
            if tx >= last_right + LABEL_GAP // 2:
                last_right = self._text(
                    surf, text, theme.TEXT_DIM, (tx, plot.bottom + 2), bounds
                ).right
