"""The prompt cache: an LRU of delivered plans keyed on exactly what was asked.

Ours on purpose (no library): an `OrderedDict` gives O(1) LRU order, keys are
precomputed sha256 strings, so a hit is one dict lookup and one `move_to_end`.

Exact key: sha256 of the canonical JSON of (model, tier, SCHEMA_VERSION, plan format,
options, per-agent prompt block). The caller puts anything else the answer depends on
(the scenario, temperature, seed...) into `options`.

Situation index: a second index keyed on what a plan depends on for the agent rather
than on the prompt text (`situation_key`: role, hp band, ammo, cover, the nearest enemies'
reach, hurt or near allies, the objective's distance; no coordinates), so the same
tactical situation hits in another turn, at another place or for another agent of the
same role. Such a plan was made for someone else: the caller adapts it (`adapt_steps`:
each tile placed on this agent's own landmarks, target slots; planner/adapt.py) and
validates it against its agent's snapshot, and a plan that does not survive is a
rejected hit, counted as a miss. The cache keeps no switch for it: a call uses the index
when the caller passes a situation key, which the planner does when the round's settings
say so (`PlannerSettings.similarity`, on by default, is the one copy of that flag).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from game.rules.actions import AOE_RADIUS, EXPLOSIVE_RADIUS, ROLE_STATS
from game.rules.heuristic import ALLY_HURT, LOW_AMMO, cover_in_reach
from game.rules.sight import in_range
from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import POSITION_ACTS, TARGET_ACTS, AoEAttack, Step, ThrowExplosive
from planner.schema import SCHEMA_VERSION, PlanFormat

V = TypeVar("V")

DEFAULT_CAPACITY = 4096
MAX_CAPACITY = 1_000_000
"""The most plans LLM_CACHE_CAP (or a warm-up's --capacity) may ask a cache to keep."""


class _Now(Protocol):
    def now(self) -> float: ...


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def cache_key(
    model: str,
    tier: str,
    options: Mapping[str, Any],
    block: str,
    *,
    fmt: PlanFormat = "verbose",
) -> str:
    """Exact key for one agent's plan: same model, tier, schema, plan format, options and
    block (the format changes the prompt, so what a model answers)."""
    payload = [model, str(tier), SCHEMA_VERSION, fmt, dict(options), block]
    return hashlib.sha256(_canonical(payload)).hexdigest()


@dataclass(frozen=True)
class SituationBuckets:
    """How coarsely the situation key sees a snapshot (PlannerSettings carries these):
    coarser buckets hit more often, and adapted plans fit their new situation less well
    (every one is validated against the agent's snapshot before it is used). The defaults
    were chosen with the ladder (docs/BENCHMARKS.md, issue 17): a squad served this way
    wins as often as one that asks the LLM every time."""

    near: int = 6
    """Tiles within which an ally counts as near and the objective as close."""
    hp: int = 3
    """Own hp in this many bands of max hp."""
    enemies: int = 2
    """The nearest enemies whose reach (in range now; cover from which they are) is in the
    key; one more is counted."""
    allies: int = 1
    """Allies within `near` tiles counted up to this many (0: allies do not count)."""


def _nearest(units: tuple[UnitView, ...], me: UnitView) -> list[UnitView]:
    """Units nearest first (straight-line distance, then the weaker, then id): the order of
    target slots. Straight-line, as weapon range is: a Chebyshev order (before issue 17's
    re-measure) mapped a stored target to another enemy than the model would pick in 45%
    of adapted fights, and a warm cache's squads lost focus (village: 3/20 wins)."""
    return sorted(units, key=lambda u: ((u.x - me.x) ** 2 + (u.y - me.y) ** 2, u.hp, u.id))


SITUATION_KEY_VERSION = 3
"""Bumped when the situation key's features change, so a saved cache's old keys miss."""


def situation_key(
    model: str,
    tier: str,
    options: Mapping[str, Any],
    snap: Snapshot,
    *,
    fmt: PlanFormat = "verbose",
    buckets: SituationBuckets = SituationBuckets(),
) -> str:
    """Key on what a plan depends on for this agent, not where or who it is: its role, hp
    in bands, ammo (none, low, enough), grenades, whether it is in cover, how many enemies
    it sees, whether each of the nearest is in range and has a listed cover tile from which
    it would be, whether any cover is listed, whether an ally is hurt or near, and how far
    the objective is (on it, close, far); for the same model, tier, tools, schema, plan
    format and options. No coordinates: a stored plan's tiles are kept as landmarks (the
    objective, a cover tile, beside an enemy, a step from itself) and placed on this
    agent's own (`adapt_steps`), so the same situation hits in another turn, at another
    place or for another agent of the same role. Features a plan turns on stay in the key
    (issue 17: a key without hp or the objective's distance made squads play worse)."""
    me = snap.me
    here = (me.x, me.y)
    hp_q = min(buckets.hp - 1, me.hp * buckets.hp // me.max_hp) if me.max_hp > 0 else 0
    enemies = _nearest(snap.enemies, me)[: buckets.enemies]
    reach = ROLE_STATS[me.role].range
    objective = snap.objective
    far = None if objective is None else _chebyshev(objective, here)
    near_allies = sum(1 for a in snap.allies if _chebyshev((a.x, a.y), here) <= buckets.near)
    situation = {
        "role": me.role,
        "hp": hp_q,
        "ammo": 0 if me.ammo <= 0 else 1 if me.ammo <= LOW_AMMO else 2,
        "grenades": me.grenades > 0,
        "in_cover": "cover" in me.status.split(","),
        "n_enemies": min(len(snap.enemies), buckets.enemies + 1),
        "in_reach": [in_range(here, (e.x, e.y), reach) for e in enemies],
        "cover": bool(snap.cover),
        "cover_reaching": [
            cover_in_reach(snap.cover, here, (e.x, e.y), reach) is not None for e in enemies
        ],
        "allies": min(buckets.allies, near_allies),
        "hurt_ally": any(a.hp < ALLY_HURT * a.max_hp for a in snap.allies),
        "objective": None if far is None else 0 if far <= 1 else 1 if far <= buckets.near else 2,
    }
    payload = [
        "situation",
        SITUATION_KEY_VERSION,
        model,
        str(tier),
        SCHEMA_VERSION,
        fmt,
        dict(options),
        situation,
    ]
    return hashlib.sha256(_canonical(payload)).hexdigest()


def _chebyshev(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1]))


