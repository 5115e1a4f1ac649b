"""Shared by the sim tests: real prompts built from hand-made snapshots."""

from __future__ import annotations

from game.rules.snapshot import Snapshot, UnitView
from planner.backends.base import LLMRequest
from planner.fallback import Tier
from planner.prompts import build_batch_prompt
from planner.schema import PlanFormat
from tests.factories import snapshot, unit


def small_unit(
    uid: int, x: int, y: int, *, squad: str = "red", hp: int = 10, ammo: int = 3
) -> UnitView:
    """A unit of 10 hp and 6 rounds at most: short numbers, a short prompt."""
    return unit(uid, x, y, squad=squad, hp=hp, max_hp=10, ammo=ammo, max_ammo=6)


def agent_snapshot(uid: int, x: int, y: int, *, ammo: int = 3, hp: int = 10) -> Snapshot:
    """Unit `uid` on a 16x12 map, two enemies just east of it and cover in between."""
    return snapshot(
        small_unit(uid, x, y, ammo=ammo, hp=hp),
        scenario="test",
        width=16,
        height=12,
        enemies=(
            small_unit(90, x + 3, y, squad="blue"),
            small_unit(91, x + 4, y + 1, squad="blue"),
        ),
        cover=((x + 1, y),),
        objective=(8, 6),
    )


def squad(n: int) -> list[Snapshot]:
    return [agent_snapshot(uid, 1 + uid % 5, 1 + uid // 5, ammo=uid % 4) for uid in range(1, n + 1)]


def request(
    n: int = 3,
    *,
    stream: bool = True,
    seed: int | None = None,
    fmt: PlanFormat = "verbose",
    tier: Tier = Tier.simplified_llm,
) -> LLMRequest:
    snaps = squad(n)
    parts = build_batch_prompt(snaps, tier, fmt=fmt)
    return LLMRequest(
        system=parts.system,
        prompt=parts.user,
        agent_ids=parts.agent_ids,
        stream=stream,
        seed=seed,
    )


def messages(
    n: int = 3, fmt: PlanFormat = "verbose", tier: Tier = Tier.simplified_llm
) -> list[tuple[str, str]]:
    req = request(n, fmt=fmt, tier=tier)
    return [("system", req.system), ("user", req.prompt)]
