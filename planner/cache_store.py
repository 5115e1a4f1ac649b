"""A saved prompt cache: the plans a game learned, as JSON text, for the next game to
start warm (`--cache-save PATH`, `--cache-load PATH`).

The text is untrusted input when it comes back: it is bounded, then validated with
pydantic (steps as the action models, keys as sha256 hex, anchors as small integers);
any fault is one `CacheFileError` line naming the entry and the problem. Reading and
writing the file is the caller's (launch): this module only turns text into entries.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from game.rules.steps import MAX_STEPS, Step
from planner.cache import Anchor, PlanCache
from planner.core import CachedPlan
from planner.errors import PlannerError, first_error
from planner.fallback import LLM_TIERS, Tier
from planner.schema import INTENT_MAX_CHARS

CACHE_FILE_VERSION = 1
MAX_CACHE_FILE_CHARS = 64 * 1024 * 1024
"""A cache file past 64 MiB is not one this game wrote (4096 plans take about 2 MiB)."""

Key = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Coord = Annotated[int, Field(ge=-1024, le=1024)]
UnitId = Annotated[int, Field(ge=0, le=1_000_000)]


class CacheFileError(PlannerError):
    """A cache file that cannot be loaded (one line: where and what)."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnchorModel(_Strict):
    x: Coord
    y: Coord
    enemies: tuple[UnitId, ...] = Field(max_length=256)
    allies: tuple[UnitId, ...] = Field(max_length=256)
    facing: tuple[Coord, Coord] | None = None
    enemy_at: tuple[tuple[Coord, Coord], ...] = Field(default=(), max_length=256)
    cover: tuple[tuple[Coord, Coord], ...] = Field(default=(), max_length=256)
    objective: tuple[Coord, Coord] | None = None


class EntryModel(_Strict):
    key: Key
    situation: Key | None
    tier: Tier
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)
    anchor: AnchorModel | None
    intent: str | None = Field(default=None, max_length=INTENT_MAX_CHARS)


class CacheFile(_Strict):
    version: Literal[1]
    entries: tuple[EntryModel, ...]


def dump_cache(cache: PlanCache[CachedPlan]) -> str:
    """The cache's LLM plans as JSON text, least recently used first."""
    entries = [
        EntryModel(
            key=key,
            situation=situation,
            tier=plan.tier,
            steps=plan.steps,
            anchor=None if plan.anchor is None else AnchorModel(**vars(plan.anchor)),
            intent=plan.intent,
        )
        for key, situation, plan in cache.items_lru_first()
        if plan.tier in LLM_TIERS and plan.steps
    ]
    return CacheFile(version=CACHE_FILE_VERSION, entries=tuple(entries)).model_dump_json() + "\n"


def parse_cache(text: str, source: str) -> list[tuple[str, str | None, CachedPlan]]:
    """Entries of a saved cache, LRU first; a fault raises CacheFileError (one line)."""
    if len(text) > MAX_CACHE_FILE_CHARS:
        raise CacheFileError(f"{source}: cache file over {MAX_CACHE_FILE_CHARS} characters")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CacheFileError(f"{source}: not JSON ({exc})") from None
    try:
        parsed = CacheFile.model_validate(data)
    except ValidationError as exc:
        raise CacheFileError(f"{source}: {first_error(exc, top='top level')}") from None
    for n, e in enumerate(parsed.entries):
        if e.tier not in LLM_TIERS:
            raise CacheFileError(f"{source}: entries.{n}.tier: {e.tier.value} is not an LLM tier")
    return [
        (
            e.key,
            e.situation,
            CachedPlan(
                e.steps,
                e.tier,
                None if e.anchor is None else Anchor(**e.anchor.model_dump()),
                e.intent,
            ),
        )
        for e in parsed.entries
    ]


def load_into(
    cache: PlanCache[CachedPlan], entries: list[tuple[str, str | None, CachedPlan]]
) -> None:
    """Put saved entries into a cache (before its first round), keeping their LRU order."""
    for key, situation, plan in entries:
        cache.put(key, plan, situation)