def _frame(ref: tuple[int, int] | None) -> int:
    """The symmetry (index into `_SYMMETRIES`) that turns `ref` into the octant
    0 <= y <= x: a plan seen through it faces the same way whoever made it (identity
    when there is nothing to face)."""
    if ref is None:
        return 0
    for i, turn in enumerate(_SYMMETRIES):
        a, b = turn(*ref)
        if 0 <= b <= a:
            return i
    return 0


def _inverse(i: int) -> int:
    """The symmetry that undoes symmetry `i` ((1, 2) is moved by every symmetry but the
    identity, so it tells them apart)."""
    probe = _SYMMETRIES[i](1, 2)
    return next(j for j, t in enumerate(_SYMMETRIES) if t(*probe) == (1, 2))


@dataclass(frozen=True)
class Anchor:
    """Where and for whom a stored plan was made: what adapting it to another agent needs."""

    x: int
    y: int
    enemies: tuple[int, ...]
    """Enemy ids nearest first: the target slots."""
    allies: tuple[int, ...]
    """Ally ids nearest first."""
    facing: tuple[int, int] | None = None
    """What the plan faced: the offset to the nearest enemy when it was made, else to the
    objective (None: neither)."""
    enemy_at: tuple[tuple[int, int], ...] = ()
    """Where those enemies stood, in the same order."""
    cover: tuple[tuple[int, int], ...] = ()
    """The cover tiles the snapshot listed (nearest first)."""
    objective: tuple[int, int] | None = None


