"""The rule planner: a sensible plan from one Snapshot, no LLM, no grid.

It is the heuristic squad controller, the planner's fallback tier 3, and the
brain of the simulated LLM, so it sees only what an LLM would see (the
snapshot) and must never raise. Rules, first match wins:

1. no ammo                -> (take cover if under fire) Reload
2. badly hurt             -> TakeCover (nearest listed cover) or smoke + Retreat;
                             with no enemy in sight, Heal self
3. medic, ally hurt       -> Approach the most hurt ally, Heal
4. enemy visible          -> (explosive on a cluster) Approach best target, Attack it
5. otherwise              -> advance on the objective, then Scan / Block there
"""

from __future__ import annotations

import random

from game.rules.actions import APPROACH_MAX_TILES, ROLE_STATS, THROW_RANGE
from game.rules.sight import dist2, in_range
from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import (
    MAX_STEPS,
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

BADLY_HURT = 0.35
ALLY_HURT = 0.6
ATTACKS_PER_PLAN = 3

Tile = tuple[int, int]


def plan(snap: Snapshot, rng: random.Random) -> list[Step]:
    """1..MAX_STEPS steps for `snap.me`; never raises on a valid Snapshot."""
    steps = _plan(snap, rng)[:MAX_STEPS]
    return steps or [Scan(), Wait()]


def _plan(snap: Snapshot, rng: random.Random) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    enemies = sorted(snap.enemies, key=lambda e: (dist2(here, (e.x, e.y)), e.id))
    in_cover = "cover" in me.status.split(",")

    if me.ammo <= 0:
        steps: list[Step] = []
        took_cover = bool(enemies and snap.cover and not in_cover)
        if took_cover:
            steps.append(TakeCover(x=snap.cover[0][0], y=snap.cover[0][1]))
        steps.append(Reload())
        if enemies:  # then shoot back, staying in the cover just taken
            steps.extend(_engage(snap, enemies, rng, ammo=me.max_ammo, may_move=not took_cover))
        return steps

    if me.hp <= BADLY_HURT * max(1, me.max_hp):
        return _when_hurt(snap, enemies, in_cover, rng)

    if me.role == "medic":
        patient = _most_hurt_ally(snap)
        if patient is not None:
            if _adjacent(here, (patient.x, patient.y)):
                return [Heal(), Heal()]
            return [Approach(target_id=patient.id), Heal()]

    if enemies:
        return _engage(snap, enemies, rng, ammo=me.ammo, may_move=True)

    return _advance(snap, rng)


def _when_hurt(
    snap: Snapshot, enemies: list[UnitView], in_cover: bool, rng: random.Random
) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    if not enemies:
        return [Heal(), Heal(), Scan()]
    if in_cover:
        # Fight from cover rather than walking out of it.
        st = ROLE_STATS[me.role]
        shootable = [e for e in enemies if in_range(here, (e.x, e.y), st.range)]
        if shootable:
            t = _best_target(shootable, here, rng)
            return [Attack(target_id=t.id) for _ in range(min(me.ammo, ATTACKS_PER_PLAN))]
        return [Heal(), Wait()]
    if snap.cover:
        cx, cy = snap.cover[0]
        return [TakeCover(x=cx, y=cy), Heal()]
    steps: list[Step] = []
    if me.grenades > 0:
        steps.append(ThrowSmoke(x=me.x, y=me.y))
    steps.append(Retreat(target_id=enemies[0].id))
    steps.append(Heal())
    return steps


def _engage(
    snap: Snapshot, enemies: list[UnitView], rng: random.Random, *, ammo: int, may_move: bool
) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    st = ROLE_STATS[me.role]
    steps: list[Step] = []
    # Grenades are scarce and everyone sees the same clusters: throw only sometimes.
    blast = _explosive_spot(snap, enemies) if me.grenades > 0 and rng.random() < 0.4 else None
    if blast is not None:
        steps.append(ThrowExplosive(x=blast[0], y=blast[1]))
    target = _best_target(enemies, here, rng, reach=st.range)
    if me.role == "scout" and "marked" not in target.status.split(","):
        steps.append(MarkTarget(target_id=target.id))
    if may_move:
        steps.append(Approach(target_id=target.id))
        far = dist2(here, (target.x, target.y)) > (st.range + APPROACH_MAX_TILES) ** 2
        if far:
            steps.append(Approach(target_id=target.id))
    shots = min(ammo, ATTACKS_PER_PLAN)
    steps.extend(Attack(target_id=target.id) for _ in range(shots))
    if shots and ammo - shots <= 0:
        steps.append(Reload())
    return steps


def _best_target(
    enemies: list[UnitView], here: Tile, rng: random.Random, reach: int | None = None
) -> UnitView:
    """Prefer enemies already in range, then the weakest, then the closest; rng breaks ties."""

    def key(e: UnitView) -> tuple[int, int, int, float]:
        out = 0 if reach is None or in_range(here, (e.x, e.y), reach) else 1
        return (out, e.hp, dist2(here, (e.x, e.y)), rng.random())

    return min(enemies, key=key)


def _explosive_spot(snap: Snapshot, enemies: list[UnitView]) -> Tile | None:
    """An enemy tile in throw range whose blast hits >= 2 enemies and no friend."""
    me = snap.me
    here = (me.x, me.y)
    friends = [(a.x, a.y) for a in (me, *snap.allies)]
    for e in enemies:
        spot = (e.x, e.y)
        if not in_range(here, spot, THROW_RANGE):
            continue
        hits = sum(1 for o in enemies if _adjacent(spot, (o.x, o.y)))
        if hits >= 2 and not any(_adjacent(spot, f) for f in friends):
            return spot
    return None


def _most_hurt_ally(snap: Snapshot) -> UnitView | None:
    hurt = [a for a in snap.allies if a.hp < ALLY_HURT * a.max_hp]
    if not hurt:
        return None
    return max(hurt, key=lambda a: (a.max_hp - a.hp, -a.id))


def _advance(snap: Snapshot, rng: random.Random) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    if snap.objective is None:
        return [Scan(), Wait()]
    ox, oy = snap.objective
    if _adjacent(here, (ox, oy)):
        return [Scan(), Block()]
    steps: list[Step] = [MoveTo(x=ox, y=oy), Scan()]
    if me.ammo < me.max_ammo and rng.random() < 0.5:
        steps.insert(0, Reload())
    return steps


def _adjacent(a: Tile, b: Tile) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= 1
