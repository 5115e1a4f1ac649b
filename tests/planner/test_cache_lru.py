"""Prompt cache: keys, LRU order, counters, TTL in virtual time, situation hits adapted or
rejected."""

from __future__ import annotations

import pytest

from game.rules.snapshot import Snapshot
from planner.cache import (
    DEFAULT_CAPACITY,
    PlanCache,
    SituationBuckets,
    cache_key,
    situation_key,
)
from planner.clock import VirtualClock
from tests.factories import snapshot, unit


def test_key_depends_on_every_part_and_not_on_option_order() -> None:
    base = cache_key("m", "simplified_llm", {"a": 1, "b": 2}, "block")
    assert base == cache_key("m", "simplified_llm", {"b": 2, "a": 1}, "block")
    assert len(base) == 64
    others = {
        cache_key("m2", "simplified_llm", {"a": 1, "b": 2}, "block"),
        cache_key("m", "full_llm", {"a": 1, "b": 2}, "block"),
        cache_key("m", "simplified_llm", {"a": 1, "b": 3}, "block"),
        cache_key("m", "simplified_llm", {"a": 1, "b": 2}, "block!"),
    }
    assert base not in others and len(others) == 4


def test_lru_order_eviction_and_counters() -> None:
    cache: PlanCache[str] = PlanCache(3)
    for k in "abc":
        cache.put(k, k.upper())
    assert cache.get("a") == "A"  # a becomes most recent
    cache.put("d", "D")  # evicts b, the least recently used
    assert cache.keys_lru_first() == ["c", "a", "d"]
    assert cache.get("b") is None
    cache.put("c", "C2")  # refresh moves c to the end, no eviction
    assert cache.keys_lru_first() == ["a", "d", "c"]
    assert cache.get("c") == "C2"
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.evictions, stats.size) == (2, 1, 1, 3)
    assert stats.hit_ratio == pytest.approx(2 / 3)
    assert cache.invalidate("a") and not cache.invalidate("a")
    assert len(cache) == 2


def test_ttl_expires_entries_in_virtual_time() -> None:
    clock = VirtualClock()
    cache: PlanCache[int] = PlanCache(10, ttl=5.0, clock=clock)
    cache.put("k", 1)
    clock.advance(4.999)
    assert cache.get("k") == 1
    clock.advance(0.001)
    assert cache.get("k") is None
    assert cache.stats.expirations == 1 and cache.stats.size == 0
    with pytest.raises(ValueError, match="needs a clock"):
        PlanCache[int](10, ttl=1.0)


def snap(x: int, y: int, hp: int = 100, ex: int = 10) -> Snapshot:
    return snapshot(
        unit(1, x, y, hp=hp),
        scenario="village",
        turn=3,
        enemies=(unit(9, ex, y, squad="blue"),),
        objective=(15, 12),
    )


def test_situation_key_is_the_same_situation_elsewhere_and_for_another_agent() -> None:
    key = situation_key("m", "simplified_llm", {}, snap(4, 4, 100))
    # elsewhere, another id and turn, the enemy as far but on another side (adapting
    # turns the plan to face it), the objective as far but elsewhere
    moved = snapshot(
        unit(5, 20, 14, hp=90),
        turn=7,
        enemies=(unit(12, 20, 8, squad="blue"),),
        objective=(2, 2),
    )
    assert key == situation_key("m", "simplified_llm", {}, moved)
    # the enemy nearer, still in range: no coordinates in the key
    assert key == situation_key("m", "simplified_llm", {}, snap(4, 4, 100, ex=7))
    differs = {
        "enemy out of range": snap(4, 4, 100, ex=13),
        "badly hurt": snap(4, 4, 20),
        "no ammo": snapshot(
            unit(1, 4, 4, ammo=0), enemies=(unit(9, 10, 4, squad="blue"),), objective=(15, 12)
        ),
        "no enemy in sight": snapshot(unit(1, 4, 4), objective=(15, 12)),
        "a medic": snapshot(
            unit(1, 4, 4, role="medic"),
            enemies=(unit(9, 10, 4, squad="blue"),),
            objective=(15, 12),
        ),
        "on the objective": snapshot(
            unit(1, 15, 12), enemies=(unit(9, 21, 12, squad="blue"),), objective=(15, 12)
        ),
        "cover from which the enemy is in range": snapshot(
            unit(1, 4, 4),
            enemies=(unit(9, 10, 4, squad="blue"),),
            objective=(15, 12),
            cover=((6, 4),),
        ),
        "a hurt ally": snapshot(
            unit(1, 4, 4),
            enemies=(unit(9, 10, 4, squad="blue"),),
            allies=(unit(2, 20, 20, hp=30),),
            objective=(15, 12),
        ),
        "in cover": snapshot(
            unit(1, 4, 4, status="cover"),
            enemies=(unit(9, 10, 4, squad="blue"),),
            objective=(15, 12),
        ),
    }
    for why, other in differs.items():
        assert key != situation_key("m", "simplified_llm", {}, other), why
    assert key != situation_key("m", "full_llm", {}, snap(4, 4, 100))  # other tools
    # coarser hp bands: 20 hp and 100 hp fall in one band
    one_band = SituationBuckets(hp=1)
    assert situation_key("m", "t", {}, snap(4, 4), buckets=one_band) == situation_key(
        "m", "t", {}, snap(4, 4, 20), buckets=one_band
    )


