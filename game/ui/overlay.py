"""The status bar, per-agent badges, toasts and the end-of-match screen.

Everything here reads session state and draws; nothing changes the match.
Segment builders are separate from drawing so tests can check the wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pygame

from game.match.planlog import PlanningLog, key_refused_line
from game.rules.world import TICKS_PER_TURN
from game.ui import SessionLike, theme
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


def replay_position(session: SessionLike) -> str:
    """ "round k/n": k the latest round started (the same number the waterfall and the
    tier history show), n the rounds in the record (every LLM squad plans at each of
    its round ticks)."""
    total = len(session.replay_rounds()) * max(1, len(session.llm_squads))
    return f"round {session.log.latest_round}/{total}"


def objective_segments(session: SessionLike) -> list[Segment]:
    """The objective HUD: who holds it and for how many of the turns that win."""
    scenario, world = session.scenario, session.world
    if not scenario.objective:
        return []
    need = scenario.hold_turns
    holders = [(s, n) for s, n in world.hold.items() if n > 0]
    if not holders:
        return [(f"objective: nobody holds it (hold {need} turns to win)", theme.TEXT_DIM)]
    squad, n = max(holders, key=lambda h: h[1])
    colour = theme.SQUAD_COLOURS.get(squad, theme.TEXT)
    return [(f"objective: {squad} holds {n}/{need} turns", colour)]


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
        *objective_segments(session),
        (speed, t.TEXT_WARN if session.paused else t.TEXT_DIM),
        (session.backend_description, t.TEXT),
        ("H: help", t.TEXT_DIM),
    ]
    if session.opening:
        waited = (session.opening_ms or 0.0) / 1000
        line1.insert(1, (f"opening: the LLM plans its first moves ({waited:.1f} s)", t.TEXT_WARN))
    if log.key_refused is not None:
        line1.insert(1, (key_refused_line(log.key_refused), t.TEXT_BAD))
    if session.replaying:
        line1.insert(1, (f"REPLAY {replay_position(session)} ([ ] scrub)", t.TEXT_WARN))
    cache = (
        f"cache on (hit {log.cache_hit_rate:.0%}: {log.cache_hits} hit, {log.cache_misses} miss,"
        f" {log.cache_adapted} adapted, {log.cache_rejected} rejected,"
        f" {log.cache_refreshed} refreshed)"
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
    surf: pygame.Surface,
    fonts: theme.Fonts,
    segs: Sequence[Segment],
    x: int,
    y: int,
    right: int,
    bounds: pygame.Rect,
) -> int:
    """Segments left to right up to `right`; the first that does not fit is shortened at a
    word (a narrow window still names the backend) and the rest are dropped."""
    sep = fonts.text("·", theme.AXIS, size=theme.SMALL_SIZE)
    for i, (text, colour) in enumerate(segs):
        if i:
            if x + 12 + sep.get_width() >= right:
                break
            surf.blit(sep, (x + 6, y))
            x += 6 + sep.get_width() + 6
        room = right - x
        if fonts.width(text, theme.SMALL_SIZE) > room:
            text = fonts.fit(text, room, theme.SMALL_SIZE) if room >= MIN_SHORTENED_PX else ""
        if not text or text == "…":
            break
        img = fonts.text(text, colour, size=theme.SMALL_SIZE)
        surf.blit(img, (x, y))
        fonts.drawn.add("status", img.get_rect(topleft=(x, y)), bounds, text)
        x += img.get_width()
    return x


MIN_SHORTENED_PX = 60


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
    _blit_segments(surf, fonts, lines[0], x0, ys[0], label_x - 12, rect)
    surf.blit(label, (label_x, ys[0]))
    fonts.drawn.add("status", label.get_rect(topleft=(label_x, ys[0])), rect, "turn clock")
    fonts.drawn.add("status", clock, rect, "(turn clock bar)")
    pygame.draw.rect(surf, theme.BAR_BACK, clock, border_radius=3)
    fill = clock.copy()
    fill.width = round(clock.width * max(0.0, min(1.0, session.turn_clock)))
    pygame.draw.rect(surf, theme.TEXT_DIM, fill, border_radius=3)
    legend_x = rect.right - theme.PAD - _tier_legend_width(fonts, session.log)
    plans = fonts.text("plans by tier", theme.TEXT_DIM, size=theme.SMALL_SIZE)
    plans_x = legend_x - 8 - plans.get_width()
    _blit_segments(surf, fonts, lines[1], x0, ys[1], plans_x - 12, rect)
    surf.blit(plans, (plans_x, ys[1]))
    fonts.drawn.add("status", plans.get_rect(topleft=(plans_x, ys[1])), rect, "plans by tier")
    _draw_tier_legend(surf, fonts, session.log, legend_x, ys[1], rect)
    _blit_segments(surf, fonts, lines[2], x0, ys[2], rect.right - theme.PAD, rect)


def _legend_items(log: PlanningLog) -> list[str]:
    return [f"{theme.TIER_SHORT[tier]} {n}" for tier, n in tier_counts(log)]


def _tier_legend_width(fonts: theme.Fonts, log: PlanningLog) -> int:
    imgs = [
        fonts.text(s, theme.BACKGROUND, size=theme.SMALL_SIZE, bold=True)
        for s in _legend_items(log)
    ]
    return sum(i.get_width() + 12 for i in imgs) + 6 * (len(imgs) - 1)


def _draw_tier_legend(
    surf: pygame.Surface, fonts: theme.Fonts, log: PlanningLog, x: int, y: int, bounds: pygame.Rect
) -> None:
    """Plans by tier, each count in a chip of its tier colour: also the colour legend."""
    for (tier, _), text in zip(tier_counts(log), _legend_items(log), strict=True):
        img = fonts.text(text, theme.BACKGROUND, size=theme.SMALL_SIZE, bold=True)
        chip = pygame.Rect(x, y - 1, img.get_width() + 12, img.get_height() + 2)
        pygame.draw.rect(surf, theme.TIER_COLOURS[tier], chip, border_radius=4)
        surf.blit(img, (x + 6, y))
        fonts.drawn.add("status", chip, bounds, text)
        x = chip.right + 6


# ---------------------------------------------------------------- toasts
@dataclass
class Toasts:
    """Short confirmations ("Dispatch: sequential, from next round") that fade away."""

    items: list[tuple[str, float, theme.Colour]] = field(default_factory=list)

    def push(
        self,
        text: str,
        now: float,
        colour: theme.Colour = theme.TEXT,
        *,
        replaces: str | None = None,
    ) -> None:
        """Show `text`; an older toast with the same text, or starting with `replaces`
        (the same kind of news: "replay: round"), is taken down first: never two alike."""
        self.items = [
            t
            for t in self.items
            if t[0] != text and (replaces is None or not t[0].startswith(replaces))
        ]
        self.items.append((text, now + TOAST_SECONDS, colour))
        del self.items[:-TOASTS_SHOWN]

    def live(self, now: float) -> list[tuple[str, theme.Colour]]:
        self.items = [t for t in self.items if t[1] > now]
        return [(text, colour) for text, _, colour in self.items]

    def draw(self, surf: pygame.Surface, area: pygame.Rect, fonts: theme.Fonts, now: float) -> None:
        y = area.bottom - theme.PAD
        for text, colour in reversed(self.live(now)):
            text = fonts.fit(text, area.width - 24)
            img = fonts.text(text, colour)
            box = img.get_rect().inflate(20, 10)
            box.midbottom = (area.centerx, y)
            if box.top < area.top:
                break
            fonts.drawn.add("toasts", box, area, text)
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


REASONS: dict[str, str] = {
    "wiped": "{loser} squad wiped out",
    "both_wiped": "both squads wiped out",
    "objective": "{winner} held the objective for {hold} turns",
    "turn_limit": "turn limit reached ({turns} turns) with no winner",
}


def end_title(winner: str | None, player: str | None) -> str:
    """From the player's side: Victory / Defeat / Draw; spectating: who won."""
    if winner in (None, "draw"):
        return "Draw"
    if player is None:
        return f"{winner.capitalize()} wins"
    return "Victory" if winner == player else "Defeat"


