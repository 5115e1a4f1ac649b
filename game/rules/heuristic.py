"""The rule planner: a sensible plan from one Snapshot, no LLM, no grid.

It is the heuristic squad controller, the planner's fallback tier 3, and the
brain of the simulated LLM, so it sees only what an LLM would see (the
snapshot) and must never raise. Rules, first match wins:

1. no ammo                -> (take cover if under fire) Reload, then fight back
2. badly hurt             -> fight from cover, or TakeCover + Block, or smoke + Retreat;
                             with no enemy in sight, a field dressing (Heal)
3. medic, ally hurt       -> Approach the most hurt ally, Heal (or Heal self)
4. enemy visible          -> Distract an enemy busy reloading or healing; explosive or
                             suppressing fire (AoEAttack) on a cluster; a scout marks;
                             smoke to cross open ground under fire; cover within reach
                             of the target, else Approach; Attack; Reload when low
5. otherwise              -> Reload when low; advance on the objective (Scan on the
                             way); there, take cover and Wait, or Block

Every tie between tiles or units breaks by `mirror_tie` (never by id or by reading
order), so a unit on a mirrored map decides the mirror image of its counterpart.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from game.rules.actions import (
    AOE_AMMO,
    APPROACH_MAX_TILES,
    DISTRACT_RANGE,
    EXPLOSIVE_RADIUS,
    MARK_RANGE,
    ROLE_STATS,
    THROW_RANGE,
)
from game.rules.grid import mirror_tie
from game.rules.sight import dist2, in_range
from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import (
    MAX_STEPS,
    AoEAttack,
    Approach,
    Attack,
    Block,
    Distract,
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
LOW_AMMO = 2
"""Reload when no enemy is in sight and at most this many rounds are left."""
COVER_DASH = 3
"""Cover within this many tiles is taken on the way to a fight; farther cover is not."""
BUSY = frozenset({"reloading", "healing", "throwing"})
"""Enemy postures worth a Distract: it loses the action."""

Tile = tuple[int, int]


def plan(snap: Snapshot, rng: random.Random) -> list[Step]:
    """1..MAX_STEPS steps for `snap.me`; never raises on a valid Snapshot."""
    steps = _plan(snap, rng)[:MAX_STEPS]
    return steps or [Scan(), Wait()]


def _plan(snap: Snapshot, rng: random.Random) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    w = snap.width
    enemies = sorted(
        snap.enemies,
        key=lambda e: (dist2(here, (e.x, e.y)), e.hp, mirror_tie(e.x, e.y, w, me.squad)),
    )
    in_cover = "cover" in me.status.split(",")

    if me.ammo <= 0:
        steps: list[Step] = []
        took_cover = bool(enemies and snap.cover and not in_cover)
        if took_cover:
            steps.append(TakeCover(x=snap.cover[0][0], y=snap.cover[0][1]))
        steps.append(Reload())
        if enemies:  # then shoot back, staying in the cover just taken
            steps.extend(
                _engage(snap, enemies, rng, ammo=me.max_ammo, in_cover=in_cover or took_cover)
            )
        return steps

    if me.hp <= BADLY_HURT * max(1, me.max_hp):
        return _when_hurt(snap, enemies, in_cover, rng)

    if me.role == "medic":
        if me.hp < ALLY_HURT * me.max_hp and not enemies:
            return [Heal(), Heal()]
        patient = _most_hurt_ally(snap)
        if patient is not None:
            if _adjacent(here, (patient.x, patient.y)):
                return [Heal(), Heal()]
            return [Approach(target_id=patient.id), Heal(), Heal()]

    if enemies:
        return _engage(snap, enemies, rng, ammo=me.ammo, in_cover=in_cover)

    return _advance(snap, rng, in_cover)


def _when_hurt(
    snap: Snapshot, enemies: list[UnitView], in_cover: bool, rng: random.Random
) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    dressing: list[Step] = [Heal()] if me.role == "medic" or me.hp * 2 < me.max_hp else []
    if not enemies:
        return [*dressing, *dressing, Scan()] if dressing else [Scan(), Wait()]
    st = ROLE_STATS[me.role]
    if in_cover:
        # Fight from cover rather than walking out of it.
        shootable = [e for e in enemies if in_range(here, (e.x, e.y), st.range)]
        if shootable:
            t = _best_target(snap, shootable)
            return [Attack(target_id=t.id) for _ in range(min(me.ammo, ATTACKS_PER_PLAN))]
        return [*dressing, Wait()]
    if snap.cover:
        cx, cy = snap.cover[0]
        return [TakeCover(x=cx, y=cy), Block(), *dressing]
    steps: list[Step] = []
    if me.grenades > 0:
        steps.append(ThrowSmoke(x=me.x, y=me.y))
    elif _adjacent(here, (enemies[0].x, enemies[0].y)):
        steps.append(Block())  # caught in the open, next to an enemy: halve its damage
    steps.append(Retreat(target_id=enemies[0].id))
    steps.extend(dressing)
    return steps


def _engage(
    snap: Snapshot, enemies: list[UnitView], rng: random.Random, *, ammo: int, in_cover: bool
) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    st = ROLE_STATS[me.role]
    steps: list[Step] = []
    busy = _busy_enemy(snap, enemies)
    if busy is not None and me.role in ("scout", "rifleman"):
        steps.append(Distract(target_id=busy.id))
    # Grenades are scarce and everyone sees the same clusters: throw only sometimes.
    cluster = _cluster_spot(snap, enemies)
    if cluster is not None and rng.random() < 0.5:
        if me.grenades > 0 and _throwable(here, cluster):
            steps.append(ThrowExplosive(x=cluster[0], y=cluster[1]))
        elif ammo >= AOE_AMMO + 1 and in_range(here, cluster, st.range):
            steps.append(AoEAttack(x=cluster[0], y=cluster[1]))
            ammo -= AOE_AMMO
    target = _best_target(snap, enemies, reach=st.range, shots=min(ammo, ATTACKS_PER_PLAN))
    spot = (target.x, target.y)
    if (
        me.role == "scout"
        and "marked" not in target.status.split(",")
        and in_range(here, spot, MARK_RANGE)
    ):
        steps.append(MarkTarget(target_id=target.id))
    if not in_range(here, spot, st.range):
        steps.extend(_close_in(snap, target, rng, in_cover=in_cover))
    elif not in_cover:
        cover = _cover_in_reach(snap, spot, st.range)
        if cover is not None:
            steps.append(TakeCover(x=cover[0], y=cover[1]))
    # An enemy my squad sees may be out of my own sight: an Approach ends at once when
    # it is in range and sight (in cover, without leaving it), else walks until it is.
    if not steps or not isinstance(steps[-1], Approach):
        steps.append(Approach(target_id=target.id))
    shots = min(ammo, ATTACKS_PER_PLAN)
    steps.extend(Attack(target_id=target.id) for _ in range(shots))
    if ammo - shots <= LOW_AMMO:
        steps.append(Reload())
    return steps


def _close_in(
    snap: Snapshot, target: UnitView, rng: random.Random, *, in_cover: bool
) -> list[Step]:
    """Steps to get the target in range: the nearest cover that reaches it, or an Approach
    (behind smoke when crossing open ground in sight of enemies)."""
    me = snap.me
    here = (me.x, me.y)
    st = ROLE_STATS[me.role]
    spot = (target.x, target.y)
    cover = _cover_in_reach(snap, spot, st.range)
    if cover is not None:
        return [TakeCover(x=cover[0], y=cover[1])]
    steps: list[Step] = []
    exposed = not in_cover and len(snap.enemies) >= 2
    if exposed and me.grenades > 1 and rng.random() < 0.5:
        # Smoke a tile between us, at most THROW_RANGE away: it blinds their shooters.
        sx, sy = _towards(here, spot, min(THROW_RANGE, 3))
        steps.append(ThrowSmoke(x=sx, y=sy))
    steps.append(Approach(target_id=target.id))
    if dist2(here, spot) > (st.range + APPROACH_MAX_TILES) ** 2:
        steps.append(Approach(target_id=target.id))
    return steps


def _best_target(
    snap: Snapshot, enemies: list[UnitView], reach: int | None = None, shots: int = 1
) -> UnitView:
    """Enemies in range first, then one my shots can finish, then the nearest, then the
    weakest: units spread their fire over what is near them instead of all chasing the
    weakest enemy on the map."""
    me = snap.me
    here = (me.x, me.y)
    damage = ROLE_STATS[me.role].damage

    def key(e: UnitView) -> tuple[int, int, int, int, tuple[int, int, int]]:
        out = 0 if reach is None or in_range(here, (e.x, e.y), reach) else 1
        finish = 0 if e.hp <= damage * max(1, shots) else 1
        return (
            out,
            finish,
            dist2(here, (e.x, e.y)),
            e.hp,
            mirror_tie(e.x, e.y, snap.width, me.squad),
        )

    return min(enemies, key=key)


def _busy_enemy(snap: Snapshot, enemies: list[UnitView]) -> UnitView | None:
    here = (snap.me.x, snap.me.y)
    for e in enemies:  # nearest first
        status = set(e.status.split(","))
        if (
            status & BUSY
            and "distracted" not in status
            and in_range(here, (e.x, e.y), DISTRACT_RANGE)
        ):
            return e
    return None


def _cluster_spot(snap: Snapshot, enemies: list[UnitView]) -> Tile | None:
    """An enemy tile whose blast (radius 1) hits >= 2 enemies and no friend."""
    me = snap.me
    friends = [(a.x, a.y) for a in (me, *snap.allies)]
    for e in enemies:  # nearest first
        spot = (e.x, e.y)
        hits = sum(1 for o in enemies if _near(spot, (o.x, o.y), EXPLOSIVE_RADIUS))
        if hits >= 2 and not any(_near(spot, f, EXPLOSIVE_RADIUS) for f in friends):
            return spot
    return None


def _throwable(here: Tile, spot: Tile) -> bool:
    return in_range(here, spot, THROW_RANGE) and not _near(here, spot, EXPLOSIVE_RADIUS)


def _cover_in_reach(snap: Snapshot, spot: Tile, reach: int) -> Tile | None:
    return cover_in_reach(snap.cover, (snap.me.x, snap.me.y), spot, reach)


def cover_in_reach(cover: Sequence[Tile], here: Tile, spot: Tile, reach: int) -> Tile | None:
    """The first listed cover tile (nearest first), not `here` but within a dash of it
    (COVER_DASH tiles), from which `spot` is in range: cover taken on the way to a fight
    (the prompt cache's landmark too)."""
    for c in cover:
        if c != here and _near(here, c, COVER_DASH) and in_range(c, spot, reach):
            return c
    return None


def _most_hurt_ally(snap: Snapshot) -> UnitView | None:
    hurt = [a for a in snap.allies if a.hp < ALLY_HURT * a.max_hp]
    if not hurt:
        return None
    here = (snap.me.x, snap.me.y)
    return min(
        hurt,
        key=lambda a: (
            a.hp - a.max_hp,
            dist2(here, (a.x, a.y)),
            mirror_tie(a.x, a.y, snap.width, snap.me.squad),
        ),
    )


def _advance(snap: Snapshot, rng: random.Random, in_cover: bool) -> list[Step]:
    me = snap.me
    here = (me.x, me.y)
    steps: list[Step] = []
    if me.ammo <= LOW_AMMO:
        steps.append(Reload())
    if me.hp * 2 < me.max_hp:
        steps.append(Heal())
    if snap.objective is None:
        return [*steps, Scan(), Wait()]
    ox, oy = snap.objective
    if _near(here, (ox, oy), 2):
        # Hold the square: from cover if there is some on it, else braced.
        for c in snap.cover:
            if _near(c, (ox, oy), 2) and not in_cover:
                return [*steps, TakeCover(x=c[0], y=c[1]), Scan(), Wait()]
        return [*steps, Scan(), Block() if rng.random() < 0.5 else Wait()]
    steps.append(MoveTo(x=ox, y=oy))
    steps.append(Scan())
    return steps


def _towards(a: Tile, b: Tile, tiles: int) -> Tile:
    """The tile `tiles` steps from a towards b (rounded symmetrically; b if nearer)."""
    d = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
    if d <= tiles:
        return b
    return (a[0] + _div(b[0] - a[0], d, tiles), a[1] + _div(b[1] - a[1], d, tiles))


def _div(delta: int, d: int, tiles: int) -> int:
    """round(delta * tiles / d), half away from zero (the same both ways of a mirror)."""
    q = (abs(delta) * tiles * 2 + d) // (2 * d)
    return q if delta >= 0 else -q


def _near(a: Tile, b: Tile, r: int) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= r


def _adjacent(a: Tile, b: Tile) -> bool:
    return _near(a, b, 1)
