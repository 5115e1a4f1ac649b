"""The prompt cache: an LRU of delivered plans keyed on exactly what was asked.

Ours on purpose (no library): an `OrderedDict` gives O(1) LRU order, keys are
precomputed sha256 strings, so a hit is one dict lookup and one `move_to_end`.

Exact key: sha256 of the canonical JSON of (model, tier, SCHEMA_VERSION, plan format,
options, per-agent prompt block). The caller puts anything else the answer depends on
(the scenario, temperature, seed...) into `options`.

Similarity mode: a second index keyed on a quantised snapshot (position and hp
bucketed, enemies reduced to the nearest few, relative and bucketed), so near-identical
situations can reuse a plan. Such a plan was made for a slightly different world, so a
similarity hit counts only if the caller's validator accepts it. The cache keeps no
switch for it: a call uses the index when the caller passes a similarity key, which the
planner does when the round's settings say so (`PlannerSettings.similarity` is the one
copy of that flag, and it reaches the cache only with a round, on the planner's loop).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from game.rules.snapshot import Snapshot
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


# Quantisation of the similarity key: coarse enough that a step or a scratch does not
# change it, fine enough that the plan usually still makes sense.
POS_BUCKET = 2
"""Own position in 2x2 tile buckets."""
HP_BUCKETS = 4
"""Own hp as quarters of max hp."""
ENEMY_OFFSET_BUCKET = 3
"""Enemy offsets relative to the unit, in 3x3 tile buckets."""
SIMILAR_ENEMIES = 2
"""Only the nearest enemies count."""


def similarity_key(
    model: str,
    tier: str,
    options: Mapping[str, Any],
    snap: Snapshot,
    *,
    fmt: PlanFormat = "verbose",
) -> str:
    """Key on a quantised snapshot: near-identical situations share it (for the same
    model, tier, schema, plan format and options)."""
    me = snap.me
    hp_q = min(HP_BUCKETS - 1, me.hp * HP_BUCKETS // me.max_hp) if me.max_hp > 0 else 0
    ammo_q = 0 if me.ammo <= 0 else (1 if me.ammo * 2 < me.max_ammo else 2)
    enemies = sorted(snap.enemies, key=lambda u: (max(abs(u.x - me.x), abs(u.y - me.y)), u.id))
    near = [
        [u.id, (u.x - me.x) // ENEMY_OFFSET_BUCKET, (u.y - me.y) // ENEMY_OFFSET_BUCKET]
        for u in enemies[:SIMILAR_ENEMIES]
    ]
    quantised = {
        "scenario": snap.scenario,
        "id": me.id,
        "role": me.role,
        "pos": [me.x // POS_BUCKET, me.y // POS_BUCKET],
        "hp": hp_q,
        "ammo": ammo_q,
        "enemies": near,
        "n_enemies": min(len(snap.enemies), 3),
        "objective": snap.objective,
    }
    payload = ["similar", model, str(tier), SCHEMA_VERSION, fmt, dict(options), quantised]
    return hashlib.sha256(_canonical(payload)).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    capacity: int
    similar_hits: int
    similar_rejects: int
    """Similarity candidates the validator turned down (counted as misses too)."""

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass(frozen=True)
class CacheHit(Generic[V]):
    value: V
    similar: bool
    """Found through the similarity index rather than the exact key."""


@dataclass
class _Entry(Generic[V]):
    value: V
    expires_at: float | None
    similar_key: str | None


class PlanCache(Generic[V]):
    """LRU cache of plans, optional TTL (injected clock), similarity index (per call)."""

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
        accept: Callable[[V], bool] | None = None,
    ) -> CacheHit[V] | None:
        """Exact lookup, then (similarity key and validator given) the similar index.

        A similarity candidate is returned only when `accept(value)` is true; counters
        see one lookup: one hit or one miss.
        """
        entry = self._live(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return CacheHit(entry.value, similar=False)
        if similar_key is not None and accept is not None:
            other = self._similar.get(similar_key)
            candidate = self._live(other) if other is not None else None
            if other is not None and candidate is not None:
                if accept(candidate.value):
                    self._entries.move_to_end(other)
                    self.hits += 1
                    self.similar_hits += 1
                    return CacheHit(candidate.value, similar=True)
                self.similar_rejects += 1
        self.misses += 1
        return None

    def put(self, key: str, value: V, similar_key: str | None = None) -> None:
        """Store (or refresh) a plan, in the similar index too when `similar_key` is given;
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
