"""Situation hits: a plan stored for one agent, adapted to another (moved, turned) and
re-validated; a batched round asks the server only for its misses; an agent of a round
is served from a teammate's plan of the same situation; a saved cache loads back the
same."""

from __future__ import annotations

import functools
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from game.match.maps import load
from game.rules.actions import check_step
from game.rules.grid import Grid
from game.rules.pathfinding import reachable
from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import (
    POSITION_ACTS,
    SIMPLE_ACTS,
    TARGET_ACTS,
    Approach,
    Attack,
    MoveTo,
    Scan,
    Step,
    TakeCover,
    ThrowExplosive,
)
from game.rules.world import World
from planner.adapt import adapted_plan
from planner.cache import PlanCache, adapt_steps, anchor_of, situation_key
from planner.cache_store import CacheFileError, dump_cache, load_into, parse_cache
from planner.core import CachedPlan, PlanningRound
from planner.events import PlanDelivered, RoundDone
from planner.fallback import Tier
from planner.settings import PlannerSettings
from tests.factories import snapshot, unit
from tests.planning_helpers import ScriptedBackend, make_core, planning_round, run_round

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCENARIOS = ("village", "skirmish", "siege")


@functools.cache
def units_of(scenario: str) -> tuple[Grid, tuple[UnitView, ...], tuple[UnitView, ...]]:
    """A map's grid and its red and blue units as seen at a few turns into a match."""
    world = World(load(scenario), random.Random(3))
    red = tuple(world.snapshot_of(u.id).me for u in world.living("red"))
    blue = tuple(world.snapshot_of(u.id).me for u in world.living("blue"))
    return load(scenario).grid, red, blue


WALLED = Grid.from_strings(["..........#...+....."] * 8 + ["..~.......#........."] * 8)
OPEN = Grid.from_strings(["." * 30] * 20)
"""Two rooms a wall apart: a tile that is walkable but cannot be reached from the other."""


@st.composite
def agent_view(draw: st.DrawFn) -> tuple[Grid, Snapshot]:
    """A real agent of a real map (or of the two rooms, moved to a drawn tile), with a
    drawn set of the other squad in sight."""
    grid, red, blue = units_of(draw(st.sampled_from(SCENARIOS)))
    mine, theirs = (red, blue) if draw(st.booleans()) else (blue, red)
    me = draw(st.sampled_from(mine))
    if draw(st.booleans()):
        grid = WALLED
        x, y = draw(st.sampled_from([(x, y) for x in range(20) for y in range(16) if x != 10]))
        me = me.model_copy(update={"x": x, "y": y})
        mine = tuple(u.model_copy(update={"x": (u.id * 3) % 10, "y": u.id % 16}) for u in mine)
        theirs = tuple(
            u.model_copy(update={"x": 11 + (u.id * 3) % 9, "y": u.id % 16}) for u in theirs
        )
    allies = tuple(u for u in mine if u.id != me.id)
    seen = draw(st.lists(st.sampled_from(theirs), unique_by=lambda u: u.id, max_size=4))
    snap = snapshot(
        me,
        width=grid.width,
        height=grid.height,
        allies=allies,
        enemies=sorted(seen, key=lambda u: u.id),
    )
    return grid, snap


@st.composite
def stored_plan(draw: st.DrawFn, source: Snapshot) -> tuple[Step, ...]:
    """Steps as a model might have answered `source`: its tiles around it, its targets
    (and sometimes ids it never saw)."""
    ids = [u.id for u in (*source.enemies, *source.allies)] + [draw(st.integers(0, 60))]
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(("tile", "target", "simple")))
        if kind == "tile":
            act = draw(st.sampled_from(POSITION_ACTS))
            x = source.me.x + draw(st.integers(-8, 8))
            y = source.me.y + draw(st.integers(-8, 8))
            steps.append(act(x=x, y=y))
        elif kind == "target":
            act_t = draw(st.sampled_from(TARGET_ACTS))
            steps.append(act_t(target_id=draw(st.sampled_from(ids))))
        else:
            steps.append(draw(st.sampled_from(SIMPLE_ACTS))())
    return tuple(steps)


