"""A plan's intent read off its steps, in words (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from game.rules.snapshot import Snapshot
from game.rules.steps import (
    Approach,
    Attack,
    Block,
    Heal,
    MoveTo,
    Retreat,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
)


def intent_of(steps: Sequence[Step], snap: Snapshot) -> str:
    """What a plan is for, read off its steps: the first step that commits to something,
    in words (the sim's intent when it has no persona; a cache hit adapted to another
    agent gets one this way, since the stored intent named someone else's targets)."""
    objective = snap.objective
    for step in steps:
        if isinstance(step, Attack):
            return f"focus fire on #{step.target_id}"
        if isinstance(step, ThrowExplosive):
            return f"blast {step.x},{step.y}"
        if isinstance(step, Heal):
            return "patch up"
        if isinstance(step, Retreat):
            return f"fall back from #{step.target_id}"
        if isinstance(step, TakeCover):
            return f"take cover at {step.x},{step.y}"
        if isinstance(step, ThrowSmoke):
            return "smoke the approach"
        if isinstance(step, Approach):
            return f"close on #{step.target_id}"
        if isinstance(step, MoveTo):
            if (
                objective is not None
                and max(abs(step.x - objective[0]), abs(step.y - objective[1])) <= 2
            ):
                return "push to the objective"
            return f"move to {step.x},{step.y}"
        if isinstance(step, Block):
            return "hold this ground"
    return "look for enemies"