def test_situation_hit_is_adapted_or_rejected() -> None:
    cache: PlanCache[str] = PlanCache(10)
    near = situation_key("m", "t", {}, snap(4, 4))
    cache.put("exact-1", "plan-1", similar_key=near)
    rejected = cache.lookup("exact-2", near, adapt=lambda plan: None)
    assert rejected is None
    accepted = cache.lookup("exact-2", near, adapt=lambda plan: plan + " for agent 2")
    assert accepted is not None and accepted.similar and accepted.value == "plan-1 for agent 2"
    exact = cache.lookup("exact-1", near, adapt=lambda plan: None)
    assert exact is not None and not exact.similar
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.similar_hits, stats.similar_rejects) == (2, 1, 1, 1)


def test_similarity_is_the_callers_choice_per_call_and_follows_evictions() -> None:
    # The cache holds no similarity switch: a call without a similarity key (the round's
    # settings have it off) neither uses nor fills the similar index.
    cache: PlanCache[str] = PlanCache(10)
    assert not hasattr(cache, "similarity")
    cache.put("a", "A")  # stored with similarity off
    assert cache.lookup("b", "s", adapt=lambda p: p) is None
    cache.put("c", "C", similar_key="s")  # stored with it on
    assert cache.lookup("b", None, adapt=lambda p: p) is None  # looked up with it off
    hit = cache.lookup("b", "s", adapt=lambda p: p)
    assert hit is not None and hit.similar and hit.value == "C"
    one: PlanCache[str] = PlanCache(1)
    one.put("a", "A", similar_key="s")
    one.put("b", "B", similar_key="t")  # evicts a and its similarity entry
    assert one.lookup("x", "s", adapt=lambda p: p) is None
    hit = one.lookup("x", "t", adapt=lambda p: p)
    assert hit is not None and hit.value == "B"


class CountingKey(str):
    """A key that counts how often it is compared (a dict compares it only on a hash match)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        CountingKey.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_a_hit_at_full_capacity_compares_a_key_or_two_not_every_entry() -> None:
    # O(1) whatever the size, counted rather than timed: how fast a hit is belongs to the
    # bench (its "cache hit" target), not to a test on a loaded machine.
    cache: PlanCache[int] = PlanCache(DEFAULT_CAPACITY)
    keys = [CountingKey(cache_key("m", "t", {}, f"block {i}")) for i in range(DEFAULT_CAPACITY)]
    for i, k in enumerate(keys):
        cache.put(k, i)
    CountingKey.compared = 0
    probes = range(0, DEFAULT_CAPACITY, 8)
    for i in probes:
        assert cache.get(CountingKey(str(keys[i]))) == i  # an equal key, not the same object
    assert CountingKey.compared <= 2 * len(probes)
    assert cache.stats.hits == len(probes)


def test_new_situations_count_each_situation_key_once_and_bound_a_cold_hit_rate() -> None:
    cache: PlanCache[str] = PlanCache(4)

    def adapt(value: str) -> str:
        return value

    assert cache.lookup("k1", "s1", adapt) is None
    cache.put("k1", "plan", "s1")
    assert cache.lookup("k2", "s1", adapt) is not None  # the same situation: a hit
    assert cache.lookup("k3", "s2", adapt) is None
    assert cache.lookup("k4", None, adapt) is None  # no situation key: not counted
    assert cache.new_situations == 2
    assert (cache.hits, cache.misses) == (1, 3)