@FUZZ
@given(data=st.data())
def test_an_adapted_hit_never_targets_an_unseen_id_nor_an_unreachable_tile(
    data: st.DataObject,
) -> None:
    _, source = data.draw(agent_view())
    grid, snap = data.draw(agent_view())
    steps = data.draw(stored_plan(source))
    tier = data.draw(st.sampled_from((Tier.simplified_llm, Tier.full_llm)))
    adapted = adapted_plan(CachedPlan(steps, tier, anchor_of(source)), snap, grid)
    if adapted is None:
        return  # a rejected hit: the agent asks the LLM instead
    assert adapted.steps
    assert check_step(adapted.steps[0], snap, grid) is None  # the first step is legal now
    here = (snap.me.x, snap.me.y)
    enemies = {u.id for u in snap.enemies}
    for step in adapted.steps:
        if isinstance(step, Approach):
            assert step.target_id in enemies | {u.id for u in snap.allies}
        elif isinstance(step, TARGET_ACTS):
            assert step.target_id in enemies
        if isinstance(step, MoveTo | TakeCover):
            assert reachable(grid, here, (step.x, step.y))
    assert adapted.anchor == anchor_of(snap)  # stored again, it adapts from here


def test_targets_follow_their_slot_and_tiles_the_agent() -> None:
    grid = Grid.from_strings(["." * 20] * 16)
    source = snapshot(
        unit(1, 4, 4),
        enemies=(unit(9, 8, 4, squad="blue"), unit(7, 4, 10, squad="blue")),
        width=grid.width,
        height=grid.height,
    )
    # Another agent, two tiles along, whose nearest enemy is 12 and next nearest 15.
    dest = snapshot(
        unit(3, 6, 4),
        enemies=(unit(12, 10, 4, squad="blue"), unit(15, 6, 10, squad="blue")),
        width=grid.width,
        height=grid.height,
    )
    plan = CachedPlan(
        (Attack(target_id=9), MoveTo(x=5, y=5), Attack(target_id=7)),
        Tier.simplified_llm,
        anchor_of(source),
    )
    adapted = adapted_plan(plan, dest, grid)
    assert adapted is not None
    assert adapted.steps == (Attack(target_id=12), MoveTo(x=7, y=5), Attack(target_id=15))
    assert situation_key("m", "t", {}, source) == situation_key("m", "t", {}, dest)
    # No enemy in sight: the attacks have no counterpart; nothing legal is left of a plan
    # that only attacked, so it is rejected.
    blind = dest.model_copy(update={"enemies": ()})
    only_attacks = replace(plan, steps=(Attack(target_id=9),))
    assert adapted_plan(only_attacks, blind, grid) is None


def _all_answers(request: object) -> str:
    ids = request.agent_ids  # type: ignore[attr-defined]
    plans = ",".join(f'{{"agent_id":{a},"steps":[{{"act":"Scan"}}]}}' for a in ids)
    return '{"plans":[' + plans + "]}"


def test_a_batched_round_asks_only_for_its_misses_and_stores_each_agent_alone() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = ScriptedBackend([_all_answers, _all_answers])
    core = make_core(backend)
    # exact keys only: no agent is served from a teammate's plan of the same situation
    batched = PlannerSettings(mode="batched", similarity=False)
    run_round(core, batched, planning)
    assert sorted(backend.requests[0].agent_ids) == ids
    assert len(core.cache) == len(ids)  # one entry per agent, not one per batch
    # Next round: two agents are in a new situation (hurt badly), the rest unchanged.
    hurt = set(ids[:2])
    snaps = tuple(
        s.model_copy(update={"me": s.me.model_copy(update={"hp": 5})}) if s.me.id in hurt else s
        for s in planning.snapshots
    )
    events = run_round(core, batched, replace(planning, round_id=2, snapshots=snaps))
    assert len(backend.requests) == 2
    assert sorted(backend.requests[1].agent_ids) == sorted(hurt)
    delivered = {e.outcome.agent_id: e.outcome for e in events if isinstance(e, PlanDelivered)}
    assert set(delivered) == set(ids)
    assert {a for a, o in delivered.items() if o.from_cache} == set(ids) - hurt
    stats = next(e.stats for e in events if isinstance(e, RoundDone))
    assert (stats.cache_hits, stats.cache_misses) == (len(ids) - 2, 2)


