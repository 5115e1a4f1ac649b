"""How the simulated LLM plays and what it says it is doing: personas and intents.

Pure: snapshots, the terrain its prompt showed, and a seeded RNG in; steps and a short
intent out. A persona replaces the rule planner's choice with its own temperament, so a
simulated squad with one plays visibly unlike the rule planner:

    aggressive  closes on the nearest enemy, throws its explosives, never takes cover
    cautious    fights from cover, falls back when hurt, braces when it has no cover
    objective   runs for the objective and holds it, shooting only what is in range
    support     heals the most hurt ally (medics), else smokes and shoots for it

`None` (no persona) keeps the rule planner's plan plus seeded noise. Personas shape what
the sim writes (targets, positions, actions, intents), never its latency.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from game.rules.actions import ROLE_STATS, THROW_RANGE
from game.rules.sight import dist2, in_range
from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import (
    Approach,
    Attack,
    Block,
    Heal,
    MarkTarget,
    MoveTo,
    Reload,
    Retreat,
    Scan,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
    Wait,
)
from planner.terrain import Terrain

PERSONAS: tuple[str, ...] = ("aggressive", "cautious", "objective", "support")
PERSONA_CHOICES: tuple[str, ...] = (*PERSONAS, "seed")
"""What `--persona` accepts: a persona, or `seed` (one picked by the match seed)."""

Tile = tuple[int, int]
Planned = tuple[list[Step], str]
"""Steps and the intent that explains them."""


def resolve(name: str | None, seed: int) -> str | None:
    """The persona a `--persona` value means for a match seed (`seed`: picked by it)."""
    if name is None or name in PERSONAS:
        return name
    if name == "seed":
        return PERSONAS[seed % len(PERSONAS)]
    raise ValueError(f"unknown persona {name!r} (known: {', '.join(PERSONA_CHOICES)})")


def _here(snap: Snapshot) -> Tile:
    return snap.me.x, snap.me.y


def _by_distance(snap: Snapshot, units: Sequence[UnitView]) -> list[UnitView]:
    here = _here(snap)
    return sorted(units, key=lambda u: (dist2(here, (u.x, u.y)), u.id))


def _shots(snap: Snapshot, target: UnitView, n: int = 3) -> list[Step]:
    steps: list[Step] = [Attack(target_id=target.id) for _ in range(min(n, snap.me.ammo))]
    if snap.me.ammo <= n:
        steps.append(Reload())
    return steps


def _in_reach(snap: Snapshot, target: UnitView) -> bool:
    return in_range(_here(snap), (target.x, target.y), ROLE_STATS[snap.me.role].range)


def _aggressive(snap: Snapshot, terrain: Terrain, rng: random.Random) -> Planned:
    if not snap.enemies:
        if snap.objective is None:
            return [Scan(), Wait()], "hunt for contact"
        ox, oy = snap.objective
        return [MoveTo(x=ox, y=oy), Scan()], "push up and hunt for contact"
    target = _by_distance(snap, snap.enemies)[0]
    steps: list[Step] = []
    here = _here(snap)
    spot = (target.x, target.y)
    if snap.me.grenades > 0 and in_range(here, spot, THROW_RANGE) and dist2(here, spot) > 2:
        steps.append(ThrowExplosive(x=target.x, y=target.y))
    if not _in_reach(snap, target):
        steps.append(Approach(target_id=target.id))
    if snap.me.ammo <= 0:
        steps.append(Reload())
    steps += _shots(snap, target, 4)
    return steps, f"rush #{target.id} and finish it"


def _cautious(snap: Snapshot, terrain: Terrain, rng: random.Random) -> Planned:
    me = snap.me
    in_cover = "cover" in me.status.split(",")
    enemies = _by_distance(snap, snap.enemies)
    if enemies and me.hp < 0.5 * me.max_hp:
        steps: list[Step] = [Retreat(target_id=enemies[0].id)]
        if snap.cover:
            steps = [TakeCover(x=snap.cover[0][0], y=snap.cover[0][1])]
        return [*steps, Heal(), Block()], f"fall back from #{enemies[0].id}"
    steps = []
    if snap.cover and not in_cover:
        cx, cy = snap.cover[0]
        steps.append(TakeCover(x=cx, y=cy))
    elif not snap.cover and not in_cover:
        steps.append(Block())
    if me.ammo < me.max_ammo // 2:
        steps.append(Reload())
    if not enemies:
        where = f"at {snap.cover[0][0]},{snap.cover[0][1]}" if snap.cover else "here"
        return [*steps, Scan(), Wait()], f"hold cover {where} and watch"
    target = min(enemies, key=lambda e: (not _in_reach(snap, e), e.hp, e.id))
    return [*steps, *_shots(snap, target, 2), Scan()], f"shoot #{target.id} from cover"


def _objective(snap: Snapshot, terrain: Terrain, rng: random.Random) -> Planned:
    if snap.objective is None:
        return _cautious(snap, terrain, rng)
    ox, oy = snap.objective
    here = _here(snap)
    steps: list[Step] = []
    on_it = max(abs(here[0] - ox), abs(here[1] - oy)) <= 1
    if not on_it:
        steps.append(MoveTo(x=ox, y=oy))
    in_reach = [e for e in snap.enemies if _in_reach(snap, e)]
    if in_reach:
        target = min(in_reach, key=lambda e: (e.hp, e.id))
        steps += _shots(snap, target, 2)
    steps.append(Block() if on_it else Scan())
    return steps, "hold the objective" if on_it else f"rush the objective at {ox},{oy}"


def _support(snap: Snapshot, terrain: Terrain, rng: random.Random) -> Planned:
    me = snap.me
    hurt = [a for a in snap.allies if a.hp < a.max_hp]
    patient = max(hurt, key=lambda a: (a.max_hp - a.hp, -a.id)) if hurt else None
    if me.role == "medic":
        if me.hp < 0.6 * me.max_hp:
            return [Heal(), Scan()], "patch myself up"
        if patient is not None:
            return [Approach(target_id=patient.id), Heal(), Heal()], f"patch up #{patient.id}"
    enemies = _by_distance(snap, snap.enemies)
    if not enemies:
        if patient is not None:
            return [Approach(target_id=patient.id), Scan()], f"stay by #{patient.id}"
        if snap.allies:
            buddy = _by_distance(snap, snap.allies)[0]
            return [Approach(target_id=buddy.id), Scan()], f"stay close to #{buddy.id}"
        return [Scan(), Wait()], "watch the squad's back"
    target = enemies[0]
    steps: list[Step] = []
    if patient is not None and me.grenades > 0:
        # Smoke between the hurt ally and the enemy nearest to it.
        threat = min(enemies, key=lambda e: (dist2((e.x, e.y), (patient.x, patient.y)), e.id))
        sx, sy = (patient.x + threat.x) // 2, (patient.y + threat.y) // 2
        if in_range(_here(snap), (sx, sy), THROW_RANGE):
            steps.append(ThrowSmoke(x=sx, y=sy))
            target = threat
    if "marked" not in target.status.split(","):
        steps.append(MarkTarget(target_id=target.id))  # so the squad's shots hit it harder
    steps += _shots(snap, target, 2)
    why = (
        f"cover #{patient.id}, mark #{target.id}" if patient else f"mark #{target.id} for the squad"
    )
    return steps, why


PERSONA_PLANS: dict[str, Callable[[Snapshot, Terrain, random.Random], Planned]] = {
    "aggressive": _aggressive,
    "cautious": _cautious,
    "objective": _objective,
    "support": _support,
}


def persona_plan(persona: str, snap: Snapshot, terrain: Terrain, rng: random.Random) -> Planned:
    """The persona's plan for one agent, and its intent."""
    return PERSONA_PLANS[persona](snap, terrain, rng)
