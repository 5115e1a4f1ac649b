"""Fair maps and tie-breaks: a mirrored world gives mirrored decisions.

Every shipped map is its own mirror image (left-right, colours swapped), and the rules
break every tie by geometry that a mirror keeps (`mirror_tie`), never by unit id or
reading order. So from any position reached in a match, the mirrored position (flip x,
swap colours) must give each unit the mirror image of its counterpart's snapshot and
plan.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from game.match.controllers import HeuristicController, controller_rng
from game.match.maps import load, names
from game.rules.heuristic import plan
from game.rules.pathfinding import find_path
from game.rules.scenarios import SQUADS, Spawn, flipped
from game.rules.snapshot import Snapshot
from game.rules.steps import Step
from game.rules.world import World

OTHER = {SQUADS[0]: SQUADS[1], SQUADS[1]: SQUADS[0]}


def mirrored(world: World) -> tuple[World, dict[int, int]]:
    """The world flipped left to right with colours swapped, and old id -> new id."""
    w = world.grid.width
    units = sorted(world.units.values(), key=lambda u: (u.y, w - 1 - u.x, u.id))
    base = flipped(world.scenario, swap_squads=True)
    spawns = tuple(Spawn(w - 1 - u.x, u.y, OTHER[u.squad], u.role) for u in units)
    out = World(dataclasses.replace(base, spawns=spawns), random.Random(0))
    ids = {u.id: new for new, u in enumerate(units, start=1)}
    for u in units:
        m = out.units[ids[u.id]]
        for name in ("hp", "ammo", "grenades", "posture", "marked_until", "stunned"):
            setattr(m, name, getattr(u, name))
        m.scan_until, m.dead = u.scan_until, u.dead
    out.tick = world.tick
    out.smoke = {(w - 1 - x, y): until for (x, y), until in world.smoke.items()}
    out.touch()
    return out, ids


def flip_step(step: Step, w: int, ids: dict[int, int]) -> Step:
    data = step.model_dump()
    if "x" in data:
        data["x"] = w - 1 - data["x"]
    if "target_id" in data:
        data["target_id"] = ids[data["target_id"]]
    return type(step).model_validate(data)


def flip_snapshot(snap: Snapshot, w: int, ids: dict[int, int]) -> dict[str, object]:
    """A snapshot's content with positions flipped and ids renamed (units as sets, cover
    and smoke in the order given)."""

    def view(v: object) -> tuple[object, ...]:
        d = v.model_dump()  # type: ignore[attr-defined]
        return (ids[d["id"]], OTHER[d["squad"]], d["role"], w - 1 - d["x"], d["y"], d["hp"],
                d["ammo"], d["status"], d["grenades"])  # fmt: skip

    return {
        "me": view(snap.me),
        "allies": {view(a) for a in snap.allies},
        "enemies": {view(e) for e in snap.enemies},
        "cover": [(w - 1 - x, y) for x, y in snap.cover],
        "smoke": {(w - 1 - x, y) for x, y in snap.smoke},
    }


def plain(snap: Snapshot) -> dict[str, object]:
    def view(v: object) -> tuple[object, ...]:
        d = v.model_dump()  # type: ignore[attr-defined]
        return (d["id"], d["squad"], d["role"], d["x"], d["y"], d["hp"], d["ammo"], d["status"],
                d["grenades"])  # fmt: skip

    return {
        "me": view(snap.me),
        "allies": {view(a) for a in snap.allies},
        "enemies": {view(e) for e in snap.enemies},
        "cover": list(snap.cover),
        "smoke": set(snap.smoke),
    }


def positions(scenario_name: str, seed: int, stops: tuple[int, ...]) -> list[World]:
    """Copies of a rule-planner match at the given ticks (each a fresh replay)."""
    out = []
    for stop in stops:
        world = World(load(scenario_name), random.Random(seed))
        ctl = {s: HeuristicController(controller_rng(seed, s)) for s in SQUADS}
        while world.tick < stop and world.winner is None:
            if world.tick % 12 == 0:
                for squad, c in ctl.items():
                    for uid, steps in c.plan_turn(world, squad).items():
                        world.assign_plan(uid, steps)
            world.step_tick()
        out.append(world)
    return out


@pytest.mark.parametrize("name", names())
def test_shipped_maps_are_their_own_mirror(name: str) -> None:
    scenario = load(name)
    twin = flipped(scenario, swap_squads=True)
    assert twin.grid.rows == scenario.grid.rows
    assert twin.spawns == scenario.spawns
    assert twin.objective == scenario.objective


@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("seed", [1, 2])
def test_mirrored_world_gives_mirrored_snapshots_and_plans(name: str, seed: int) -> None:
    checked = 0
    for world in positions(name, seed, (0, 30, 66)):
        twin, ids = mirrored(world)
        w = world.grid.width
        for u in world.living():
            mine = world.snapshot_of(u.id)
            theirs = twin.snapshot_of(ids[u.id])
            assert plain(theirs) == flip_snapshot(mine, w, ids), (world.tick, u.id)
            expected = [flip_step(s, w, ids) for s in plan(mine, random.Random(seed))]
            assert plan(theirs, random.Random(seed)) == expected, (world.tick, u.id)
            checked += 1
    assert checked > 10


def test_a_star_path_mirrors_on_open_ground() -> None:
    # Open ground offers many equal paths: the mirrored query must take the mirrored one.
    grid = load("village").grid
    w = grid.width
    a, b = (3, 2), (12, 7)
    path = find_path(grid, a, b)
    twin = find_path(flipped(load("village")).grid, (w - 1 - a[0], a[1]), (w - 1 - b[0], b[1]))
    assert path is not None and twin == [(w - 1 - x, y) for x, y in path]


class RecordedOrder(random.Random):
    """The world's RNG, remembering each tick's shuffled unit order."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.orders: list[list[int]] = []

    def shuffle(self, x: Any) -> None:
        super().shuffle(x)
        self.orders.append([u.id for u in x])


