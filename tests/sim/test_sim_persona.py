"""The sim's personas and intents: each persona plays its own way (deterministic seeds),
says why in a short intent when asked, keeps off the walls its prompt showed, and is
named wherever the sim names itself."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from game.__main__ import main
from game.rules.grid import Grid
from game.rules.steps import MoveTo
from planner.bench.data import grid_of, played_rounds
from planner.fallback import TIER_TOOLS, Tier
from planner.prompts import build_batch_prompt, decode_agents
from planner.schema import INTENT_MAX_CHARS, INTENT_PATTERN, AgentPlan
from planner.sim.backend import SimBackend
from planner.sim.model import PRESETS, SimModel, asks_intent, compose_plans, mind_the_terrain
from planner.sim.persona import PERSONAS, resolve
from planner.terrain import NO_TERRAIN, near
from planner.validate import validate_plan
from tests.factories import snapshot, unit


def action_mix(persona: str | None, tier: Tier = Tier.full_llm) -> Counter[str]:
    grid = grid_of("village")
    mix: Counter[str] = Counter()
    for k, rnd in enumerate(played_rounds("village", 12)):
        parts = build_batch_prompt(rnd, tier, fmt="compact", grid=grid, intent=True)
        agents = decode_agents(parts.user)
        plans = compose_plans(
            [a.snap for a in agents],
            random.Random(k),
            TIER_TOOLS[tier],
            terrains=[a.terrain for a in agents],
            persona=persona,
            intent=True,
        )
        mix.update(step.act for _, steps, _ in plans for step in steps)
    return mix


def share(mix: Counter[str], *acts: str) -> float:
    return sum(mix[a] for a in acts) / max(1, sum(mix.values()))


BASE = action_mix(None)


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_persona_changes_the_action_mix(persona: str) -> None:
    mix = action_mix(persona)
    assert mix != BASE
    # the mixes are far apart: at least a fifth of the steps differ in kind
    total = sum(mix.values())
    overlap = sum(min(mix[a] / total, BASE[a] / sum(BASE.values())) for a in mix)
    assert overlap < 0.8, (persona, mix, BASE)


def test_each_persona_plays_to_its_temperament() -> None:
    mixes = {p: action_mix(p) for p in PERSONAS}
    assert mixes["aggressive"]["TakeCover"] == 0
    assert share(mixes["aggressive"], "Attack", "Approach", "ThrowExplosive") > share(
        BASE, "Attack", "Approach", "ThrowExplosive"
    )
    assert share(mixes["cautious"], "TakeCover", "Block", "Retreat") > 2 * share(
        BASE, "TakeCover", "Block", "Retreat"
    )
    assert share(mixes["objective"], "MoveTo", "Block") > share(BASE, "MoveTo", "Block")
    assert share(mixes["support"], "Heal", "ThrowSmoke", "MarkTarget") > 2 * share(
        BASE, "Heal", "ThrowSmoke", "MarkTarget"
    )


def test_the_same_seed_gives_the_same_plans() -> None:
    assert action_mix("support") == action_mix("support")


@pytest.mark.parametrize("persona", [None, *PERSONAS])
def test_the_sim_writes_a_short_plain_intent_only_when_asked(persona: str | None) -> None:
    grid = grid_of("village")
    [rnd, *_] = played_rounds("village", 1)
    for asked in (True, False):
        parts = build_batch_prompt(rnd, Tier.simplified_llm, fmt="compact", grid=grid, intent=asked)
        assert asks_intent(parts.system) is asked
        snaps = [a.snap for a in decode_agents(parts.user)]
        plans = compose_plans(snaps, random.Random(1), persona=persona, intent=asked)
        for _, _, intent in plans:
            if asked:
                assert intent and len(intent) <= INTENT_MAX_CHARS
                assert re.fullmatch(INTENT_PATTERN, intent), intent
            else:
                assert intent is None


def test_moves_keep_off_the_walls_the_prompt_showed() -> None:
    grid = Grid.from_strings(["#######", "#.....#", "#.###.#", "#.....#", "#######"])
    snap = snapshot(unit(1, 1, 1), width=7, height=5)
    terrain = near(grid, 1, 1, 5)
    [step] = mind_the_terrain([MoveTo(x=3, y=2)], snap, terrain)
    assert isinstance(step, MoveTo) and grid.walkable(step.x, step.y)
    assert max(abs(step.x - 3), abs(step.y - 2)) == 1


def test_persona_by_name_or_seed_and_its_label() -> None:
    assert resolve(None, 3) is None
    assert resolve("cautious", 3) == "cautious"
    assert [resolve("seed", s) for s in range(4)] == list(PERSONAS)
    with pytest.raises(ValueError, match="unknown persona"):
        resolve("berserk", 0)
    sim = SimModel(PRESETS["instant"], seed=2, persona="seed")
    assert sim.persona == PERSONAS[2]
    assert sim.model_name == f"sim-instant-{PERSONAS[2]}"
    backend = SimBackend(sim, clock=SimBackend.create("instant").clock)
    assert f"simulated persona {PERSONAS[2]}" in backend.describe()
    assert SimModel(PRESETS["gpu"]).model_name == "sim-gpu"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["--backend", "openai", "--url", "http://127.0.0.1:9/v1", "--persona", "cautious"],
            "--persona shapes the built-in simulated LLM only",
        ),
        (["--persona", "berserk"], "invalid choice: 'berserk'"),
    ],
)
def test_a_persona_it_cannot_use_is_one_line_and_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--headless", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("persona", [None, *PERSONAS])
def test_the_sim_never_aims_a_move_at_a_wall_or_water_it_was_shown(persona: str | None) -> None:
    """What validation still repairs lies beyond the terrain the prompt showed; with the
    terrain shown, fewer steps need repairing than without it."""
    repaired = {True: 0, False: 0}
    for scenario in ("village", "siege"):
        grid = grid_of(scenario)
        tools = TIER_TOOLS[Tier.simplified_llm]
        for k, rnd in enumerate(played_rounds(scenario, 8)):
            real = {s.me.id: s for s in rnd}
            agents = decode_agents(build_batch_prompt(rnd, Tier.simplified_llm, grid=grid).user)
            for shown in (True, False):
                terrains = [a.terrain if shown else NO_TERRAIN for a in agents]
                snaps = [a.snap for a in agents]
                plans = compose_plans(
                    snaps, random.Random(k), tools, terrains=terrains, persona=persona
                )
                for (agent_id, steps, _), terrain in zip(plans, terrains, strict=True):
                    plan = AgentPlan(agent_id=agent_id, steps=tuple(steps))
                    checked = validate_plan(plan, real[agent_id], grid, tools)
                    repaired[shown] += len(checked.repaired)
                    for r in checked.repaired if shown else ():
                        assert isinstance(r.step, MoveTo)
                        assert not terrain.blocked(r.step.x, r.step.y)
    assert repaired[True] <= repaired[False]
    if persona is None:
        assert repaired[True] < repaired[False]
