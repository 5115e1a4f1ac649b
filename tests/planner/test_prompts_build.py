"""Prompt layout: static prefix (per tier and plan format), deterministic order, blocks,
styles and decoding."""

from __future__ import annotations

import json
import random

import pytest

from game.rules.snapshot import Role, Snapshot, UnitView
from planner.fallback import TIER_TOOLS, Tier
from planner.prompts import (
    OUTPUT_EXAMPLES,
    SIMPLIFIED_BLOCK_BUDGET,
    PromptDecodeError,
    ScenarioInfo,
    Style,
    agent_block,
    build_batch_prompt,
    build_single_prompt,
    decode_agent_blocks,
    style_for,
    system_prompt,
)
from planner.schema import PLAN_FORMATS, PlanFormat, plan_json_schema
from tests.factories import snapshot, unit
from tests.schema_check import check

LLM_TIERS = (Tier.simplified_llm, Tier.full_llm)


def snap(
    uid: int,
    *,
    role: Role = "rifleman",
    turn: int = 3,
    scenario: str = "village",
    enemies: tuple[UnitView, ...] = (),
    objective: tuple[int, int] | None = (15, 12),
    squad: str = "red",
    hp: int = 100,
) -> Snapshot:
    me = unit(uid, uid, 2, role=role, squad=squad, hp=hp, ammo=5, status="cover", grenades=2)
    return snapshot(
        me,
        scenario=scenario,
        turn=turn,
        allies=[unit(a, a, 3, squad=squad, hp=60) for a in (20, 21) if a != uid],
        enemies=enemies,
        cover=((uid + 1, 2), (uid, 4)),
        smoke=((9, 9),),
        objective=objective,
    )


ENEMIES = (unit(1, 5, 5, squad="blue", hp=40, status="marked"), unit(2, 7, 5, squad="blue"))


def test_batch_order_is_ascending_whatever_the_input_order() -> None:
    snaps = [snap(i, enemies=ENEMIES) for i in (14, 7, 9, 11)]
    for tier in LLM_TIERS:
        reference = build_batch_prompt(snaps, tier)
        assert reference.agent_ids == (7, 9, 11, 14)
        rng = random.Random(5)
        for _ in range(10):
            shuffled = snaps[:]
            rng.shuffle(shuffled)
            assert build_batch_prompt(shuffled, tier) == reference
        lines = reference.user.splitlines()
        assert lines[1:5] == [reference.agent_blocks[i] for i in (7, 9, 11, 14)]
        assert lines[-1] == "Ids [7,9,11,14]. Return exactly 4 plans."


def test_static_prefix_is_identical_across_rounds_agents_and_scenarios() -> None:
    for tier in LLM_TIERS:
        systems = {
            build_batch_prompt([snap(i, turn=t, scenario=sc, enemies=e)], tier).system
            for i in (3, 4)
            for t in (1, 17)
            for sc in ("village", "siege")
            for e in ((), ENEMIES)
        }
        assert systems == {system_prompt(tier)}
        # Nothing per round leaks into the prefix.
        assert "village" not in system_prompt(tier)
    assert system_prompt(Tier.full_llm) != system_prompt(Tier.simplified_llm)


@pytest.mark.parametrize("fmt", PLAN_FORMATS)
def test_static_prefix_is_one_per_tier_and_format(fmt: PlanFormat) -> None:
    for tier in LLM_TIERS:
        systems = {
            build_batch_prompt([snap(i, turn=t, enemies=e)], tier, fmt=fmt).system
            for i in (3, 4)
            for t in (1, 17)
            for e in ((), ENEMIES)
        }
        assert systems == {system_prompt(tier, fmt)}
        assert system_prompt(tier, fmt) is system_prompt(tier, fmt)  # the same bytes, cached
        assert OUTPUT_EXAMPLES[fmt] in system_prompt(tier, fmt)
    other = "verbose" if fmt == "compact" else "compact"
    assert system_prompt(Tier.simplified_llm, fmt) != system_prompt(Tier.simplified_llm, other)