def test_a_saved_cache_loaded_into_a_new_game_gives_the_same_hits() -> None:
    planning = planning_round()
    core = make_core(ScriptedBackend([_all_answers]))
    run_round(core, PlannerSettings(mode="batched", similarity=True), planning)
    text = dump_cache(core.cache)
    # The next game's first round: another agent set of the same squad, moved a little.
    moved = tuple(
        s.model_copy(update={"me": s.me.model_copy(update={"id": s.me.id + 100})})
        for s in planning.snapshots
    )
    later = replace(planning, round_id=1, snapshots=moved)

    def hits(cache: PlanCache[CachedPlan]) -> list[tuple[int, bool, tuple[Step, ...]]]:
        fresh = make_core(ScriptedBackend([_all_answers]))
        fresh.cache = cache
        events = run_round(fresh, PlannerSettings(mode="batched", similarity=True), later)
        return sorted(
            (e.outcome.agent_id, e.outcome.from_cache, e.outcome.steps)
            for e in events
            if isinstance(e, PlanDelivered)
        )

    loaded: PlanCache[CachedPlan] = PlanCache(64)
    load_into(loaded, parse_cache(text, "saved.json"))
    assert loaded.items_lru_first() == core.cache.items_lru_first()
    in_memory = hits(core.cache)
    assert any(from_cache for _, from_cache, _ in in_memory)  # adapted to the new ids
    assert hits(loaded) == in_memory


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ('{"version":2,"entries":[]}', "version"),
        ('{"version":1,"entries":[{"key":"k"}]}', "entries.0.key"),
        (
            '{"version":1,"entries":[{"key":"' + "a" * 64 + '","situation":null,'
            '"tier":"heuristic","steps":[{"act":"Scan"}],"anchor":null}]}',
            "not an LLM tier",
        ),
        (
            '{"version":1,"entries":[{"key":"' + "a" * 64 + '","situation":null,'
            '"tier":"full_llm","steps":[{"act":"Fly"}],"anchor":null}]}',
            "entries.0.steps.0",
        ),
    ],
)
def test_a_bad_cache_file_is_one_line_naming_the_problem(text: str, says: str) -> None:
    with pytest.raises(CacheFileError) as caught:
        parse_cache(text, "c.json")
    message = str(caught.value)
    assert message.startswith("c.json: ") and says in message and "\n" not in message


def test_rule_plans_are_not_saved() -> None:
    cache: PlanCache[CachedPlan] = PlanCache(8)
    cache.put("a" * 64, CachedPlan((Scan(),), Tier.heuristic))
    cache.put("b" * 64, CachedPlan((Scan(),), Tier.full_llm))
    entries = parse_cache(dump_cache(cache), "c.json")
    assert [key for key, _, _ in entries] == ["b" * 64]


def test_an_adapted_move_into_a_room_it_cannot_reach_is_rejected() -> None:
    # Validation alone keeps a later MoveTo onto any walkable tile; an adapted plan was
    # chosen for other ground, so every tile it moves to must be reachable from here.
    source = snapshot(unit(1, 2, 2), width=20, height=16)
    plan = CachedPlan((Scan(), MoveTo(x=5, y=2)), Tier.simplified_llm, anchor_of(source))
    here = snapshot(unit(4, 12, 2), width=20, height=16)  # across the wall, MoveTo(15, 2)
    assert adapted_plan(plan, here, WALLED) is not None
    across = replace(plan, steps=(Scan(), MoveTo(x=15, y=2)))  # walkable, other room
    assert adapted_plan(across, source, WALLED) is None