def end_reason(session: SessionLike) -> str:
    world = session.world
    reason = world.win_reason
    if reason is None:
        return ""
    winner = world.winner or "draw"
    loser = next((s for s in world.hold if s != winner), "")
    text = REASONS[reason].format(
        winner=winner, loser=loser, hold=session.scenario.hold_turns, turns=world.turn_limit
    )
    return text[:1].upper() + text[1:]


def score_line(session: SessionLike) -> str:
    """Units left per squad, turns played, plans by tier."""
    world = session.world
    alive = world.alive_counts()
    units = " · ".join(f"{s} {alive.get(s, 0)} left" for s in world.hold)
    plans = " ".join(f"{theme.TIER_SHORT[tier]} {n}" for tier, n in tier_counts(session.log))
    turns = -(-world.tick // TICKS_PER_TURN)  # begun turns, as the report counts them
    return f"{units} · {turns} turn{'' if turns == 1 else 's'} · plans {plans}"


def draw_end_screen(
    surf: pygame.Surface, area: pygame.Rect, fonts: theme.Fonts, session: SessionLike
) -> None:
    dim(surf, area)
    winner = session.world.winner
    title = end_title(winner, session.player_squad)
    if winner in (None, "draw"):
        colour = theme.TEXT_WARN
    elif session.player_squad is None:
        colour = theme.SQUAD_COLOURS.get(winner, theme.TEXT)
    else:
        colour = theme.TEXT_GOOD if winner == session.player_squad else theme.TEXT_BAD
    lh = fonts.line_height()
    room_w = area.width - 60
    big = fonts.text(title, colour, size=theme.BIG_SIZE, bold=True)
    heads = [
        (fonts.fit(end_reason(session), room_w, theme.TITLE_SIZE), theme.TEXT, theme.TITLE_SIZE),
        (fonts.fit(score_line(session), room_w), theme.TEXT, theme.TEXT_SIZE),
    ]
    hint = fonts.text(fonts.fit("Enter or R: new match    Esc: quit", room_w), theme.TEXT_DIM)
    head_h = sum(fonts.line_height(size) for _, _, size in heads)
    # As many statistics as the panel holds in this window (the rest are in --report).
    room = (area.height - 20 - big.get_height() - head_h - hint.get_height() - 70) // (lh + 1)
    lines = [fonts.fit(s, room_w) for s in end_lines(session)[: max(0, room)]]
    widths = [fonts.width(s) for s in lines] + [fonts.width(t, z) for t, _, z in heads]
    w = max([big.get_width(), hint.get_width(), *widths]) + 40
    h = big.get_height() + head_h + (lh + 1) * len(lines) + hint.get_height() + 70
    panel = pygame.Rect(0, 0, min(w, area.width - 20), min(h, area.height - 20))
    panel.center = area.center
    pygame.draw.rect(surf, theme.PANEL, panel, border_radius=8)
    pygame.draw.rect(surf, theme.PANEL_EDGE, panel, 2, border_radius=8)
    y = panel.y + 16
    r = big.get_rect(midtop=(panel.centerx, y))
    surf.blit(big, r)
    fonts.drawn.add("end", r, panel, title)
    y += big.get_height() + 8
    for text, c, size in heads:
        img = fonts.text(text, c, size=size)
        r = img.get_rect(midtop=(panel.centerx, y))
        surf.blit(img, r)
        fonts.drawn.add("end", r, panel, text)
        y += fonts.line_height(size)
    y += 10
    for s in lines:
        img = fonts.text(s, theme.TEXT)
        surf.blit(img, (panel.x + 20, y))
        fonts.drawn.add("end", img.get_rect(topleft=(panel.x + 20, y)), panel, s)
        y += max(lh, img.get_height())
    r = hint.get_rect(midtop=(panel.centerx, y + 8))
    surf.blit(hint, r)
    fonts.drawn.add("end", r, panel, "hint")