def _facing(snap: Snapshot, enemies: list[UnitView]) -> tuple[int, int] | None:
    """The offset a plan is turned by: to the nearest enemy, else to the objective."""
    me = snap.me
    if enemies:
        return (enemies[0].x - me.x, enemies[0].y - me.y)
    if snap.objective is not None and snap.objective != (me.x, me.y):
        return (snap.objective[0] - me.x, snap.objective[1] - me.y)
    return None


def anchor_of(snap: Snapshot) -> Anchor:
    me = snap.me
    enemies = _nearest(snap.enemies, me)
    return Anchor(
        me.x,
        me.y,
        tuple(u.id for u in enemies),
        tuple(u.id for u in _nearest(snap.allies, me)),
        _facing(snap, enemies),
        tuple((u.x, u.y) for u in enemies),
        snap.cover,
        snap.objective,
    )


_Turn = Callable[[int, int], tuple[int, int]]
_SYMMETRIES: tuple[_Turn, ...] = (
    lambda x, y: (x, y),
    lambda x, y: (-y, x),
    lambda x, y: (-x, -y),
    lambda x, y: (y, -x),
    lambda x, y: (-x, y),
    lambda x, y: (x, -y),
    lambda x, y: (y, x),
    lambda x, y: (-y, -x),
)
"""The grid's eight symmetries (four turns, four mirrors)."""


def adapt_steps(steps: tuple[Step, ...], anchor: Anchor, snap: Snapshot) -> tuple[Step, ...] | None:
    """A stored plan moved to this agent, or None when a landmark it used has no
    counterpart here. Each tile is lifted to the landmark it was for where the plan was
    made (`_lift`: the objective, a cover tile from which an enemy slot is in range, the
    n-th listed cover tile, a tile beside an enemy slot, else a step from the agent) and
    placed on this agent's own (`_place`). Offsets are turned by the grid symmetry that
    brings the stored plan's facing onto this agent's (both seen in the octant
    0 <= y <= x; that symmetry may be a mirror), so a tile keeps its place relative to the
    enemy and the agent, up to that mirror. A throw or volley stays aimed at its enemy
    slot; one that would catch the agent or an ally, or no enemy, rejects the hit
    (`_place_blast`). Targets map slot
    for slot (the stored plan's n-th nearest enemy becomes this agent's n-th nearest
    visible enemy; allies likewise); a step whose target has no counterpart is left out.
    The result still has to pass validation."""
    me = snap.me
    enemies = _nearest(snap.enemies, me)
    into = _SYMMETRIES[_frame(anchor.facing)]
    out_of = _SYMMETRIES[_inverse(_frame(_facing(snap, enemies)))]
    reach = ROLE_STATS[me.role].range

    def turn(x: int, y: int) -> tuple[int, int]:
        return out_of(*into(x, y))

    slots: dict[int, int] = {}
    for old, new in zip(anchor.enemies, enemies, strict=False):
        slots[old] = new.id
    for old, new in zip(anchor.allies, _nearest(snap.allies, me), strict=False):
        slots[old] = new.id
    adapted: list[Step] = []
    for step in steps:
        if isinstance(step, BLAST_ACTS):
            tile = _place_blast(step, anchor, snap, enemies, turn)
            if tile is None:
                return None
            adapted.append(step.model_copy(update={"x": tile[0], "y": tile[1]}))
        elif isinstance(step, POSITION_ACTS):
            tile = _place(_lift((step.x, step.y), anchor, reach), snap, enemies, turn, reach)
            if tile is None:
                return None
            adapted.append(step.model_copy(update={"x": tile[0], "y": tile[1]}))
        elif isinstance(step, TARGET_ACTS):
            target = slots.get(step.target_id)
            if target is not None:
                adapted.append(step.model_copy(update={"target_id": target}))
        else:
            adapted.append(step)
    return tuple(adapted)


BLAST_ACTS = (ThrowExplosive, AoEAttack)
BLAST_RADIUS: dict[type[Step], int] = {ThrowExplosive: EXPLOSIVE_RADIUS, AoEAttack: AOE_RADIUS}