def test_an_adapted_plan_is_turned_to_face_the_agents_own_nearest_enemy() -> None:
    # Stored: the enemy 5 tiles east; move two tiles towards it, then attack it.
    source = snapshot(unit(1, 5, 5), width=30, height=20, enemies=(unit(9, 10, 5, squad="blue"),))
    steps = (MoveTo(x=7, y=5), Attack(target_id=9))
    # Here the nearest enemy is 5 tiles north: the same situation, turned a quarter.
    here = snapshot(unit(2, 20, 12), width=30, height=20, enemies=(unit(12, 20, 7, squad="blue"),))
    assert situation_key("m", "t", {}, source) == situation_key("m", "t", {}, here)
    assert adapt_steps(steps, anchor_of(source), here) == (
        MoveTo(x=20, y=10),
        Attack(target_id=12),
    )
    # No enemy in sight on either side: the plan faces the objective instead.
    calm = snapshot(unit(1, 5, 5), width=30, height=20, objective=(5, 15))  # south
    calm_here = snapshot(unit(2, 20, 12), width=30, height=20, objective=(10, 12))  # west
    moved = adapt_steps((MoveTo(x=5, y=8),), anchor_of(calm), calm_here)
    assert moved == (MoveTo(x=17, y=12),)


def test_an_adapted_plan_keeps_its_landmarks_cover_that_reaches_the_enemy_and_the_objective() -> (
    None
):
    # Stored: cover 3 tiles off from which the enemy is in range, then the objective.
    source = snapshot(
        unit(1, 5, 5),
        width=30,
        height=20,
        enemies=(unit(9, 13, 5, squad="blue"),),  # out of range (7)
        cover=((5, 6), (7, 3)),  # the nearest listed tile cannot reach the enemy
        objective=(14, 5),
    )
    steps = (TakeCover(x=7, y=3), Attack(target_id=9), MoveTo(x=14, y=5), MoveTo(x=12, y=6))
    # Here: other cover tiles, at other offsets; the objective and the enemy elsewhere.
    here = snapshot(
        unit(2, 20, 12),
        width=30,
        height=20,
        enemies=(unit(12, 12, 12, squad="blue"),),
        cover=((21, 12), (17, 14), (23, 12)),
        objective=(11, 12),
    )
    assert situation_key("m", "t", {}, source) == situation_key("m", "t", {}, here)
    assert adapt_steps(steps, anchor_of(source), here) == (
        TakeCover(x=17, y=14),  # the cover here that reaches this agent's enemy
        Attack(target_id=12),
        MoveTo(x=11, y=12),  # the objective, wherever it is
        MoveTo(x=13, y=11),  # one tile past the enemy, turned as the plan is turned
    )
    # A landmark with no counterpart here (no cover reaches the enemy): no plan.
    bare = here.model_copy(update={"cover": ((23, 12),)})
    assert adapt_steps(steps, anchor_of(source), bare) is None


def test_an_adapted_move_onto_a_wall_shifts_to_the_nearest_tile_it_can_reach() -> None:
    source = snapshot(unit(1, 5, 2), width=20, height=16)
    plan = CachedPlan((MoveTo(x=8, y=2),), Tier.simplified_llm, anchor_of(source))
    here = snapshot(unit(4, 7, 2), width=20, height=16)  # 3 tiles east is the wall (x=10)
    adapted = adapted_plan(plan, here, WALLED)
    assert adapted is not None
    (step,) = adapted.steps
    assert isinstance(step, MoveTo) and (step.x, step.y) == (9, 1)  # one tile off, this side
    assert reachable(WALLED, (7, 2), (step.x, step.y))


def _first_agent_only(request: object) -> str:
    first = request.agent_ids[0]  # type: ignore[attr-defined]
    return '{"plans":[{"agent_id":' + str(first) + ',"steps":[{"act":"MoveTo","x":6,"y":6}]}]}'


