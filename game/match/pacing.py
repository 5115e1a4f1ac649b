"""Keeping LLM agents busy: interim plans and planning ahead (the match layer's switches).

Three switches the Session reads (hotkeys N and P, `--no-interim`, `--no-plan-ahead` and
`--no-opening`); they are match settings, not planner settings, because they decide
when the game asks and what an agent does meanwhile, never how the planner answers.

- Interim plans: at the start of a planning round each LLM agent keeps the rest of its
  previous plan if its first remaining step is still legal, else it gets a rule plan at
  once (source "interim"); and an LLM agent that runs out of steps at any tick gets one
  too. The LLM's plan replaces an interim plan the moment it lands.
- Planning ahead: a squad's round for the next turn is submitted before that turn starts,
  by a lead learned from its recent rounds (`LeadTimer`: the p90 over recent rounds of
  each round's p90 plan_wait of the agents the LLM was asked for, at most three quarters
  of a turn; `PRIOR_LEAD_TICKS` before anything is measured), so nearly every plan is
  in place as the turn starts. On by default.
- The opening: the first turn's rounds are planned before the world's first tick (it
  cannot be planned ahead of a turn that starts the match). On by default.

Pure: no clock, no I/O; every decision is a function of ticks and round statistics, so a
match on the virtual clock stays deterministic.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from game.match.planlog import percentile
from game.rules.actions import check_step
from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.state import Unit
from game.rules.world import TICK_SECONDS, TICKS_PER_TURN

LEAD_SAMPLES = 8
"""Recent rounds per squad the lead is learned from."""
MAX_LEAD_TICKS = TICKS_PER_TURN * 3 // 4
"""A round starts at most three quarters of a turn early: its snapshots must still be
about right (siege, gpu, 10 seeds: half a turn left act_wait p95 at 750 ms, its rounds
being longer; three quarters brought it to 0 ms, fallbacks 9.5% -> 10.4%)."""
LEAD_QUANTILE = 90.0
"""Which of the squad's recent round samples is the lead: nearly the slowest, so a round
that asks for more agents than usual still lands by its turn."""
PRIOR_LEAD_TICKS = 4
"""The lead before any of the squad's rounds has been measured (the opening round of a
warm cache may be all hits, which teach nothing): a second, a typical round's length."""
ROUND_QUANTILE = 90.0
"""Which of a round's plan_waits is its sample: nearly its slowest agent's, so nearly
every plan is in place as the turn starts. The Session gives only the agents the LLM was
asked for (a cache hit waits for nothing: counting it would shorten the lead)."""


@dataclass(frozen=True)
class Pacing:
    """What the hotkeys N and P switch; replaced whole, read by the Session every tick."""

    interim: bool = True
    """Idle LLM agents get an interim rule plan until their LLM plan lands."""
    plan_ahead: bool = True
    """A round is submitted before its turn starts, by the learned lead. On by default;
    with the situation cache off (`--no-cache-similar`) plans made ahead go stale more
    often and fail validation (siege, gpu, cold, 10 seeds: fallback 26.6% with it, 13.9%
    without), with it on they do not (docs/BENCHMARKS.md, issue 17)."""

    opening: bool = True
    """Before the first tick, the LLM squads' first rounds are planned while the world
    stands still (at most the round budget and a second's grace, in real time): every
    agent starts the match on its plan,
    as a player starts it looking at the map, instead of waiting through turn 1."""

    def with_(self, **changes: Any) -> Pacing:
        return replace(self, **changes)


def first_step_legal(unit: Unit, snap: Snapshot, grid: Grid) -> bool:
    """Whether the unit's plan has a first remaining step (the one in progress, else the
    head of its queue) that is still legal for it now."""
    if unit.active is not None:
        step = unit.active.step
    elif unit.queue:
        step = unit.queue[0]
    else:
        return False
    return check_step(step, snap, grid) is None


def idle(unit: Unit) -> bool:
    """No step in progress and nothing queued: the unit would do nothing this tick."""
    return unit.active is None and not unit.queue


class LeadTimer:
    """How early each squad's next round should start, learned from its recent rounds.

    A round's sample is the `quantile` (p90) of the plan_waits it is given (the Session
    gives those of agents the LLM was asked for, any tier they ended in: a rule plan
    given at the deadline counts); the lead is the p90 of the squad's last `samples`
    rounds (their p50 until issue 17's re-measure: the rounds after a turn of unusual
    misses then started too late). Not the median agent's wait (before issue 17): with
    cache hits in a round that median was ~0, so rounds started at their turn and most
    plans landed late. Not the very slowest agent's either: one straggler should not
    make every snapshot staler.
    """

    def __init__(self, samples: int = LEAD_SAMPLES, quantile: float = ROUND_QUANTILE) -> None:
        self._samples: dict[str, deque[float]] = {}
        self._kept = samples
        self._quantile = quantile
        self._waits: dict[int, list[float]] = {}

    def delivered(self, round_id: int, plan_wait_ms: float) -> None:
        """An agent's plan of round `round_id` landed, `plan_wait_ms` after the round began."""
        self._waits.setdefault(round_id, []).append(plan_wait_ms)

    def round_done(self, squad: str, round_id: int) -> None:
        """The round is over: its p90 plan_wait becomes the squad's newest sample."""
        sample = percentile(self._waits.pop(round_id, ()), self._quantile)
        if sample is not None:
            self.observe(squad, sample)

    def forget(self, round_id: int) -> None:
        """A round cancelled before its end teaches nothing."""
        self._waits.pop(round_id, None)

    def observe(self, squad: str, round_ms: float) -> None:
        kept = self._samples.setdefault(squad, deque(maxlen=self._kept))
        kept.append(max(0.0, round_ms))

    def lead_ms(self, squad: str) -> float | None:
        """The p90 of the squad's recent round samples, capped at `MAX_LEAD_TICKS` (None: no
        round has finished yet, so nothing is known)."""
        lead = percentile(self._samples.get(squad, ()), LEAD_QUANTILE)
        if lead is None:
            return None
        return min(lead, MAX_LEAD_TICKS * TICK_SECONDS * 1000)

    def lead_ticks(self, squad: str) -> int | None:
        """The lead in whole ticks (None: nothing learned yet): rounded up, so plans land
        at or before the turn start, but a lead under half a tick is no lead at all (the
        plans land within the turn's first tick anyway, from fresher snapshots)."""
        ms = self.lead_ms(squad)
        if ms is None:
            return None
        ticks = ms / (TICK_SECONDS * 1000)
        if ticks < 0.5:
            return 0
        return min(MAX_LEAD_TICKS, math.ceil(ticks - 1e-9))
