"""The status bar, per-agent badges, toasts and the end-of-match screen.

Everything here reads session state and draws; nothing changes the match.
Segment builders are separate from drawing so tests can check the wording.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import pygame

from game.match.planlog import PlanningLog, key_refused_line
from game.rules.world import World
from game.ui import SessionLike, theme
from game.ui.board import BoardLayout
from planner.fallback import TIER_ORDER, Tier

Segment = tuple[str, theme.Colour]

TOAST_SECONDS = 2.5
TOASTS_SHOWN = 4
BADGE_SIZE = 15


# ---------------------------------------------------------------- status bar
def _timing(log: PlanningLog, name: str, last: float | None) -> str:
    p50, p95 = log.p(name, 50), log.p(name, 95)
    return f"{name} {theme.fmt_ms(last)} (p50 {theme.fmt_ms(p50)} / p95 {theme.fmt_ms(p95)})"


def pacing_segments(session: SessionLike) -> list[Segment]:
    """The match's pacing switches: "interim on" (in the interim badges' colour, so it is
    their legend too) and "ahead 400 ms" (the learned lead; "ahead on" until known)."""
    p, t = session.pacing, theme
    interim: Segment = ("interim on", t.INTERIM) if p.interim else ("interim off", t.TEXT_DIM)
    if not p.plan_ahead:
        return [interim, ("ahead off", t.TEXT_DIM)]
    lead = session.plan_ahead_ms
    return [interim, ("ahead on" if lead is None else f"ahead {t.fmt_ms(lead)}", t.TEXT)]


def status_lines(session: SessionLike) -> tuple[list[Segment], list[Segment], list[Segment]]:
    """The three lines of the status bar as (text, colour) segments: the match and
    backend; the planner switches; the last round's timings with running percentiles,
    then the match's pacing (interim plans, the plan-ahead lead learned from them)."""
    world, log, st = session.world, session.log, session.settings
    t = theme
    turn = f"turn {world.turn + 1}/{world.turn_limit}"
    speed = "PAUSED" if session.paused else f"speed {session.speed:g}x"
    line1: list[Segment] = [
        (f"{session.scenario.name}", t.TEXT),
        (turn, t.TEXT_DIM),
        (speed, t.TEXT_WARN if session.paused else t.TEXT_DIM),
        (session.backend_description, t.TEXT),
        ("H: help", t.TEXT_DIM),
    ]
    if log.key_refused is not None:
        line1.insert(1, (key_refused_line(log.key_refused), t.TEXT_BAD))
    if session.replaying:
        total = len(session.replay_rounds())
        here = session.replay_round() + 1
        line1.insert(1, (f"REPLAY round {here}/{total} ([ ] scrub)", t.TEXT_WARN))
    cache = (
        f"cache on (hit {log.cache_hit_rate:.0%}) {log.cache_hits} hit / {log.cache_misses} miss"
        f", {log.cache_adapted} adapted, {log.cache_rejected} rejected"
        if st.cache
        else "cache off"
    )
    start = "full" if st.start_tier == Tier.full_llm else "simplified"
    breaker = session.breaker_state
    line2: list[Segment] = [
        (f"mode {st.mode}", t.TEXT),
        ("stream on" if st.stream else "stream off", t.TEXT),
        (cache, t.TEXT if st.cache else t.TEXT_DIM),
        (f"breaker {breaker}", t.BREAKER_COLOURS.get(breaker, t.TEXT)),
        (f"start tier {start}", t.TEXT),
    ]
    if session.fault_injection_available:
        rate = session.fault_rate
        line2.append((f"faults {rate:.0%}", t.TEXT_BAD if rate > 0 else t.TEXT_DIM))
    last = log.last_stats
    line3: list[Segment] = [
        ("last round:", t.TEXT_DIM),
        (_timing(log, "ttft", last.ttft_ms if last else None), t.TEXT),
        (_timing(log, "ttfp", last.ttfp_ms if last else None), t.TEXT),
        (_timing(log, "time_to_all", last.time_to_all_ms if last else None), t.TEXT),
        (
            _timing(
                log, "act_wait", log.samples["act_wait"][-1] if log.samples["act_wait"] else None
            ),
            t.TEXT,
        ),
        *pacing_segments(session),
    ]
    return line1, line2, line3


