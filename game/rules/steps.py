"""The action vocabulary: one pydantic model per action a unit can be ordered to do.

These models are the wire contract shared by the world (which applies them), the
heuristic controller (which produces them) and the planner (which asks an LLM for
them). They are pure data; how each one changes the world lives in `game.rules.actions`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _StepBase(BaseModel):
    # LLMs add chatter fields ("reason", "comment"); ignoring them loses nothing.
    model_config = ConfigDict(frozen=True, extra="ignore")


class _AtTile(_StepBase):
    x: int
    y: int


class _OnTarget(_StepBase):
    target_id: int


# Position-based actions.
class MoveTo(_AtTile):
    act: Literal["MoveTo"] = "MoveTo"


class TakeCover(_AtTile):
    act: Literal["TakeCover"] = "TakeCover"


class ThrowSmoke(_AtTile):
    act: Literal["ThrowSmoke"] = "ThrowSmoke"


class ThrowExplosive(_AtTile):
    act: Literal["ThrowExplosive"] = "ThrowExplosive"


class AoEAttack(_AtTile):
    act: Literal["AoEAttack"] = "AoEAttack"


# Target-based actions.
class Attack(_OnTarget):
    act: Literal["Attack"] = "Attack"


class Approach(_OnTarget):
    act: Literal["Approach"] = "Approach"


class Retreat(_OnTarget):
    act: Literal["Retreat"] = "Retreat"


class MarkTarget(_OnTarget):
    act: Literal["MarkTarget"] = "MarkTarget"


class Distract(_OnTarget):
    act: Literal["Distract"] = "Distract"


# Simple actions (no arguments).
class Reload(_StepBase):
    act: Literal["Reload"] = "Reload"


class Scan(_StepBase):
    act: Literal["Scan"] = "Scan"


class Wait(_StepBase):
    act: Literal["Wait"] = "Wait"


class Block(_StepBase):
    act: Literal["Block"] = "Block"


class Heal(_StepBase):
    act: Literal["Heal"] = "Heal"


Step = Annotated[
    MoveTo
    | TakeCover
    | ThrowSmoke
    | ThrowExplosive
    | AoEAttack
    | Attack
    | Approach
    | Retreat
    | MarkTarget
    | Distract
    | Reload
    | Scan
    | Wait
    | Block
    | Heal,
    Field(discriminator="act"),
]
STEP_ADAPTER: TypeAdapter[Step] = TypeAdapter(Step)

POSITION_ACTS: tuple[type[_AtTile], ...] = (
    MoveTo,
    TakeCover,
    ThrowSmoke,
    ThrowExplosive,
    AoEAttack,
)
TARGET_ACTS: tuple[type[_OnTarget], ...] = (Attack, Approach, Retreat, MarkTarget, Distract)
SIMPLE_ACTS: tuple[type[_StepBase], ...] = (Reload, Scan, Wait, Block, Heal)
STEP_TYPES: dict[str, type[_StepBase]] = {
    cls.model_fields["act"].default: cls for cls in (*POSITION_ACTS, *TARGET_ACTS, *SIMPLE_ACTS)
}

FULL_TOOLS: frozenset[str] = frozenset(STEP_TYPES)
"""The full tool registry (15 actions), offered by the full_llm tier."""
SIMPLIFIED_TOOLS: frozenset[str] = frozenset(
    {"MoveTo", "Attack", "TakeCover", "Reload", "Scan", "Wait", "ThrowSmoke", "Retreat"}
)
"""The 8 core tools offered by the simplified_llm tier."""

MAX_STEPS = 8
"""Most steps one plan may hold (schema, parser and validation all enforce it)."""