def test_verbose_is_the_default_and_compact_shows_no_keys() -> None:
    s = snap(5, enemies=ENEMIES)
    for tier in LLM_TIERS:
        assert system_prompt(tier) == system_prompt(tier, "verbose")
        assert build_batch_prompt([s], tier) == build_batch_prompt([s], tier, fmt="verbose")
        assert '"agent_id"' in system_prompt(tier, "verbose")
        compact = system_prompt(tier, "compact")
        assert '"agent_id"' not in compact and '"act"' not in compact
        # The agent blocks, ids and footer do not depend on the format.
        verbose_parts = build_batch_prompt([s, snap(7)], tier)
        compact_parts = build_batch_prompt([s, snap(7)], tier, fmt="compact")
        assert compact_parts.user == verbose_parts.user
        assert compact_parts.agent_blocks == verbose_parts.agent_blocks
    with pytest.raises(ValueError, match="plan format"):
        system_prompt(Tier.simplified_llm, "tiny")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", PLAN_FORMATS)
def test_each_output_example_is_valid_under_its_formats_schema(fmt: PlanFormat) -> None:
    example = json.loads(OUTPUT_EXAMPLES[fmt])
    for tier in LLM_TIERS:
        schema = plan_json_schema(TIER_TOOLS[tier], 16, 12, fmt=fmt)
        assert check(schema, example) == []


def test_keep_order_and_format_go_together() -> None:
    snaps = [snap(9), snap(4)]
    parts = build_batch_prompt(snaps, Tier.simplified_llm, keep_order=True, fmt="compact")
    assert parts.agent_ids == (9, 4)
    assert parts.system == system_prompt(Tier.simplified_llm, "compact")


def test_simplified_and_full_tool_docs() -> None:
    simple = system_prompt(Tier.simplified_llm)
    for tool in ("MoveTo", "Attack", "TakeCover", "Reload", "Scan", "Wait", "ThrowSmoke"):
        assert tool in simple
    assert "Retreat" in simple and "Approach" not in simple
    # a medic can heal and a squad throw its explosives in the simplified tier too
    assert "Heal" in simple and "ThrowExplosive" in simple
    full = system_prompt(Tier.full_llm)
    assert all(f"\n{tool} " in full for tool in ("Approach", "Distract", "Block", "Heal"))


def test_rule_tiers_have_no_prompt() -> None:
    with pytest.raises(ValueError, match="no prompt"):
        build_batch_prompt([snap(1)], Tier.heuristic)


def test_empty_and_duplicate_rounds_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_batch_prompt([], Tier.simplified_llm)
    with pytest.raises(ValueError, match="duplicate"):
        build_batch_prompt([snap(3), snap(3)], Tier.simplified_llm)


def test_single_prompt_is_a_batch_of_one() -> None:
    s = snap(5, enemies=ENEMIES)
    single = build_single_prompt(s, Tier.simplified_llm)
    assert single == build_batch_prompt([s], Tier.simplified_llm)
    assert single.user.endswith("Ids [5]. Return exactly 1 plan.")


def test_agent_block_returns_the_agents_line() -> None:
    parts = build_batch_prompt([snap(3), snap(8, enemies=ENEMIES)], Tier.simplified_llm)
    block = agent_block(parts, 8)
    assert block in parts.user.splitlines()
    assert '"id":8' in block and '"id":3' not in block
    with pytest.raises(KeyError, match="agent 4"):
        agent_block(parts, 4)


def test_block_is_compact_json_with_short_keys() -> None:
    parts = build_single_prompt(snap(3, enemies=ENEMIES), Tier.simplified_llm)
    block = parts.agent_blocks[3]
    body = block[block.index("{") :]
    assert " " not in body
    assert body.startswith('{"id":3,"r":"r","p":[3,2],"hp":100,"a":[5,8],"st":"cover","g":2')
    assert '"en":[[1,5,5,40,"marked"],[2,7,5,100]]' in body
    assert len(block) <= SIMPLIFIED_BLOCK_BUDGET


@pytest.mark.parametrize(
    ("role", "enemies", "style"),
    [
        ("rifleman", (), Style.tactical),
        ("heavy", ENEMIES, Style.tactical),
        ("medic", ENEMIES, Style.support),
        ("scout", ENEMIES, Style.stealth),
        ("scout", (), Style.exploration),
    ],
)
def test_role_prompt_follows_the_unit_role(
    role: Role, enemies: tuple[UnitView, ...], style: Style
) -> None:
    s = snap(3, role=role, enemies=enemies)
    assert style_for(s) == style
    block = build_single_prompt(s, Tier.simplified_llm).agent_blocks[3]
    assert block.startswith(style.value[:6])
    full_block = build_single_prompt(s, Tier.full_llm).agent_blocks[3]
    assert full_block.startswith(f"Role {style.value}:")


