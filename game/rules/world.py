"""The pure tactical world: units, smoke, sight, ticks, turns and the winner.

No pygame, no I/O, no clock: the caller passes a seeded `random.Random` and calls
`step_tick()`; everything else follows deterministically. Units act one at a
time in an order shuffled every tick by the world's RNG, so neither squad gets a
standing first-move advantage (ids follow map reading order). Hits
land at once but deaths resolve together at the end of the tick, so a unit shot
down still fires its own shot in that tick. How each action changes the world lives in
`game.rules.effects`; this module owns the state and the primitives those use.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from game.rules import actions, effects
from game.rules.actions import IllegalCode
from game.rules.grid import NEIGHBOURS_8, Grid, mirror_tie
from game.rules.pathfinding import distance_field
from game.rules.scenarios import SQUADS, Scenario
from game.rules.sight import can_see, dist2
from game.rules.snapshot import COVER_RADIUS, MAX_COVER_LISTED, Snapshot, UnitView
from game.rules.state import Died, Effect, Refusal, Unit
from game.rules.steps import MAX_STEPS, Step

COMMITTED = frozenset({"Reload", "Heal", "ThrowSmoke", "ThrowExplosive", "AoEAttack", "Attack"})
"""Steps that, once started, finish even when a new plan arrives (a half-done Reload
would leave the magazine empty)."""
TICKS_PER_TURN = 12
"""Ticks in one planning turn."""
TICK_SECONDS = 0.25
"""Game time one tick stands for (a turn is 3 s)."""
EFFECT_TTL_TICKS = 8
"""Visual effects older than this many ticks are pruned."""
MAX_REFUSALS_KEPT = 500
MAX_FIELDS_CACHED = 64

Tile = tuple[int, int]
Winner = Literal["blue", "red", "draw"]
WinReason = Literal["wiped", "both_wiped", "objective", "turn_limit"]


class World:
    """Live match state. Mutated only by `assign_plan` and `step_tick` (single thread)."""

    def __init__(
        self, scenario: Scenario, rng: random.Random, *, turn_limit: int | None = None
    ) -> None:
        self.scenario = scenario
        self.grid: Grid = scenario.grid
        self.rng = rng
        self.turn_limit = turn_limit if turn_limit is not None else scenario.turn_limit
        self.tick = 0
        self.units: dict[int, Unit] = {}
        for uid, sp in enumerate(scenario.spawns, start=1):
            st = actions.ROLE_STATS[sp.role]
            self.units[uid] = Unit(uid, sp.squad, sp.role, sp.x, sp.y, st.hp, st.ammo, st.grenades)
        self.smoke: dict[Tile, int] = {}
        """Smoke tile -> tick at which it clears."""
        self.effects: list[Effect] = []
        self.refusals: list[Refusal] = []
        self.invalid_steps = 0
        """Steps refused when they came to start: stale ones plus illegal ones."""
        self.invalid_by_squad: dict[str, int] = dict.fromkeys(SQUADS, 0)
        self.stale_by_squad: dict[str, int] = dict.fromkeys(SQUADS, 0)
        """Refused because the world changed since the plan: its target fell or moved."""
        self.illegal_by_squad: dict[str, int] = dict.fromkeys(SQUADS, 0)
        """Refused and not stale: illegal as planned."""
        self.retargeted_by_squad: dict[str, int] = dict.fromkeys(SQUADS, 0)
        """Attacks and Approaches whose target fell, turned on the next enemy instead."""
        self.actions_by_squad: dict[str, dict[str, int]] = {s: {} for s in SQUADS}
        """Steps started, per squad and action (what the squads actually do)."""
        self.hold: dict[str, int] = dict.fromkeys(SQUADS, 0)
        """Consecutive turns each squad has held the objective alone."""
        self._winner: Winner | None = None
        self._win_reason: WinReason | None = None
        self._version = 0
        self._vis_version = -1
        self._vis: dict[str, frozenset[int]] = {}
        self._objective = frozenset(scenario.objective)
        self._cover_tiles = scenario.grid.tiles_of("cover")
        self._fields: dict[Tile, tuple[int, ...]] = {}
        self._goal_requests: dict[Tile, int] = {}
        self._views: dict[int, tuple[tuple[int, int, int, int, int, str], UnitView]] = {}

    # ------------------------------------------------------------ queries
    @property
    def turn(self) -> int:
        return self.tick // TICKS_PER_TURN

    @property
    def winner(self) -> Winner | None:
        return self._winner

    @property
    def win_reason(self) -> WinReason | None:
        """How the match ended: a squad wiped out, both, the objective held, or the turn limit."""
        return self._win_reason

    @property
    def cover_tiles(self) -> tuple[Tile, ...]:
        return self._cover_tiles

    def living(self, squad: str | None = None) -> Iterator[Unit]:
        """Units with hp left, ascending id (optionally of one squad): targets, allies, counts."""
        for uid in sorted(self.units):
            u = self.units[uid]
            if u.hp > 0 and (squad is None or u.squad == squad):
                yield u

    def alive_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SQUADS, 0)
        for u in self.living():
            counts[u.squad] = counts.get(u.squad, 0) + 1
        return counts

    def occupant(self, tile: Tile) -> Unit | None:
        for u in self.units.values():
            if not u.dead and u.pos == tile:
                return u
        return None

    def occupied(self, exclude: int | None = None) -> set[Tile]:
        return {u.pos for u in self.units.values() if not u.dead and u.id != exclude}

    def smoke_tiles(self) -> frozenset[Tile]:
        return frozenset(self.smoke)

    def sight_of(self, u: Unit) -> int:
        bonus = actions.SCAN_SIGHT_BONUS if self.tick <= u.scan_until else 0
        return u.stats.sight + bonus

    def visible_enemy_ids(self, squad: str) -> frozenset[int]:
        """Ids of living enemies any unit of `squad` can see (cached per tick)."""
        if self._vis_version != self._version:
            self._vis = self._compute_visibility()
            self._vis_version = self._version
        return self._vis.get(squad, frozenset())

    def visible_enemies(self, squad: str) -> list[Unit]:
        ids = self.visible_enemy_ids(squad)
        return [u for u in self.living() if u.id in ids]

    def unit_status(self, u: Unit) -> str:
        """Posture plus timed conditions, e.g. "cover" or "moving,marked"."""
        if u.hp <= 0:
            return "dead"
        parts = [u.posture]
        if self.tick < u.marked_until:
            parts.append("marked")
        if u.stunned > 0:
            parts.append("distracted")
        if self.tick <= u.scan_until:
            parts.append("scanning")
        return ",".join(parts)

    def unit_view(self, u: Unit) -> UnitView:
        """The unit as others see it (cached until any shown field changes)."""
        status = self.unit_status(u)
        key = (u.x, u.y, u.hp, u.ammo, u.grenades, status)
        cached = self._views.get(u.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        st = u.stats
        view = UnitView.model_construct(
            id=u.id,
            squad=u.squad,
            role=u.role,
            x=u.x,
            y=u.y,
            hp=u.hp,
            max_hp=st.hp,
            ammo=u.ammo,
            max_ammo=st.ammo,
            status=status,
            grenades=u.grenades,
        )
        self._views[u.id] = (key, view)
        return view

    def snapshot_of(self, unit_id: int) -> Snapshot:
        """What unit `unit_id` knows now. Deterministic: same world, byte-identical JSON."""
        u = self.units[unit_id]
        mx, my = u.x, u.y
        allies = tuple(self.unit_view(a) for a in self.living(u.squad) if a.id != unit_id)
        enemies = tuple(self.unit_view(e) for e in self.visible_enemies(u.squad))
        taken = {(v.x, v.y) for v in (*allies, *enemies)}
        w = self.grid.width
        # Nearest first (Chebyshev, then Euclidean); ties by mirror_tie, so a mirrored
        # unit on a mirrored map is offered the mirrored cover in the same order.
        near = sorted(
            (
                (
                    max(abs(x - mx), abs(y - my)),
                    dist2((x, y), (mx, my)),
                    mirror_tie(x, y, w, u.squad),
                ),
                (x, y),
            )
            for x, y in self.cover_tiles
            if abs(x - mx) <= COVER_RADIUS and abs(y - my) <= COVER_RADIUS and (x, y) not in taken
        )
        cover = tuple(tile for _, tile in near[:MAX_COVER_LISTED])
        smoke = tuple(sorted(self.smoke, key=lambda t: (t[1], t[0])))
        # Built from trusted world state, so skip re-validation (this runs every step start).
        return Snapshot.model_construct(
            scenario=self.scenario.name,
            turn=self.turn,
            width=self.grid.width,
            height=self.grid.height,
            me=self.unit_view(u),
            allies=allies,
            enemies=enemies,
            cover=cover,
            smoke=smoke,
            objective=self.scenario.objective_centre,
        )

    # ------------------------------------------------------------ commands
    def assign_plan(self, unit_id: int, steps: Sequence[Step]) -> None:
        """Replace a unit's queue; ignored for dead units. A step in progress that cannot
        be dropped halfway (a Reload, a Heal, a throw: see COMMITTED) finishes first;
        walking and waiting steps give way at once."""
        u = self.units.get(unit_id)
        if u is None:
            raise KeyError(f"no unit {unit_id}")
        if u.hp <= 0:
            return
        u.queue = deque(list(steps)[:MAX_STEPS])
        named = {t for t in (getattr(s, "target_id", None) for s in u.queue) if t is not None}
        u.planned_at = {t: self.units[t].pos for t in named if t in self.units}
        if u.active is not None and u.active.step.act not in COMMITTED:
            u.active = None

    def step_tick(self) -> None:
        """Advance the world one tick: every living unit acts once (seeded random order)."""
        if self._winner is not None:
            return
        self.visible_enemy_ids(SQUADS[0])  # freeze sight for this tick
        # Everyone alive at the tick start acts, even if shot earlier in this tick, in a
        # seeded random order: ids follow map reading order, and plans start on the same
        # tick parity every turn, so any fixed order would let one side move first.
        order = list(self.living())
        self.rng.shuffle(order)
        for u in order:
            effects.act(self, u)
        self._resolve_deaths()
        self.tick += 1
        self._expire()
        self._version += 1
        self._check_winner(turn_end=self.tick % TICKS_PER_TURN == 0)

    def step_turn(self) -> None:
        """Run ticks until the next turn boundary (or the match ends)."""
        for _ in range(TICKS_PER_TURN - self.tick % TICKS_PER_TURN):
            if self._winner is not None:
                return
            self.step_tick()

    def touch(self) -> None:
        """Invalidate cached sight after mutating state from outside (tests, tools)."""
        self._version += 1

    # ------------------------------------------------------------ primitives for actions
    def refuse(
        self, u: Unit, step: Step, code: IllegalCode, reason: str, *, stale: bool = False
    ) -> None:
        self.invalid_steps += 1
        self.invalid_by_squad[u.squad] = self.invalid_by_squad.get(u.squad, 0) + 1
        split = self.stale_by_squad if stale else self.illegal_by_squad
        split[u.squad] = split.get(u.squad, 0) + 1
        self.refusals.append(Refusal(self.tick, u.id, u.squad, step.act, code, reason, stale))
        if len(self.refusals) > MAX_REFUSALS_KEPT:
            del self.refusals[: len(self.refusals) - MAX_REFUSALS_KEPT]

    def count_start(self, u: Unit, step: Step, *, retargeted: bool = False) -> None:
        acts = self.actions_by_squad.setdefault(u.squad, {})
        acts[step.act] = acts.get(step.act, 0) + 1
        if retargeted:
            self.retargeted_by_squad[u.squad] = self.retargeted_by_squad.get(u.squad, 0) + 1

    def add_effect(self, effect: Effect) -> None:
        self.effects.append(effect)

    def move_unit(self, u: Unit, tile: Tile) -> None:
        u.x, u.y = tile

    def damage(self, u: Unit, amount: int) -> None:
        """Take hp now; a unit at 0 hp finishes this tick and dies at its end."""
        if u.hp <= 0 or amount <= 0:
            return
        u.hp = max(0, u.hp - amount)

    def _resolve_deaths(self) -> None:
        for uid in sorted(self.units):
            u = self.units[uid]
            if u.hp <= 0 and not u.dead:
                u.dead = True
                u.queue.clear()
                u.active = None
                u.posture = "dead"
                u.stunned = 0
                self.add_effect(Died(self.tick, u.id, u.pos))
        self._version += 1

    def place_smoke(self, tiles: Iterable[Tile]) -> None:
        until = self.tick + actions.SMOKE_TICKS
        for t in tiles:
            self.smoke[t] = max(self.smoke.get(t, 0), until)
        self._version += 1

    def refresh_sight(self) -> None:
        """Recompute sight now (after Scan or smoke) instead of at the next tick."""
        self._version += 1

    def shared_field(self, goal: Tile) -> tuple[int, ...] | None:
        """Terrain path costs to `goal` once a second walker asks for that goal, else None.

        A field costs about three A* searches, so it pays off only for shared goals
        (the objective, popular cover); one-off goals use A*. The choice depends only
        on the match history, so replays stay identical.
        """
        field = self._fields.get(goal)
        if field is not None:
            return field
        asked = self._goal_requests.get(goal, 0) + 1
        self._goal_requests[goal] = asked
        if asked < 2:
            return None
        if len(self._fields) >= MAX_FIELDS_CACHED:
            del self._fields[next(iter(self._fields))]
        field = self._fields[goal] = distance_field(self.grid, goal)
        return field

    def zone_of_control(self, squad: str) -> set[Tile]:
        """Tiles next to enemy units that are blocking: `squad` may not enter them."""
        zoc: set[Tile] = set()
        for e in self.units.values():
            if e.alive and e.squad != squad and e.posture == "blocking":
                for dx, dy in NEIGHBOURS_8:
                    zoc.add((e.x + dx, e.y + dy))
        return zoc

    # ------------------------------------------------------------ internals
    def _compute_visibility(self) -> dict[str, frozenset[int]]:
        smoke = self.smoke
        living = list(self.living())
        out: dict[str, frozenset[int]] = {}
        for squad in SQUADS:
            mine = [(u.pos, self.sight_of(u)) for u in living if u.squad == squad]
            seen = {
                e.id
                for e in living
                if e.squad != squad
                and any(can_see(self.grid, smoke, pos, e.pos, s) for pos, s in mine)
            }
            out[squad] = frozenset(seen)
        return out

    def _expire(self) -> None:
        if self.smoke:
            gone = [t for t, until in self.smoke.items() if until <= self.tick]
            for t in gone:
                del self.smoke[t]
        horizon = self.tick - EFFECT_TTL_TICKS
        if self.effects and self.effects[0].tick < horizon:
            self.effects = [e for e in self.effects if e.tick >= horizon]

    def _check_winner(self, turn_end: bool) -> None:
        counts = self.alive_counts()
        alive = [s for s in SQUADS if counts.get(s, 0) > 0]
        if len(alive) == 0:
            self._winner, self._win_reason = "draw", "both_wiped"
            return
        if len(alive) == 1:
            self._winner = "blue" if alive[0] == "blue" else "red"
            self._win_reason = "wiped"
            return
        if not turn_end:
            return
        if self._objective:
            inside = {u.squad for u in self.living() if u.pos in self._objective}
            for s in SQUADS:
                self.hold[s] = self.hold[s] + 1 if inside == {s} else 0
            for s in SQUADS:
                if self.hold[s] >= self.scenario.hold_turns:
                    self._winner = "blue" if s == "blue" else "red"
                    self._win_reason = "objective"
                    return
        if self.turn >= self.turn_limit:
            self._winner, self._win_reason = "draw", "turn_limit"

    # ------------------------------------------------------------ determinism
    def canonical_state(self) -> dict[str, object]:
        """Everything that defines the match from here on, in a canonical JSON-able form."""
        units = []
        for uid in sorted(self.units):
            u = self.units[uid]
            a = u.active
            units.append(
                [
                    u.id,
                    u.squad,
                    u.role,
                    u.x,
                    u.y,
                    u.hp,
                    u.ammo,
                    u.grenades,
                    u.posture,
                    u.marked_until,
                    u.stunned,
                    u.scan_until,
                    [s.model_dump(mode="json") for s in u.queue],
                    None
                    if a is None
                    else [
                        a.step.model_dump(mode="json"),
                        a.elapsed,
                        a.walked,
                        [list(t) for t in a.path],
                        a.stuck,
                    ],
                ]
            )
        return {
            "scenario": self.scenario.name,
            "tick": self.tick,
            "turn_limit": self.turn_limit,
            "winner": self._winner,
            "hold": [self.hold[s] for s in SQUADS],
            "invalid_steps": self.invalid_steps,
            "smoke": sorted([x, y, until] for (x, y), until in self.smoke.items()),
            "units": units,
            "rng": list(self.rng.getstate()[1]),
        }

    def state_hash(self) -> str:
        """sha256 of the canonical state: equal across processes for equal matches."""
        blob = json.dumps(self.canonical_state(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()
