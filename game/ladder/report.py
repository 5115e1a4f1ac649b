"""The ladder's outputs: a Markdown table, a JSON summary, a self-contained HTML chart.

The chart is inline SVG (no scripts, fonts or links to fetch): per matchup, map and
preset, each win rate as a dot with its 95% interval, against the 50% line and the 40-60%
band a fair pairing should stay in; then median match length.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import Any

from game.ladder.cells import is_llm
from game.ladder.stats import Group, Rate
from game.rules.scenarios import SQUADS

HEAD = (
    "matchup", "map", "preset", "n", "A wins", "draws", "A win% [95%]", "blue win%",
    "red win%", "left win%", "right win%", "LLM share", "idle A/B", "stale A/B",
    "illegal A/B", "median turns", "tokens/match",
)  # fmt: skip


def label(name: str) -> str:
    return f"sim-{name}" if is_llm(name) else name


def matchup_label(matchup: str) -> str:
    a, _, b = matchup.partition(":")
    return f"{label(a)} vs {label(b)}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def table(groups: Sequence[Group]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + " --- |" * len(HEAD)]
    for g in groups:
        cells = [
            matchup_label(g.matchup),
            g.scenario,
            g.preset,
            str(g.n),
            str(g.a_rate.wins) if not g.same else "-",
            str(g.draws),
            g.a_rate.text() if not g.same else "same controller",
            g.colour_rate(SQUADS[0]).text(),
            g.colour_rate(SQUADS[1]).text(),
            g.position_rate(left=True).text(),
            g.position_rate(left=False).text(),
            _pct(g.llm_share()),
            f"{_pct(g.share('idle_ticks', 'a'))}/{_pct(g.share('idle_ticks', 'b'))}",
            f"{g.per_match('stale_steps', 'a'):.1f}/{g.per_match('stale_steps', 'b'):.1f}",
            f"{g.per_match('illegal_steps', 'a'):.1f}/{g.per_match('illegal_steps', 'b'):.1f}",
            f"{g.median_turns():g}",
            f"{g.tokens_per_match():.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def actions_line(groups: Sequence[Group]) -> str:
    total: Counter[str] = Counter()
    for g in groups:
        total.update(g.actions())
    acts = ", ".join(f"{act} {n}" for act, n in total.most_common())
    return f"actions started ({len(total)} of 15 kinds): {acts}"


def summary(groups: Sequence[Group]) -> dict[str, Any]:
    return {
        "groups": [
            {
                "matchup": g.matchup,
                "a": g.matchup.split(":")[0],
                "b": g.matchup.split(":")[1],
                "scenario": g.scenario,
                "preset": g.preset,
                "matches": g.n,
                "draws": g.draws,
                "a_win": g.a_rate.as_json(),
                "a_win_as": {s: g.a_side_rate(s).as_json() for s in SQUADS},
                "colour_win": {s: g.colour_rate(s).as_json() for s in SQUADS},
                "position_win": {
                    "left": g.position_rate(left=True).as_json(),
                    "right": g.position_rate(left=False).as_json(),
                },
                "llm_plan_share": g.llm_share(),
                "idle_share": {r: g.share("idle_ticks", r) for r in ("a", "b")},
                "stale_per_match": {r: g.per_match("stale_steps", r) for r in ("a", "b")},
                "illegal_per_match": {r: g.per_match("illegal_steps", r) for r in ("a", "b")},
                "retargeted_per_match": {r: g.per_match("retargeted_steps", r) for r in ("a", "b")},
                "median_turns": g.median_turns(),
                "tokens_per_match": g.tokens_per_match(),
                "actions": dict(g.actions().most_common()),
            }
            for g in groups
        ]
    }


# ------------------------------------------------------------------ the chart
ROW_H = 18
LEFT = 330
PLOT_W = 420
COLOURS = {
    "A": "#6d28d9",
    "blue": "#2563eb",
    "red": "#dc2626",
    "left": "#0f766e",
    "right": "#b45309",
}


def _rates(g: Group) -> list[tuple[str, str, Rate]]:
    a = label(g.matchup.split(":")[0])
    mine = [] if g.same else [("A", f"{a} wins", g.a_rate)]
    return [
        *mine,
        ("blue", "blue wins", g.colour_rate(SQUADS[0])),
        ("red", "red wins", g.colour_rate(SQUADS[1])),
        ("left", "left side wins", g.position_rate(left=True)),
        ("right", "right side wins", g.position_rate(left=False)),
    ]


def _x(p: float) -> float:
    return LEFT + p * PLOT_W


def chart(groups: Sequence[Group], title: str) -> str:
    """A self-contained HTML page: win rates with 95% intervals, and match lengths."""
    parts: list[str] = []
    y = 40
    for g in groups:
        head = f"{matchup_label(g.matchup)} · {g.scenario} · {g.preset} · {g.n} matches"
        parts.append(f'<text x="8" y="{y}" class="h">{html.escape(head)}</text>')
        y += 8
        for colour_key, name, rate in _rates(g):
            y += ROW_H
            parts.append(f'<text x="24" y="{y + 4}">{html.escape(name)}</text>')
            if rate.value is None:
                parts.append(f'<text x="{LEFT}" y="{y + 4}" class="m">no decided match</text>')
                continue
            lo, hi = rate.interval
            c = COLOURS[colour_key]
            parts.append(
                f'<line x1="{_x(lo):.1f}" x2="{_x(hi):.1f}" y1="{y}" y2="{y}" '
                f'stroke="{c}" stroke-width="3"/>'
                f'<circle cx="{_x(rate.value):.1f}" cy="{y}" r="5" fill="{c}"/>'
                f'<text x="{LEFT + PLOT_W + 10}" y="{y + 4}">{html.escape(rate.text())}</text>'
            )
        y += ROW_H
        turns = g.median_turns()
        bar = min(PLOT_W, turns / 40 * PLOT_W)
        parts.append(
            f'<text x="24" y="{y + 4}">median turns</text>'
            f'<rect x="{LEFT}" y="{y - 6}" width="{bar:.1f}" height="12" fill="#64748b"/>'
            f'<text x="{LEFT + bar + 6:.1f}" y="{y + 4}">{turns:g} (draws {g.draws})</text>'
        )
        y += 24
    height = y + 10
    grid = (
        f'<rect x="{_x(0.4):.1f}" y="24" width="{0.2 * PLOT_W:.1f}" height="{height - 30}" '
        'fill="#f1f5f9"/>'
        f'<line x1="{_x(0.5):.1f}" x2="{_x(0.5):.1f}" y1="24" y2="{height - 6}" '
        'stroke="#94a3b8" stroke-dasharray="4 3"/>'
        + "".join(
            f'<text x="{_x(p):.1f}" y="18" class="m" text-anchor="middle">{int(p * 100)}%</text>'
            for p in (0.0, 0.25, 0.5, 0.75, 1.0)
        )
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + PLOT_W + 140}" '
        f'height="{height}" font-family="sans-serif" font-size="12">'
        "<style>.h{font-weight:bold;font-size:13px}.m{fill:#64748b}</style>"
        f"{grid}{''.join(parts)}</svg>"
    )
    note = (
        "Dots: win rate among decided matches; bars: 95% Wilson interval; shaded: 40-60%; "
        "dashed: 50%. A is the first controller of the matchup; sim-* is the simulated "
        "LLM (not a model). Left/right: the map side a squad starts on (odd seeds flip the map)."
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
        f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>{svg}</body></html>\n"
    )