def test_a_teammate_in_the_same_situation_is_served_from_the_first_plan_of_the_round() -> None:
    # Two riflemen, unhurt, no enemy in sight: one situation. The first plan to land serves
    # the other (moved to it and validated), whose own request is then never sent.
    grid = Grid.from_strings(["." * 20] * 16)
    a = snapshot(unit(1, 4, 4), width=20, height=16, allies=(unit(2, 10, 10),))
    b = snapshot(unit(2, 10, 10), width=20, height=16, allies=(unit(1, 4, 4),))
    assert situation_key("m", "t", {}, a) == situation_key("m", "t", {}, b)
    backend = ScriptedBackend([_first_agent_only, _first_agent_only])
    core = make_core(backend)
    planning = replace(planning_round(), snapshots=(a, b), grid=grid)
    events = run_round(core, PlannerSettings(mode="sequential", similarity=True), planning)
    assert [r.agent_ids for r in backend.requests] == [(1,)]
    delivered = {e.outcome.agent_id: e.outcome for e in events if isinstance(e, PlanDelivered)}
    assert not delivered[1].from_cache and delivered[1].steps == (MoveTo(x=6, y=6),)
    assert delivered[2].from_cache and delivered[2].steps == (MoveTo(x=12, y=12),)
    stats = next(e.stats for e in events if isinstance(e, RoundDone))
    assert (stats.cache_hits, stats.cache_misses, stats.cache_adapted) == (1, 1, 1)
    # With the situation index off, each asks for itself.
    backend = ScriptedBackend([_first_agent_only, _first_agent_only])
    events = run_round(
        make_core(backend), PlannerSettings(mode="sequential", similarity=False), planning
    )
    assert [r.agent_ids for r in backend.requests] == [(1,), (2,)]


def test_an_adapted_hit_states_its_own_intent_not_the_stored_one() -> None:
    # The stored intent named the other agent's target: the adapted plan says its own.
    source = snapshot(unit(1, 5, 5), width=30, height=20, enemies=(unit(9, 10, 5, squad="blue"),))
    here = snapshot(unit(2, 20, 12), width=30, height=20, enemies=(unit(12, 20, 7, squad="blue"),))
    steps = (Attack(target_id=9),)
    stored = CachedPlan(steps, Tier.simplified_llm, anchor_of(source), "focus fire on #9")
    adapted = adapted_plan(stored, here, OPEN)
    assert adapted is not None and adapted.intent == "focus fire on #12"
    silent = adapted_plan(replace(stored, intent=None), here, OPEN)
    assert silent is not None and silent.intent is None  # intents off: none made up


def test_an_adapted_throw_stays_on_its_enemy_and_never_catches_an_ally() -> None:
    # Stored: a grenade at the free tile beside the enemy (also a listed cover tile).
    source = snapshot(
        unit(1, 10, 5, grenades=1),
        width=30,
        height=20,
        enemies=(unit(9, 14, 5, squad="blue"),),
        allies=(unit(2, 9, 6),),
        cover=((13, 5),),
    )
    steps = (ThrowExplosive(x=13, y=5), Attack(target_id=9))
    here = snapshot(
        unit(3, 10, 12, grenades=1),
        width=30,
        height=20,
        enemies=(unit(12, 16, 12, squad="blue"),),
        allies=(unit(4, 12, 13),),
        cover=((12, 12),),  # beside the ally: a cover landmark would land the blast on it
    )
    assert adapt_steps(steps, anchor_of(source), here) == (
        ThrowExplosive(x=15, y=12),  # beside this agent's enemy, as it was beside its own
        Attack(target_id=12),
    )
    # An ally beside the enemy here: the blast would catch it, so the hit is rejected.
    crowded = here.model_copy(update={"allies": (unit(4, 15, 13),)})
    assert adapt_steps(steps, anchor_of(source), crowded) is None
    # A throw at no enemy (the stored one was not aimed at any): rejected too.
    stray = (ThrowExplosive(x=10, y=9),)
    assert adapt_steps(stray, anchor_of(source), here) is None