def tier_counts(log: PlanningLog) -> list[tuple[Tier, int]]:
    return [(tier, log.tier_counts.get(tier.value, 0)) for tier in TIER_ORDER]


def _blit_segments(
    surf: pygame.Surface, fonts: theme.Fonts, segs: Sequence[Segment], x: int, y: int, right: int
) -> int:
    sep = fonts.text("·", theme.AXIS, size=theme.SMALL_SIZE)
    for i, (text, colour) in enumerate(segs):
        if i:
            surf.blit(sep, (x + 6, y))
            x += 6 + sep.get_width() + 6
        img = fonts.text(text, colour, size=theme.SMALL_SIZE)
        if x + img.get_width() > right:
            # Never overlap what sits at the right edge: shorten the last segment that
            # starts in room (a narrow window still names the backend), drop the rest.
            short = _shortened(fonts, text, colour, right - x, img.get_width())
            if short is not None:
                surf.blit(short, (x, y))
                x += short.get_width()
            break
        surf.blit(img, (x, y))
        x += img.get_width()
    return x


MIN_SHORTENED_PX = 60


def _shortened(
    fonts: theme.Fonts, text: str, colour: theme.Colour, room: int, width: int
) -> pygame.Surface | None:
    """`text` cut with an ellipsis to fit `room` pixels, or None if too little room."""
    if room < MIN_SHORTENED_PX:
        return None
    keep = max(1, len(text) * room // max(1, width))
    while keep > 1:
        img = fonts.text(text[:keep].rstrip() + "…", colour, size=theme.SMALL_SIZE)
        if img.get_width() <= room:
            return img
        keep -= 1
    return None


def draw_status_bar(
    surf: pygame.Surface, rect: pygame.Rect, fonts: theme.Fonts, session: SessionLike
) -> None:
    pygame.draw.rect(surf, theme.PANEL, rect)
    pygame.draw.line(surf, theme.PANEL_EDGE, rect.bottomleft, (rect.right, rect.bottom), 1)
    lines = status_lines(session)
    lh = fonts.line_height(theme.SMALL_SIZE) + 1
    y0 = rect.y + (rect.height - len(lines) * lh) // 2
    ys = [y0 + i * lh for i in range(len(lines))]
    x0 = rect.x + theme.PAD
    # Right of line 1: the turn clock; of line 2: plans by tier (also the colour legend).
    clock_w = 150
    clock = pygame.Rect(rect.right - theme.PAD - clock_w, ys[0] + 4, clock_w, lh - 8)
    label = fonts.text("turn clock", theme.TEXT_DIM, size=theme.SMALL_SIZE)
    label_x = clock.x - 8 - label.get_width()
    _blit_segments(surf, fonts, lines[0], x0, ys[0], label_x - 12)
    surf.blit(label, (label_x, ys[0]))
    pygame.draw.rect(surf, theme.BAR_BACK, clock, border_radius=3)
    fill = clock.copy()
    fill.width = round(clock.width * max(0.0, min(1.0, session.turn_clock)))
    pygame.draw.rect(surf, theme.TEXT_DIM, fill, border_radius=3)
    legend_x = rect.right - theme.PAD - _tier_legend_width(fonts, session.log)
    plans = fonts.text("plans by tier", theme.TEXT_DIM, size=theme.SMALL_SIZE)
    plans_x = legend_x - 8 - plans.get_width()
    _blit_segments(surf, fonts, lines[1], x0, ys[1], plans_x - 12)
    surf.blit(plans, (plans_x, ys[1]))
    _draw_tier_legend(surf, fonts, session.log, legend_x, ys[1])
    _blit_segments(surf, fonts, lines[2], x0, ys[2], rect.right - theme.PAD)


def _legend_items(log: PlanningLog) -> list[str]:
    return [f"{theme.TIER_SHORT[tier]} {n}" for tier, n in tier_counts(log)]


def _tier_legend_width(fonts: theme.Fonts, log: PlanningLog) -> int:
    imgs = [
        fonts.text(s, theme.BACKGROUND, size=theme.SMALL_SIZE, bold=True)
        for s in _legend_items(log)
    ]
    return sum(i.get_width() + 12 for i in imgs) + 6 * (len(imgs) - 1)


def _draw_tier_legend(
    surf: pygame.Surface, fonts: theme.Fonts, log: PlanningLog, x: int, y: int
) -> None:
    """Plans by tier, each count in a chip of its tier colour: also the colour legend."""
    for (tier, _), text in zip(tier_counts(log), _legend_items(log), strict=True):
        img = fonts.text(text, theme.BACKGROUND, size=theme.SMALL_SIZE, bold=True)
        chip = pygame.Rect(x, y - 1, img.get_width() + 12, img.get_height() + 2)
        pygame.draw.rect(surf, theme.TIER_COLOURS[tier], chip, border_radius=4)
        surf.blit(img, (x + 6, y))
        x = chip.right + 6


# ---------------------------------------------------------------- badges
def badge_text(plan_wait_ms: float | None) -> str:
    return "-" if plan_wait_ms is None else f"{plan_wait_ms:.0f}ms"


THINKING_CLEARANCE = 14
"""Pixels an interim badge sits above the tile top, clear of the thinking dots' pill."""


def draw_badges(
    surf: pygame.Surface,
    lay: BoardLayout,
    fonts: theme.Fonts,
    world: World,
    log: PlanningLog,
    shown: Collection[int],
    interim: Collection[int] = (),
) -> None:
    """Above each shown LLM agent with a plan: tier colour, cache mark, plan_wait; an
    agent running an interim rule plan says `interim` in its own colour instead, until
    its LLM plan lands.

    Agents still waiting get the board's thinking dots (an interim badge sits above
    them). A badge that would cover another is lifted above it, with a short line back
    to its unit.
    """
    placed: list[pygame.Rect] = []
    units = [world.units[uid] for uid in shown if uid in world.units]
    for u in sorted(units, key=lambda u: (-u.y, u.x)):  # bottom rows first, so lifts go up
        if not u.alive:
            continue
        state = log.agents.get(u.id)
        timing = None if state is None else state.timing
        waiting = state is not None and state.waiting
        cached = False
        if u.id in interim:
            colour, text = theme.INTERIM, theme.INTERIM_LABEL
        elif state is None or waiting or timing is None or timing.tier is None:
            continue
        else:
            colour, text = theme.TIER_COLOURS[timing.tier], badge_text(timing.plan_wait_ms)
            cached = timing.from_cache
        img = fonts.text(text, theme.BACKGROUND, size=BADGE_SIZE, bold=True)
        cache_w = 16 if cached else 0
        box = pygame.Rect(0, 0, img.get_width() + 8 + cache_w, img.get_height())
        cx, _ = lay.centre(u.x, u.y)
        anchor = (cx, lay.tile_rect(u.x, u.y).top + 1)
        box.midbottom = (cx, anchor[1] - THINKING_CLEARANCE) if waiting else anchor
        for _ in range(4):
            if box.collidelist(placed) < 0:
                break
            box.bottom = min(r.top for r in placed if r.colliderect(box)) - 1
        placed.append(box)
        if box.bottom < anchor[1] - 2 and not waiting:
            pygame.draw.line(surf, colour, (cx, box.bottom), anchor, 1)
        pygame.draw.rect(surf, colour, box, border_radius=4)
        pygame.draw.rect(surf, theme.BACKGROUND, box, 1, border_radius=4)
        surf.blit(img, (box.x + 4 + cache_w, box.y))
        if cached:
            mark = pygame.Rect(box.x + 2, box.y + 2, 14, box.height - 4)
            pygame.draw.rect(surf, theme.BACKGROUND, mark, border_radius=3)
            c = fonts.text("C", theme.CACHE_MARK, size=BADGE_SIZE, bold=True)
            surf.blit(c, c.get_rect(center=mark.center))


# ---------------------------------------------------------------- toasts
@dataclass
class Toasts:
    """Short confirmations ("Dispatch: sequential, from next round") that fade away."""

    items: list[tuple[str, float, theme.Colour]] = field(default_factory=list)

    def push(self, text: str, now: float, colour: theme.Colour = theme.TEXT) -> None:
        self.items.append((text, now + TOAST_SECONDS, colour))
        del self.items[:-TOASTS_SHOWN]

    def live(self, now: float) -> list[tuple[str, theme.Colour]]:
        self.items = [t for t in self.items if t[1] > now]
        return [(text, colour) for text, _, colour in self.items]

    def draw(self, surf: pygame.Surface, area: pygame.Rect, fonts: theme.Fonts, now: float) -> None:
        y = area.bottom - theme.PAD
        for text, colour in reversed(self.live(now)):
            img = fonts.text(text, colour)
            box = img.get_rect().inflate(20, 10)
            box.midbottom = (area.centerx, y)
            _alpha_box(surf, box, theme.TOAST_BACK)
            pygame.draw.rect(surf, theme.PANEL_EDGE, box, 1, border_radius=6)
            surf.blit(img, img.get_rect(center=box.center))
            y = box.top - 6


_alpha_cache: dict[tuple[int, int, tuple[int, int, int, int]], pygame.Surface] = {}


def _alpha_box(surf: pygame.Surface, box: pygame.Rect, rgba: tuple[int, int, int, int]) -> None:
    key = (box.width, box.height, rgba)
    s = _alpha_cache.get(key)
    if s is None:
        if len(_alpha_cache) > 64:
            _alpha_cache.clear()
        s = pygame.Surface(box.size, pygame.SRCALPHA)
        s.fill(rgba)
        _alpha_cache[key] = s
    surf.blit(s, box.topleft)


def dim(surf: pygame.Surface, area: pygame.Rect) -> None:
    _alpha_box(surf, area, theme.DIM_SCREEN)


# ---------------------------------------------------------------- end of match
def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt_value(v) for v in value) or "none"
    return str(value)


