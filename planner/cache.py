"""The prompt cache: an LRU of delivered plans keyed on exactly what was asked.

Ours on purpose (no library): an `OrderedDict` gives O(1) LRU order, keys are
precomputed sha256 strings, so a hit is one dict lookup and one `move_to_end`.

Exact key: sha256 of the canonical JSON of (model, tier, SCHEMA_VERSION, plan format,
options, per-agent prompt block). The caller puts anything else the answer depends on
(the scenario, temperature, seed...) into `options`.

Situation index: a second index keyed on what a plan depends on for the agent rather
than on the prompt text (`situation_key`: role, hp band, ammo, enemies seen, how far the
nearest is, allies near), so the same tactical situation hits in another turn, at
another place or for another agent of the same role. Such a plan was made for someone
else: the caller adapts it (`adapt_steps`: own tiles, turned to face its nearest enemy,
target slots; planner/adapt.py) and validates it against its agent's snapshot, and a
plan that does not survive is a rejected hit, counted as a miss. The cache keeps no
switch for it: a call uses the index when the caller passes a situation key, which the
planner does when the round's settings say so (`PlannerSettings.similarity`, on by
default, is the one copy of that flag).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import POSITION_ACTS, TARGET_ACTS, Step
from planner.schema import SCHEMA_VERSION, PlanFormat

V = TypeVar("V")

DEFAULT_CAPACITY = 4096


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
    are coarse enough that situations repeat within one match (issue 17: an empty cache
    at match start should hit); the ladder checks the squad does not play worse."""

    offset: int = 6
    """The nearest enemy's distance in bands of this many tiles (near, far)."""
    hp: int = 4
    """Own hp in this many bands of max hp."""
    enemies: int = 3
    """Visible enemies counted up to this many."""
    allies: int = 1
    """Allies within `offset` tiles counted up to this many (0: allies do not count)."""


def _nearest(units: tuple[UnitView, ...], me: UnitView) -> list[UnitView]:
    """Units nearest first (Chebyshev distance, then id): the order of target slots."""
    return sorted(units, key=lambda u: (max(abs(u.x - me.x), abs(u.y - me.y)), u.id))


def _distance(u: UnitView, me: UnitView) -> int:
    return max(abs(u.x - me.x), abs(u.y - me.y))


def situation_key(
    model: str,
    tier: str,
    options: Mapping[str, Any],
    snap: Snapshot,
    *,
    fmt: PlanFormat = "verbose",
    buckets: SituationBuckets = SituationBuckets(),
) -> str:
    """Key on what a plan depends on for this agent, not where or who it is: its role,
    hp in bands, whether it has ammo, how many enemies it sees, how far the nearest one
    is (in bands) and how many allies are near (for the same model, tier, tools, schema,
    plan format and options). Not the enemy's direction: `adapt_steps` turns a stored
    plan to face this agent's nearest enemy. Coarse on purpose, so situations repeat
    within a match (another turn, place, or agent of the same role); adapting and
    re-validating keep each hit legal for its agent."""
    me = snap.me
    band = max(1, buckets.offset)
    hp_q = min(buckets.hp - 1, me.hp * buckets.hp // me.max_hp) if me.max_hp > 0 else 0
    enemies = _nearest(snap.enemies, me)
    near_allies = sum(1 for u in snap.allies if _distance(u, me) < band)
    situation = {
        "role": me.role,
        "hp": hp_q,
        "ammo": me.ammo > 0,
        "n_enemies": min(len(enemies), buckets.enemies),
        "enemy_band": min(1, _distance(enemies[0], me) // band) if enemies else None,
        "allies": min(near_allies, buckets.allies),
    }
    payload = ["situation", model, str(tier), SCHEMA_VERSION, fmt, dict(options), situation]
    return hashlib.sha256(_canonical(payload)).hexdigest()


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


def _turn_towards(was: tuple[int, int] | None, now: tuple[int, int] | None) -> _Turn:
    """The symmetry that turns the stored plan's enemy direction closest to this agent's
    (identity first on ties, and when either saw no enemy)."""
    if was is None or now is None:
        return _SYMMETRIES[0]

    def misfit(turn: _Turn) -> float:
        tx, ty = turn(*was)
        return -(tx * now[0] + ty * now[1]) / (math.hypot(tx, ty) * math.hypot(*now) or 1.0)

    return min(_SYMMETRIES, key=misfit)


def adapt_steps(steps: tuple[Step, ...], anchor: Anchor, snap: Snapshot) -> tuple[Step, ...]:
    """A stored plan moved to this agent: tiles taken relative to where the plan's agent
    stood, turned (one of the grid's symmetries) so the plan faces this agent's nearest
    enemy (none seen: the objective) as it faced its own, and placed around this agent;
    targets mapped slot for slot (the stored plan's n-th nearest enemy becomes this
    agent's n-th nearest visible enemy; allies likewise). A step whose target has no
    counterpart here is left out. The result still has to pass validation."""
    me = snap.me
    enemies = _nearest(snap.enemies, me)
    turn = _turn_towards(anchor.facing, _facing(snap, enemies))
    slots: dict[int, int] = {}
    for old, new in zip(anchor.enemies, enemies, strict=False):
        slots[old] = new.id
    for old, new in zip(anchor.allies, _nearest(snap.allies, me), strict=False):
        slots[old] = new.id
    adapted: list[Step] = []
    for step in steps:
        if isinstance(step, POSITION_ACTS):
            dx, dy = turn(step.x - anchor.x, step.y - anchor.y)
            adapted.append(step.model_copy(update={"x": me.x + dx, "y": me.y + dy}))
        elif isinstance(step, TARGET_ACTS):
            target = slots.get(step.target_id)
            if target is not None:
                adapted.append(step.model_copy(update={"target_id": target}))
        else:
            adapted.append(step)
    return tuple(adapted)


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
