"""A warm cache built from recorded matches: `python -m game.match.warmup`.

Every plan an LLM delivered whole in a record (not from the cache, not cut short) is put
into a cache under the keys the match itself stored it under (the recorded model, its
round's start tier, the plan format and situation buckets; the agent's recorded prompt
line and snapshot), with its anchor, in the order the records give them. The result is
the file `--cache-save` writes (the same entries as its match saved; their least recently
used order may differ, since a match's hits reorder its cache), for `--cache-load` or the
ladder's `--cache PATH`:

    python -m game --headless --red llm --record a.jsonl ...      # any number of matches
    python -m game.match.warmup a.jsonl b.jsonl --out warm.json
    python -m game --cache-load warm.json                         # starts warm

A record made with the cache off gives its plans all the same: they are what that model
answered in those situations. Plans of a round still in flight when the match ended reach
the match's own cache after its record is closed, so `--cache-save` may hold a few more.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from game.match.cli import OneLineParser, fail, output_file
from game.match.files import write_whole
from game.match.record import MatchRecord, MatchRecordError, load_record, recorded_settings
from game.rules.snapshot import Snapshot
from game.rules.steps import Step
from planner.cache import DEFAULT_CAPACITY, MAX_CAPACITY, PlanCache, anchor_of
from planner.cache_store import dump_cache
from planner.core import CachedPlan
from planner.delivery import plan_keys
from planner.errors import first_error
from planner.fallback import LLM_TIERS, Tier


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    agent_id: int
    steps: tuple[Step, ...]
    tier: Tier
    from_cache: bool
    partial: bool
    intent: str | None = None


class _Delivered(BaseModel):
    """The part of a recorded PlanDelivered event a warm cache needs."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    round_id: int
    squad: Literal["red", "blue"]
    outcome: _Outcome
    prompt_block: str = ""


class _Started(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    round_id: int
    start_tier: Tier


@dataclass
class Warmed:
    records: int = 0
    plans: int = 0
    """LLM plans put into the cache (a later one of the same key replaces the earlier)."""
    skipped: int = 0
    """Delivered plans that are not an LLM's whole answer (cache hits, rule plans, cut
    short) or whose snapshot the record does not hold."""


def warm_from(record: MatchRecord, cache: PlanCache[CachedPlan], counts: Warmed) -> None:
    """Put a record's LLM plans into `cache` as its match stored them."""
    header = record.header
    settings = recorded_settings(header)
    fmt = settings.plan_format_for(record.capabilities)
    grid = record.scenario.grid
    snaps: dict[tuple[int, str], dict[int, Snapshot]] = {
        (r.round_id, r.squad): {s.me.id: s for s in r.snapshots} for r in record.rounds
    }
    # the tier each round started at (a window's hotkey may have switched it mid-match)
    started = {
        s.round_id: s.start_tier
        for s in (_Started.model_validate(line.data) for line in record.round_starts)
    }
    for line in record.deliveries:
        data = _Delivered.model_validate(line.data)
        start = started.get(data.round_id, settings.start_tier)
        plan = data.outcome
        snap = snaps.get((data.round_id, data.squad), {}).get(plan.agent_id)
        if plan.tier not in LLM_TIERS or plan.from_cache or plan.partial or snap is None:
            counts.skipped += 1
            continue
        block = data.prompt_block if plan.tier == start and data.prompt_block else None
        key, similar = plan_keys(header.model, settings, snap, start, block, fmt, grid)
        cache.put(key, CachedPlan(plan.steps, plan.tier, anchor_of(snap), plan.intent), similar)
        counts.plans += 1
    counts.records += 1


def build_warmup_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m game.match.warmup",
        description="Build a warm prompt cache (the file --cache-save writes) from the LLM "
        "plans of recorded matches (--record).",
    )
    p.add_argument("records", nargs="+", metavar="RECORD", help="match records (JSON Lines)")
    p.add_argument(
        "--out",
        required=True,
        type=output_file(),
        metavar="PATH",
        help="the cache file to write (for --cache-load, or the ladder's --cache PATH)",
    )
    p.add_argument(
        "--capacity",
        type=int,
        default=DEFAULT_CAPACITY,
        metavar="N",
        help=f"plans kept, the most recent (default {DEFAULT_CAPACITY}, as LLM_CACHE_CAP)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_warmup_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.capacity <= MAX_CAPACITY:
        parser.error(f"--capacity must be 1..{MAX_CAPACITY} (as LLM_CACHE_CAP)")

    cache = PlanCache[CachedPlan](args.capacity)
    counts = Warmed()
    for path in args.records:
        try:
            record = load_record(path)
            warm_from(record, cache, counts)
        except MatchRecordError as exc:
            fail(str(exc), parser.prog)
        except ValidationError as exc:
            fail(f"{path}: a recorded plan cannot be read: {first_error(exc)}", parser.prog)
        except (TypeError, ValueError, KeyError) as exc:
            fail(
                f"{path}: a plan or the settings in the record cannot be read ({exc})",
                parser.prog,
            )
        print(f"{path}: {counts.plans} LLM plans so far", file=sys.stderr)
    try:
        write_whole(args.out, dump_cache(cache))
    except OSError as exc:
        fail(f"cannot write {args.out}: {exc.strerror or exc}", parser.prog)
    print(
        f"warmup: {counts.records} record(s), {counts.plans} LLM plans ({counts.skipped} other "
        f"plans left out) -> {len(cache)} cache entries in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
