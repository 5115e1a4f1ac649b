"""Tiers: order, tools, the heuristic tier, the emergency floor, every cause representable."""

from __future__ import annotations

import random
from typing import get_args

import pytest

import game.rules.heuristic
from game.rules.actions import Illegal
from game.rules.grid import Grid
from game.rules.steps import FULL_TOOLS, SIMPLIFIED_TOOLS, Attack, MoveTo, Scan, Step, Wait
from planner.errors import CAUSES, Cause
from planner.fallback import (
    EMERGENCY_PLAN,
    TIER_TOOLS,
    AgentOutcome,
    Tier,
    emergency_outcome,
    heuristic_plan,
    is_llm_tier,
    next_llm_tier,
    next_tier,
)
from planner.validate import DroppedStep
from tests.factories import snapshot, unit

GRID = Grid.from_strings(["........", "........", "........"])


SNAP = snapshot(
    unit(1, 0, 1, ammo=4),
    width=8,
    height=3,
    enemies=(unit(9, 4, 1, squad="blue", hp=50, ammo=4),),
    objective=(6, 1),
)


def test_tier_order_and_tools() -> None:
    assert [t.value for t in Tier] == ["full_llm", "simplified_llm", "heuristic", "emergency"]
    simplified = SIMPLIFIED_TOOLS | {"Heal", "ThrowExplosive"}
    assert {Tier.full_llm: FULL_TOOLS, Tier.simplified_llm: simplified} == TIER_TOOLS
    assert next_llm_tier(Tier.full_llm) == Tier.simplified_llm
    assert next_llm_tier(Tier.simplified_llm) is None
    assert [next_tier(t) for t in Tier] == [
        Tier.simplified_llm,
        Tier.heuristic,
        Tier.emergency,
        Tier.emergency,
    ]
    assert [is_llm_tier(t) for t in Tier] == [True, True, False, False]


def test_heuristic_tier_plans_from_the_snapshot() -> None:
    steps, tier, cause = heuristic_plan(SNAP, random.Random(1))
    assert tier == Tier.heuristic and cause is None
    assert 1 <= len(steps) <= 8
    assert any(isinstance(s, Attack) and s.target_id == 9 for s in steps)


def test_heuristic_steps_are_validated_when_a_grid_is_given() -> None:
    steps, tier, _ = heuristic_plan(SNAP, random.Random(1), GRID)
    assert tier == Tier.heuristic and steps


@pytest.mark.parametrize(
    "bad",
    [
        lambda s, r: 1 / 0,
        lambda s, r: [],
        lambda s, r: None,
        lambda s, r: ["Scan"],
        lambda s, r: [MoveTo(x=99, y=99)],  # illegal on the grid: nothing left
    ],
)
def test_heuristic_failure_falls_to_the_emergency_plan(
    monkeypatch: pytest.MonkeyPatch, bad: object
) -> None:
    monkeypatch.setattr(game.rules.heuristic, "plan", bad)
    steps, tier, cause = heuristic_plan(SNAP, random.Random(1), GRID)
    assert (steps, tier, cause) == (EMERGENCY_PLAN, Tier.emergency, "heuristic_error")
    assert steps == (Scan(), Wait())


def test_every_cause_is_representable_on_every_tier() -> None:
    causes: tuple[Cause, ...] = get_args(Cause)
    assert set(causes) == set(CAUSES)
    for cause in causes:
        for tier in Tier:
            out = AgentOutcome(3, EMERGENCY_PLAN, tier, cause)
            assert out.cause == cause and out.tier == tier
        assert emergency_outcome(3, cause) == AgentOutcome(
            3, (Scan(), Wait()), Tier.emergency, cause
        )


def test_outcome_records_cache_partial_and_dropped() -> None:
    step: Step = Attack(target_id=4)
    out = AgentOutcome(
        5,
        (Scan(),),
        Tier.simplified_llm,
        None,
        from_cache=True,
        partial=True,
        dropped=(DroppedStep(1, step, Illegal("unknown_target", "target 4 unknown to this unit")),),
    )
    assert out.from_cache and out.partial and out.dropped[0].step == step


def test_outcome_refuses_empty_plans_and_unknown_causes() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        AgentOutcome(1, (), Tier.heuristic)
    with pytest.raises(ValueError, match="unknown cause"):
        AgentOutcome(1, EMERGENCY_PLAN, Tier.heuristic, "gremlins")  # type: ignore[arg-type]