def test_an_agent_still_in_the_situation_of_its_cached_plan_is_asked_afresh() -> None:
    # A lone scout with nothing in sight answers Scan: a plan that leaves it where it was.
    # Rounds in situation A: asked, served from the cache, then (still in A after that
    # cached plan) asked afresh rather than served the Scan twice running, then served.
    # Then situation B (hurt): asked, served; back in A it is served at once, since the
    # cached plan it was last given was B's.
    grid = Grid.from_strings(["." * 20] * 16)
    a = snapshot(unit(1, 4, 4, role="scout"), width=20, height=16)
    b = a.model_copy(update={"me": a.me.model_copy(update={"hp": 40})})
    backend = ScriptedBackend([_all_answers] * 8)
    core = make_core(backend)
    settings = PlannerSettings(mode="batched", similarity=True)
    served: list[bool] = []
    refreshed: list[int] = []
    for round_id, snap in enumerate((a, a, a, a, b, b, a), start=1):
        events = run_round(core, settings, PlanningRound(round_id, "red", (snap,), grid))
        (outcome,) = (e.outcome for e in events if isinstance(e, PlanDelivered))
        served.append(outcome.from_cache)
        stats = next(e.stats for e in events if isinstance(e, RoundDone))
        refreshed.append(stats.cache_refreshed)
        assert stats.cache_hits + stats.cache_misses == 1
    assert served == [False, True, False, True, False, True, True]
    assert refreshed == [0, 0, 1, 0, 0, 0, 0]
    assert len(backend.requests) == 3


def test_agents_asked_afresh_get_the_models_new_answer_not_the_stored_plan() -> None:
    # Three riflemen in one situation. Round 1: the first is asked (MoveTo 6,6), the other
    # two are served its plan. Round 2: the first is served that plan from the cache; the
    # other two, still in the situation of the cached plan they were given, are asked
    # afresh: the model's new answer (MoveTo 7,7) for the first of them serves the other
    # (a teammate's new plan of its situation), never the stored one again.
    grid = Grid.from_strings(["." * 20] * 16)
    spots = {1: (4, 4), 2: (10, 10), 3: (14, 4)}

    def snap_of(uid: int) -> Snapshot:
        others = tuple(unit(o, *spots[o]) for o in spots if o != uid)
        return snapshot(unit(uid, *spots[uid]), width=20, height=16, allies=others)

    answers = iter(((6, 6), (7, 7), (8, 8)))

    def first_only(request: object) -> str:
        x, y = next(answers)
        first = request.agent_ids[0]  # type: ignore[attr-defined]
        return f'{{"plans":[{{"agent_id":{first},"steps":[{{"act":"MoveTo","x":{x},"y":{y}}}]}}]}}'

    snaps = tuple(snap_of(uid) for uid in spots)
    backend = ScriptedBackend([first_only] * 3)
    core = make_core(backend)
    settings = PlannerSettings(mode="sequential", similarity=True)
    first = run_round(core, settings, PlanningRound(1, "red", snaps, grid))
    assert len([e for e in first if isinstance(e, PlanDelivered)]) == 3
    assert [r.agent_ids for r in backend.requests] == [(1,)]
    second = run_round(core, settings, PlanningRound(2, "red", snaps, grid))
    outcomes = {e.outcome.agent_id: e.outcome for e in second if isinstance(e, PlanDelivered)}
    assert outcomes[1].from_cache and outcomes[1].steps == (MoveTo(x=6, y=6),)
    assert [r.agent_ids for r in backend.requests[1:]] == [(2,)]
    assert not outcomes[2].from_cache and outcomes[2].steps == (MoveTo(x=7, y=7),)
    # agent 3 gets agent 2's new plan moved to it (7,7 is 3 tiles down-left of agent 2)
    assert outcomes[3].from_cache and outcomes[3].steps == (MoveTo(x=11, y=1),)
    stats = next(e.stats for e in second if isinstance(e, RoundDone))
    assert stats.cache_refreshed == 2 and stats.cache_hits == 2