END_LINE_CHARS = 72


def end_lines(session: SessionLike) -> list[str]:
    """The end screen's statistics: the session's summary, "key: value" lines wrapped
    at commas so a long entry (latency percentiles) stays inside the panel."""
    try:
        summary = session.result_summary()
    except Exception as exc:  # a broken summary must not take the window down
        return [f"(no statistics: {exc})"]
    out: list[str] = []
    for key, value in summary.items():
        line = f"{key.replace('_', ' ')}: "
        for i, part in enumerate(_fmt_value(value).split(", ")):
            piece = part if i == 0 else ", " + part
            if len(line) + len(piece) > END_LINE_CHARS and line.strip():
                out.append(line.rstrip(", "))
                line = "    " + part
            else:
                line += piece
        out.append(line)
    return out


def draw_end_screen(
    surf: pygame.Surface, area: pygame.Rect, fonts: theme.Fonts, session: SessionLike
) -> None:
    dim(surf, area)
    winner = session.winner
    if winner == session.player_squad:
        title, colour = "Victory: blue wins", theme.TEXT_GOOD
    elif winner in (None, "draw"):
        title, colour = "Draw", theme.TEXT_WARN
    else:
        title, colour = f"Defeat: {winner} wins", theme.TEXT_BAD
    lh = fonts.line_height()
    big = fonts.text(title, colour, size=theme.BIG_SIZE, bold=True)
    hint = fonts.text("Enter or R: new match    Esc: quit", theme.TEXT_DIM)
    # As many statistics as the panel holds in this window (the rest are in --report).
    room = (area.height - 20 - big.get_height() - hint.get_height() - 60) // lh
    lines = end_lines(session)[: max(1, room)]
    w = max([big.get_width(), hint.get_width()] + [fonts.width(s) for s in lines]) + 40
    h = big.get_height() + lh * len(lines) + hint.get_height() + 60
    panel = pygame.Rect(0, 0, min(w, area.width - 20), min(h, area.height - 20))
    panel.center = area.center
    pygame.draw.rect(surf, theme.PANEL, panel, border_radius=8)
    pygame.draw.rect(surf, theme.PANEL_EDGE, panel, 2, border_radius=8)
    y = panel.y + 16
    surf.blit(big, big.get_rect(midtop=(panel.centerx, y)))
    y += big.get_height() + 14
    for s in lines:
        surf.blit(fonts.text(s, theme.TEXT), (panel.x + 20, y))
        y += lh
    surf.blit(hint, hint.get_rect(midtop=(panel.centerx, y + 8)))