def _place_blast(
    step: ThrowExplosive | AoEAttack,
    anchor: Anchor,
    snap: Snapshot,
    enemies: list[UnitView],
    turn: _Turn,
) -> tuple[int, int] | None:
    """Where this agent's throw or volley lands: aimed at the enemy slot it was aimed at
    (any slot, by its offset from that enemy), and only where it still catches an enemy
    and neither the agent nor an ally (an explosion hurts everyone in it). None: no such
    tile here, and the hit is rejected."""
    radius = BLAST_RADIUS[type(step)]
    tile = (step.x, step.y)
    aimed = [
        (j, spot) for j, spot in enumerate(anchor.enemy_at) if _chebyshev(tile, spot) <= radius
    ]
    if not aimed:
        return None
    j, spot = min(aimed, key=lambda a: (_chebyshev(tile, a[1]), a[0]))
    if j >= len(enemies):
        return None
    dx, dy = turn(tile[0] - spot[0], tile[1] - spot[1])
    placed = (enemies[j].x + dx, enemies[j].y + dy)
    me = snap.me
    if isinstance(step, ThrowExplosive) and any(
        _chebyshev(placed, (u.x, u.y)) <= radius for u in (me, *snap.allies)
    ):
        return None
    if not any(_chebyshev(placed, (e.x, e.y)) <= radius for e in enemies):
        return None
    return placed


LANDMARK_ENEMIES = 2
"""Enemy slots a tile can be tied to (beside one, or cover that reaches it)."""
BESIDE_ENEMY = 2
"""A tile within this many tiles of an enemy is kept relative to that enemy."""


@dataclass(frozen=True)
class Landmark:
    """What a plan's tile was for, independent of where its agent stood."""

    kind: Literal["objective", "cover_reaching", "cover", "enemy", "self"]
    slot: int = 0
    """The enemy slot (cover_reaching, enemy) or the listed cover tile's index (cover)."""
    dx: int = 0
    dy: int = 0
    """Offset from the enemy (enemy) or from the agent (self), before turning."""


def _lift(tile: tuple[int, int], anchor: Anchor, reach: int) -> Landmark:
    here = (anchor.x, anchor.y)
    spots = anchor.enemy_at[:LANDMARK_ENEMIES]
    if anchor.objective is not None and tile == anchor.objective:
        return Landmark("objective")
    if tile in anchor.cover:
        for j, spot in enumerate(spots):
            if cover_in_reach(anchor.cover, here, spot, reach) == tile:
                return Landmark("cover_reaching", j)
        return Landmark("cover", anchor.cover.index(tile))
    for j, spot in enumerate(spots):
        if _chebyshev(tile, spot) <= BESIDE_ENEMY:
            return Landmark("enemy", j, tile[0] - spot[0], tile[1] - spot[1])
    return Landmark("self", 0, tile[0] - here[0], tile[1] - here[1])


def _place(
    mark: Landmark, snap: Snapshot, enemies: list[UnitView], turn: _Turn, reach: int
) -> tuple[int, int] | None:
    """The tile that plays `mark`'s part for this agent (None: nothing here does)."""
    me = snap.me
    if mark.kind == "objective":
        return snap.objective
    if mark.kind == "cover":
        return snap.cover[min(mark.slot, len(snap.cover) - 1)] if snap.cover else None
    if mark.kind == "self":
        dx, dy = turn(mark.dx, mark.dy)
        return (me.x + dx, me.y + dy)
    if mark.slot >= len(enemies):
        return None
    enemy = enemies[mark.slot]
    if mark.kind == "cover_reaching":
        return cover_in_reach(snap.cover, (me.x, me.y), (enemy.x, enemy.y), reach)
    dx, dy = turn(mark.dx, mark.dy)
    return (enemy.x + dx, enemy.y + dy)


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    capacity: int
    similar_hits: int
    """Hits through the situation index, adapted to the caller's agent (within hits)."""
    similar_rejects: int
    """Situation candidates that did not survive adapting (counted as misses too)."""

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass(frozen=True)
class CacheHit(Generic[V]):
    value: V
    similar: bool
    """Found through the situation index (and adapted) rather than the exact key."""