class MirroredOrder(random.Random):
    """Rolls what `RecordedOrder` rolls, and acts the counterparts in its recorded order."""

    def __init__(self, seed: int, recorded: RecordedOrder, ids: dict[int, int]) -> None:
        super().__init__(seed)
        self.recorded, self.ids = recorded, ids

    def shuffle(self, x: Any) -> None:
        super().shuffle(list(range(len(x))))  # the same draws as the original's shuffle
        by_id = {u.id: u for u in x}
        x[:] = [by_id[self.ids[i]] for i in self.recorded.orders.pop(0)]


@pytest.mark.parametrize("name", names())
def test_a_mirrored_match_plays_out_as_the_mirror_image(name: str) -> None:
    # Same rolls, counterparts acting in the same order, mirrored plans: every tick of the
    # match must be the mirror image, down to the winner (colours swapped).
    seed = 0
    world = World(load(name), RecordedOrder(seed))
    twin, ids = mirrored(world)
    twin.rng = MirroredOrder(seed, world.rng, ids)  # type: ignore[arg-type]
    w = world.grid.width
    planner_rng = random.Random(seed)
    while world.winner is None and world.tick < 3000:
        if world.tick % 12 == 0:
            for u in world.living():
                steps = plan(world.snapshot_of(u.id), planner_rng)
                world.assign_plan(u.id, steps)
                twin.assign_plan(ids[u.id], [flip_step(s, w, ids) for s in steps])
        world.step_tick()
        twin.step_tick()
        for u in world.units.values():
            m = twin.units[ids[u.id]]
            assert (w - 1 - u.x, u.y, u.hp, u.ammo, u.posture) == (
                m.x,
                m.y,
                m.hp,
                m.ammo,
                m.posture,
            ), (world.tick, u.id)
    assert world.winner in ("blue", "red")
    assert twin.winner == OTHER[world.winner]
