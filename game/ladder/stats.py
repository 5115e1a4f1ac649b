"""Ladder statistics: Wilson intervals and the rows a table and a chart are made of.

A win rate is wins over decided matches (draws are counted apart), with its 95% Wilson
score interval: unlike the normal approximation it stays inside [0, 1] and is honest
for small counts and rates near 0 or 1.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from game.rules.scenarios import SQUADS

Z95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95% interval."""


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion; (0, 1) when n == 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Rate:
    wins: int
    decided: int

    @property
    def value(self) -> float | None:
        return self.wins / self.decided if self.decided else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.wins, self.decided)

    def text(self) -> str:
        if not self.decided:
            return "-"
        lo, hi = self.interval
        return f"{100 * self.wins / self.decided:.0f}% [{100 * lo:.0f}-{100 * hi:.0f}]"

    def as_json(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"wins": self.wins, "decided": self.decided, "rate": self.value, "ci95": [lo, hi]}


@dataclass
class Group:
    """Every match of one matchup on one scenario at one preset."""

    matchup: str
    scenario: str
    preset: str
    rows: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """A and B are the same controller: 'A' then only labels the squad that was blue
        on even match seeds, so only colours and map sides are compared."""
        a, _, b = self.matchup.partition(":")
        return a == b

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def draws(self) -> int:
        return sum(r["winner"] == "draw" for r in self.rows)

    def _rate(self, wins_of: Any) -> Rate:
        decided = [r for r in self.rows if r["winner"] != "draw"]
        return Rate(sum(1 for r in decided if r["winner"] == wins_of(r)), len(decided))

    @property
    def a_rate(self) -> Rate:
        """Controller A's win rate."""
        return self._rate(lambda r: r["a_squad"])

    def colour_rate(self, squad: str) -> Rate:
        return self._rate(lambda r: squad)

    def position_rate(self, left: bool) -> Rate:
        other = {SQUADS[0]: SQUADS[1], SQUADS[1]: SQUADS[0]}
        return self._rate(lambda r: r["left_squad"] if left else other[r["left_squad"]])

    def a_side_rate(self, squad: str) -> Rate:
        """A's win rate when playing `squad`."""
        return Rate(
            sum(1 for r in self.rows if r["a_squad"] == squad and r["winner"] == squad),
            sum(1 for r in self.rows if r["a_squad"] == squad and r["winner"] != "draw"),
        )

    def median_turns(self) -> float:
        return float(median(r["turns"] for r in self.rows)) if self.rows else 0.0

    def share(self, key: str, role: str) -> float | None:
        """Sum of a per-role count over the sum of unit ticks (e.g. idle ticks)."""
        total = sum(r["unit_ticks"][role] for r in self.rows)
        return sum(r[key][role] for r in self.rows) / total if total else None

    def per_match(self, key: str, role: str) -> float:
        return float(sum(r[key][role] for r in self.rows)) / max(1, self.n)

    def llm_share(self) -> float | None:
        shares = [r["llm_plan_share"] for r in self.rows if r["llm_plan_share"] is not None]
        return sum(shares) / len(shares) if shares else None

    def tokens_per_match(self) -> float:
        total = sum(r["prompt_tokens"] + r["completion_tokens"] for r in self.rows)
        return float(total) / max(1, self.n)

    def actions(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for r in self.rows:
            for role in ("a", "b"):
                out.update(r["actions"][role])
        return out


def groups(rows: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Rows folded by (matchup, scenario, preset), in first-seen order."""
    out: dict[tuple[str, str, str], Group] = {}
    for r in rows:
        key = (f"{r['a']}:{r['b']}", r["scenario"], r["preset"])
        out.setdefault(key, Group(*key)).rows.append(r)
    return list(out.values())