@dataclass
class _Entry(Generic[V]):
    value: V
    expires_at: float | None
    similar_key: str | None


class PlanCache(Generic[V]):
    """LRU cache of plans, optional TTL (injected clock), situation index (per call)."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        ttl: float | None = None,
        clock: _Now | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("cache capacity must be at least 1")
        if ttl is not None and (ttl <= 0 or clock is None):
            raise ValueError("a TTL must be positive and needs a clock")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._similar: dict[str, str] = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self.similar_hits = 0
        self.similar_rejects = 0
        self.new_situations = 0
        """Lookups of a situation key never looked up before: each misses unless a stored
        plan (a saved cache's) has it, so on an empty cache they bound the hit rate."""
        self._looked: set[str] = set()
        """Situation keys looked up (a bounded space: the key holds no coordinates)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self.hits,
            misses=self.misses,
            evictions=self.evictions,
            expirations=self.expirations,
            size=len(self._entries),
            capacity=self.capacity,
            similar_hits=self.similar_hits,
            similar_rejects=self.similar_rejects,
        )

    def _live(self, key: str) -> _Entry[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires = entry.expires_at
        if expires is not None and self._clock is not None and self._clock.now() >= expires:
            self._remove(key, entry)
            self.expirations += 1
            return None
        return entry

    def _remove(self, key: str, entry: _Entry[V]) -> None:
        del self._entries[key]
        if entry.similar_key is not None and self._similar.get(entry.similar_key) == key:
            del self._similar[entry.similar_key]

    def get(self, key: str) -> V | None:
        """Exact lookup; a hit becomes most recently used."""
        entry = self._live(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def lookup(
        self,
        key: str,
        similar_key: str | None = None,
        adapt: Callable[[V], V | None] | None = None,
    ) -> CacheHit[V] | None:
        """Exact lookup, then (situation key and adapter given) the situation index.

        A situation candidate was made for another agent or moment: it is returned as
        `adapt(value)` (moved to the caller's agent and validated there), or rejected when
        that is None. Counters see one lookup: one hit or one miss (a rejection is a miss).
        """
        if similar_key is not None and similar_key not in self._looked:
            self._looked.add(similar_key)
            self.new_situations += 1
        entry = self._live(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return CacheHit(entry.value, similar=False)
        if similar_key is not None and adapt is not None:
            other = self._similar.get(similar_key)
            candidate = self._live(other) if other is not None else None
            if other is not None and candidate is not None:
                adapted = adapt(candidate.value)
                if adapted is not None:
                    self._entries.move_to_end(other)
                    self.hits += 1
                    self.similar_hits += 1
                    return CacheHit(adapted, similar=True)
                self.similar_rejects += 1
        self.misses += 1
        return None

    def items_lru_first(self) -> list[tuple[str, str | None, V]]:
        """(key, situation key, value) from least to most recently used: what a saved
        cache holds (loading them in this order keeps the LRU order)."""
        return [(k, e.similar_key, e.value) for k, e in self._entries.items()]

    def put(self, key: str, value: V, similar_key: str | None = None) -> None:
        """Store (or refresh) a plan, in the situation index too when `similar_key` is given;
        evicts the least recently used past capacity."""
        old = self._entries.get(key)
        if old is not None:
            self._remove(key, old)
        expires = None
        if self.ttl is not None and self._clock is not None:
            expires = self._clock.now() + self.ttl
        self._entries[key] = _Entry(value, expires, similar_key)
        if similar_key is not None:
            self._similar[similar_key] = key
        while len(self._entries) > self.capacity:
            oldest, entry = next(iter(self._entries.items()))
            self._remove(oldest, entry)
            self.evictions += 1

    def invalidate(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._remove(key, entry)
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._similar.clear()

    def keys_lru_first(self) -> list[str]:
        """Keys from least to most recently used (for tests and the inspector)."""
        return list(self._entries)
