"""What the LLM tiers are given besides units: the walls and water near each agent, the
tools each role needs, and the intent switch."""

from __future__ import annotations

import pytest

from game.rules.grid import Grid
from planner.bench.data import grid_of, played_rounds
from planner.fallback import TIER_TOOLS, Tier
from planner.prompts import (
    SIMPLIFIED_BLOCK_BUDGET,
    TERRAIN_RADIUS_FULL,
    build_batch_prompt,
    build_single_prompt,
    decode_agent_blocks,
    decode_agents,
    system_prompt,
)
from planner.schema import PLAN_FORMATS, PlanFormat
from planner.terrain import near
from tests.factories import snapshot, unit

HOUSE = Grid.from_strings(
    [
        "#########",
        "#.......#",
        "#.###...#",
        "#.#.#.~~#",
        "#.###.~~#",
        "#.......#",
        "#########",
    ]
)


def test_terrain_rectangles_cover_exactly_the_walls_and_water_in_the_window() -> None:
    for x, y, radius in ((3, 3, 2), (5, 5, 1), (1, 1, 9), (7, 1, 3)):
        terrain = near(HOUSE, x, y, radius)
        window = {
            (i, j)
            for i in range(max(0, x - radius), min(HOUSE.width, x + radius + 1))
            for j in range(max(0, y - radius), min(HOUSE.height, y + radius + 1))
        }
        for kind, rects in (("wall", terrain.walls), ("water", terrain.water)):
            tiles = [
                (i, j)
                for x0, y0, x1, y1 in rects
                for i in range(x0, x1 + 1)
                for j in range(y0, y1 + 1)
            ]
            assert len(tiles) == len(set(tiles)), "rectangles never overlap"
            assert set(tiles) == {t for t in window if HOUSE.tile(*t) == kind}
    whole = near(HOUSE, 4, 3, 9)
    assert len(whole.walls) <= 8  # merged: the border is a few rectangles, not 26 tiles
    assert whole.water == ((6, 3, 7, 4),)


@pytest.mark.parametrize("tier", [Tier.simplified_llm, Tier.full_llm])
def test_each_block_carries_the_terrain_near_its_agent_and_decodes_back(tier: Tier) -> None:
    me = unit(1, 3, 3, squad="red")
    snap = snapshot(me, width=HOUSE.width, height=HOUSE.height)
    parts = build_single_prompt(snap, tier, grid=HOUSE)
    [agent] = decode_agents(parts.user)
    assert agent.snap == decode_agent_blocks(parts.user)[0]
    assert agent.terrain.walls and agent.terrain.blocked(2, 2) and not agent.terrain.blocked(3, 3)
    assert '"w":[[' in parts.agent_blocks[1]
    assert "wa water" in parts.system or "w walls" in parts.system
    # without the grid there is no terrain (and the line is what it always was)
    assert '"w"' not in build_single_prompt(snap, tier).agent_blocks[1]


def test_the_full_tier_shows_a_wider_window_than_the_simplified() -> None:
    grid = grid_of("village")
    [rnd, *_] = played_rounds("village", 1)
    for snap in rnd:
        full = decode_agents(build_single_prompt(snap, Tier.full_llm, grid=grid).user)[0]
        assert full.terrain == near(grid, snap.me.x, snap.me.y, TERRAIN_RADIUS_FULL)
        simple = decode_agents(build_single_prompt(snap, Tier.simplified_llm, grid=grid).user)[0]
        shown = {
            (i, j)
            for x0, y0, x1, y1 in simple.terrain.walls
            for i in range(x0, x1 + 1)
            for j in range(y0, y1 + 1)
        }
        assert all(full.terrain.blocked(*t) for t in shown)


@pytest.mark.parametrize("fmt", PLAN_FORMATS)
def test_simplified_blocks_with_terrain_stay_in_budget(fmt: PlanFormat) -> None:
    grid = grid_of("village")
    shown = 0
    for rnd in played_rounds("village", 10):
        parts = build_batch_prompt(rnd, Tier.simplified_llm, fmt=fmt, grid=grid, intent=True)
        assert all(len(b) <= SIMPLIFIED_BLOCK_BUDGET for b in parts.agent_blocks.values())
        shown += sum('"w":' in b or '"wa":' in b for b in parts.agent_blocks.values())
    assert shown > 0


def test_a_simplified_medic_can_heal_and_the_squad_throw_explosives() -> None:
    tools = TIER_TOOLS[Tier.simplified_llm]
    assert {"Heal", "ThrowExplosive"} <= tools
    medic = snapshot(unit(1, 3, 3, squad="red", role="medic", hp=40))
    system = build_single_prompt(medic, Tier.simplified_llm).system
    assert "Heal" in system and "ThrowExplosive" in system


@pytest.mark.parametrize("tier", [Tier.simplified_llm, Tier.full_llm])
@pytest.mark.parametrize("fmt", PLAN_FORMATS)
def test_intent_switch_in_the_system_prompt(tier: Tier, fmt: PlanFormat) -> None:
    assert "intent" in system_prompt(tier, fmt, True)
    assert "intent" not in system_prompt(tier, fmt, False)
    assert system_prompt(tier, fmt, False) == system_prompt(tier, fmt)