def test_full_round_trip_is_exact_even_when_agents_differ_from_the_header() -> None:
    odd = [
        snap(3, enemies=ENEMIES),
        snap(4, turn=9, objective=None, squad="green"),
        snap(5, scenario="village", objective=(1, 1)),
    ]
    parts = build_batch_prompt(odd, Tier.full_llm)
    assert decode_agent_blocks(parts.user) == odd


def test_simplified_round_trip_of_own_state_and_neutral_defaults() -> None:
    s = snap(3, enemies=ENEMIES).model_copy(
        update={
            "me": unit(3, 3, 2, hp=30, ammo=5),
            "smoke": (),
            "cover": ((4, 2),),
            "allies": (unit(4, 4, 3, hp=60),),
        }
    )
    (back,) = decode_agent_blocks(build_single_prompt(s, Tier.simplified_llm).user)
    assert back.me == s.me
    assert (back.turn, back.width, back.height, back.objective) == (3, 32, 24, (15, 12))
    assert back.cover == ((4, 2),) and back.smoke == ()
    assert [(e.id, e.x, e.y, e.hp, e.status, e.role) for e in back.enemies] == [
        (1, 5, 5, 40, "marked", "rifleman"),
        (2, 7, 5, 100, "idle", "rifleman"),
    ]
    assert [(a.id, a.x, a.y, a.hp, a.max_hp) for a in back.allies] == [(4, 4, 3, 60, 100)]


def test_simplified_block_trims_far_and_unhurt_units_first_to_fit_its_budget() -> None:
    crowd = tuple(unit(40 + i, 20 + i, 20, squad="blue") for i in range(8))
    s = snap(3, enemies=crowd).model_copy(
        update={"cover": tuple((x, 9) for x in range(9)), "smoke": ((1, 1), (30, 20))}
    )
    block = build_single_prompt(s, Tier.simplified_llm).agent_blocks[3]
    assert len(block) <= SIMPLIFIED_BLOCK_BUDGET
    (back,) = decode_agent_blocks(build_single_prompt(s, Tier.simplified_llm).user)
    kept = [e.id for e in back.enemies]
    assert kept and kept == list(range(40, 40 + len(kept)))  # the nearest ones
    assert back.cover == s.cover[: len(back.cover)]
    assert back.smoke in ((), ((1, 1),))


def test_scenario_info_overrides_and_odd_names_round_trip() -> None:
    s = snap(3)
    info = ScenarioInfo("my map", 40, 30)
    parts = build_batch_prompt([s], Tier.full_llm, info)
    assert parts.user.startswith('Map "my map" 40x30 turn 3 squad red goal [15,12]')
    (back,) = decode_agent_blocks(parts.user)
    assert (back.scenario, back.width, back.height) == ("my map", 40, 30)
    assert back.me == s.me


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        'Map village 32x24 turn 3 squad red\nx {"id":3,"r":"r"',
        'Map village 32x24 turn 3 squad red\nx {"id":3,"r":"q","p":[1,1],"hp":1,"a":1}',
        'Map village 32x24 turn 3 squad red\nx {"id":3,"r":"r","p":[1],"hp":1,"a":1}',
        'Map village 32x24 turn 3 squad red\nx {"id":3,"r":"r","p":[1,1],"hp":true,"a":1}',
        'Map v 3x3 turn 3 squad red\nx {"id":3,"r":"r","p":[1,1],"hp":1,"a":1,"en":[[1,2]]}',
    ],
)
def test_decoding_bad_text_raises_a_clear_error(text: str) -> None:
    with pytest.raises(PromptDecodeError):
        decode_agent_blocks(text)


def test_header_without_blocks_decodes_to_nothing() -> None:
    assert decode_agent_blocks("Map v 3x3 turn 1 squad red\nIds []. Return exactly 0 plans.") == []
