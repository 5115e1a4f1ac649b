"""A match in progress: the world, its controllers, and the planner for LLM squads.

Fixed timestep: `update(real_dt)` accumulates time and steps whole ticks; every tick
first submits the planning rounds that are due, drains the planner's events (never
blocking), applies the plans that arrived, keeps idle LLM agents busy, then advances the
world. At the start of each turn the rule-controlled squads plan at once; each LLM squad
submits a planning round at its turn's start, or earlier by a learned lead when planning
ahead, the default (`game.match.pacing`: a typical recent round's p90 plan_wait of the
agents the LLM was asked for). An LLM agent starts its new plan on the first tick after
that plan is delivered; until then it runs the rest of its previous plan if that is
still legal, else an interim rule plan (source "interim"), when interim plans are on.

Two collaborators stand beside the loop, and the Session only asks or tells them:

- its `PlanSource` says where the world's other plans come from: `LivePlans` (the
  planner's deliveries and the player's orders, as they come) or a record's plans at
  their ticks (`game.match.record.RecordedPlans`, a replay);
- its `MatchObserver`s are told what happened (a round submitted, each planner event
  drained, each plan the world was given, the match's end); a record is one of them
  (`game.match.record.Recorder`), and a match without one has none.

`game.match.launch` wires a Session; this module knows nothing of files or records.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from game.match.controllers import Controller, controller_rng
from game.match.pacing import PRIOR_LEAD_TICKS, LeadTimer, Pacing, first_step_legal, idle
from game.match.planlog import PlanningLog, percentile
from game.rules import heuristic
from game.rules.actions import check_step
from game.rules.scenarios import SQUADS, Scenario
from game.rules.steps import FULL_TOOLS, Step
from game.rules.world import TICK_SECONDS, TICKS_PER_TURN, World
from planner.clock import VirtualClock
from planner.core import PlanningRound
from planner.events import PlanDelivered, PlanEvent, RoundCancelled, RoundDone, RoundStats
from planner.fallback import LLM_TIERS, Tier, heuristic_plan
from planner.schema import AgentPlan
from planner.service import Planner
from planner.settings import PlannerSettings
from planner.trace import RoundTrace, trace_json
from planner.validate import validate_plan

TRACES_KEPT = 2000
MAX_TICKS_PER_UPDATE = 8
"""A long frame (a stall, a breakpoint) may not make the world sprint to catch up."""

OPENING_STEP_S = 0.05
"""How far the virtual clock moves at a time while the opening waits for its rounds."""
OPENING_GRACE_MS = 1000.0
"""The opening ends at the latest this long after the round budget (a round always ends
by its budget; this only guards a planner that never says so)."""

PlanOrigin = Literal["llm", "player", "interim"]
"""Who a plan given to the world came from (rule controllers' plans are not reported):
an LLM delivery, the player, or an interim rule plan for an LLM agent with nothing to do."""


# ---------------------------------------------------------------------- what a match is


@dataclass(frozen=True)
class MatchConfig:
    """The match's parameters: the map, its seed and length, who is not a rule controller."""

    scenario: Scenario
    seed: int
    turn_limit: int
    llm_squads: tuple[str, ...] = ()
    player_squad: str | None = None


@dataclass(frozen=True)
class Planning:
    """The LLM squads' planner and how the match is timed for it."""

    planner: Planner
    virtual_clock: VirtualClock | None = None
    """Virtual time: the Session moves it to each tick's instant (None: the wall clock)."""
    fault_control: Callable[[float], None] | None = None
    """Sets the simulated LLM's fault rate (None: the backend cannot inject faults)."""
    renew: Callable[[], Planner] | None = None
    """A fresh planner for each restart (a replay's must start from its first answer)."""


# ---------------------------------------------------------------------- collaborators


class ScheduledPlan(Protocol):
    """A plan scheduled for the world at a tick (a record's `applied` line is one)."""

    @property
    def unit_id(self) -> int: ...
    @property
    def steps(self) -> tuple[Step, ...]: ...
    @property
    def source(self) -> PlanOrigin: ...


class PlanSource(Protocol):
    """Where the world's plans come from, besides the rule controllers."""

    @property
    def replaying(self) -> bool:
        """The world's plans are a record's: the planner's deliveries only fill the log."""

    @property
    def end_tick(self) -> int | None:
        """The tick the match stops at even with no winner (None: only a winner ends it)."""

    def refusal(self) -> str | None:
        """Why the player's orders are refused (None: they are taken)."""

    def due(self, tick: int) -> Sequence[ScheduledPlan]:
        """The plans the world is given at `tick`, after the planner's events, before it moves."""

    def round_ticks(self) -> list[int]:
        """The ticks at which the planning rounds to scrub through started (sorted)."""

    def round_squads(self, tick: int) -> Sequence[str] | None:
        """The squads whose planning rounds start at `tick` (a record's), or None: the
        Session decides, by its turns and its plan-ahead leads."""


class LivePlans:
    """A match being played: the planner's deliveries and the player's orders reach the
    world as they come, nothing is scheduled, and only a winner (or the turn limit) ends it."""

    replaying = False
    end_tick: int | None = None

    def refusal(self) -> str | None:
        return None

    def due(self, tick: int) -> Sequence[ScheduledPlan]:
        return ()

    def round_ticks(self) -> list[int]:
        return []

    def round_squads(self, tick: int) -> Sequence[str] | None:
        return None


class MatchObserver(Protocol):
    """Told what the Session does, at these points only; it watches, it does not steer."""

    def on_round_submitted(self, tick: int, planning: PlanningRound) -> None:
        """A squad's planning round, just before it goes to the planner."""

    def on_event(self, event: PlanEvent) -> None:
        """Each planner event as the Session drained it, before the Session acts on it."""

    def on_plan_applied(
        self, tick: int, unit_id: int, steps: tuple[Step, ...], source: PlanOrigin
    ) -> None:
        """A plan the world was given at `tick` (the world's tick then): an LLM delivery
        after re-validation, a player's order, an interim rule plan, or a record's plan
        in a replay."""

    def on_match_end(self, tick: int, winner: str, state_hash: str) -> None:
        """The match is over, or closed unfinished (winner "unfinished"); once per match."""


# ---------------------------------------------------------------------- the session


class Session:
    """The fixed-timestep loop of one match (restartable) and its plans' gate to the world."""

    def __init__(
        self,
        config: MatchConfig,
        controllers: Mapping[str, Controller],
        planning: Planning | None = None,
        *,
        plans: PlanSource | None = None,
        observers: Sequence[MatchObserver] = (),
        pacing: Pacing | None = None,
    ) -> None:
        missing = [s for s in SQUADS if s not in controllers and s not in config.llm_squads]
        if config.player_squad in missing:
            missing.remove(config.player_squad)
        if missing:
            raise ValueError(f"no controller for squad(s) {', '.join(missing)}")
        if config.llm_squads and planning is None:
            raise ValueError("LLM squads need a planner")
        self.config = config
        self.controllers = dict(controllers)
        self._planning = planning
        self.planner = planning.planner if planning is not None else None
        self.plans: PlanSource = plans if plans is not None else LivePlans()
        self.observers: list[MatchObserver] = list(observers)
        """Told what happens (a record is one); a match without any has none."""
        self.pacing = pacing if pacing is not None else Pacing()
        """Interim plans and planning ahead (hotkeys N and P), read every tick."""
        self.fault_rate = 0.0
        self.paused = False
        self.speed = 1.0
        self._accumulator = 0.0
        self._round_ids = iter(range(1, 1 << 62))
        clock = self.virtual_clock
        self._start_time = clock.now() if clock is not None else 0.0
        self._new_match()

    def _new_match(self) -> None:
        seed = self.config.seed
        for squad, controller in self.controllers.items():
            controller.rng = controller_rng(seed, squad)
        self.world = World(self.scenario, random.Random(seed), turn_limit=self.config.turn_limit)
        self.log = PlanningLog()
        self.round_stats: list[RoundStats] = []
        self.traces: deque[RoundTrace] = deque(maxlen=TRACES_KEPT)
        self.late_drops: Counter[str] = Counter()
        """Steps of delivered plans that the world had made illegal by the time they landed."""
        self._current_round: dict[str, int] = {}
        self._planned_turn: dict[str, int] = {}
        """The turn each LLM squad's latest round was submitted for."""
        self._awaiting: dict[str, set[int]] = {}
        """Agents of each squad's current round whose plan has not landed yet."""
        self._rng = random.Random(f"{seed}:session")
        self._interim_rng = random.Random(f"{seed}:interim")
        self.lead = LeadTimer()
        self.interim_agents: set[int] = set()
        """LLM agents running an interim plan now (until their LLM plan lands)."""
        self.idle_ticks: Counter[str] = Counter()
        """Per squad: ticks a living unit started with no step in progress and none queued."""
        self.unit_ticks: Counter[str] = Counter()
        """Per squad: ticks its living units started (what idle_ticks is a share of)."""
        self.interim_plans: Counter[str] = Counter()
        self.interim_steps: Counter[str] = Counter()
        self.ahead_leads_ms: list[float] = []
        """The lead of each round submitted before its turn started."""
        self._round_turn: dict[int, int] = {}
        """The turn each live round plans for (its start is when act_wait starts)."""
        self.act_waits_ms: list[float] = []
        """act_wait of every LLM plan applied: its turn's start -> the tick the agent
        starts acting on it (0 for a plan made ahead or a cache hit at the turn start)."""
        self.act_wait_turns: list[int] = []
        """The turn of each act_wait above (turn 0 cannot be planned ahead)."""
        self._opening_rounds: set[int] | None = None
        """The opening's rounds still planning (None: the opening has not begun)."""
        self._opening_due = (
            self.pacing.opening and self.planner is not None and bool(self.llm_squads)
        )
        self.opening_ms: float | None = None
        """How long the opening has lasted so far (None: there is none, or not yet)."""
        self._ended = False

    # ------------------------------------------------------------------ properties

    @property
    def scenario(self) -> Scenario:
        return self.config.scenario

    @property
    def llm_squads(self) -> tuple[str, ...]:
        return self.config.llm_squads

    @property
    def player_squad(self) -> str | None:
        return self.config.player_squad

    @property
    def virtual_clock(self) -> VirtualClock | None:
        return self._planning.virtual_clock if self._planning is not None else None

    @property
    def backend_description(self) -> str:
        return self.planner.backend_description if self.planner is not None else "no LLM"

    @property
    def settings(self) -> PlannerSettings:
        return self.planner.settings if self.planner is not None else PlannerSettings()

    def set_settings(self, settings: PlannerSettings) -> None:
        if self.planner is not None:
            self.planner.set_settings(settings)

    def set_pacing(self, pacing: Pacing) -> None:
        """Interim plans switch from the next tick, planning ahead from the next round."""
        self.pacing = pacing

    @property
    def plan_ahead_ms(self) -> float | None:
        """The longest lead, in whole ticks, by which the LLM squads would start their
        next round now (None: nothing learned yet)."""
        leads = [self.lead.lead_ticks(s) for s in self.llm_squads]
        known = [lead for lead in leads if lead is not None]
        return max(known) * TICK_SECONDS * 1000 if known else None

    @property
    def fault_injection_available(self) -> bool:
        return self._planning is not None and self._planning.fault_control is not None

    def set_fault_rate(self, rate: float) -> None:
        control = self._planning.fault_control if self._planning is not None else None
        if control is None:
            raise RuntimeError("fault injection needs the built-in simulated LLM")
        control(rate)
        self.fault_rate = rate

    @property
    def breaker_state(self) -> str:
        return self.planner.breaker_state() if self.planner is not None else "closed"

    @property
    def finished(self) -> bool:
        return self._over()

    def _over(self) -> bool:
        end = self.plans.end_tick
        return self.world.winner is not None or (end is not None and self.world.tick >= end)

    @property
    def winner(self) -> str | None:
        return self.world.winner

    @property
    def turn_clock(self) -> float:
        """0..1 progress through the current turn, for the real-time turn clock."""
        within = self.world.tick % TICKS_PER_TURN + self._accumulator / TICK_SECONDS
        return min(1.0, within / TICKS_PER_TURN)

    # ------------------------------------------------------------------ time

    def update(self, real_dt: float) -> None:
        """Advance by a frame's worth of real time (scaled by `speed`), never blocking."""
        if self.paused or self.finished:
            self._drain()
            return
        if self._opening_due:
            clock = self.virtual_clock
            if clock is None:
                # real time, not game time: the planner's budget runs on the wall clock
                self._open_for(max(0.0, real_dt))
                return
            self._open_virtually(clock)  # virtual time: done at once
        self._accumulator += max(0.0, real_dt) * self.speed
        ticks = 0
        while self._accumulator >= TICK_SECONDS and ticks < MAX_TICKS_PER_UPDATE:
            self._accumulator -= TICK_SECONDS
            self.step_tick()
            ticks += 1
            if self.world.winner is not None:
                break
        if ticks == MAX_TICKS_PER_UPDATE:
            self._accumulator = min(self._accumulator, TICK_SECONDS)
        if ticks == 0:
            self._drain()

    def step_tick(self) -> None:
        """One fixed tick: turn start (rule plans), the rounds due, planner events,
        scheduled plans, interim plans for idle LLM agents, then the world moves."""
        if self.finished:
            return
        clock = self.virtual_clock
        if self._opening_due:
            if clock is not None:
                self._open_virtually(clock)
            else:  # ticked by hand on the wall clock: nothing to wait in
                self._opening_due = False
        if clock is not None:
            due = self._start_time + self.world.tick * TICK_SECONDS
            clock.advance(max(0.0, due - clock.now()))
        if self.world.tick % TICKS_PER_TURN == 0:
            self._rule_plans()
        fresh = self._submit_rounds()
        self._drain()
        for plan in self.plans.due(self.world.tick):
            self.world.assign_plan(plan.unit_id, plan.steps)
            self._applied(plan.unit_id, plan.steps, plan.source)
        if self.pacing.interim and not self.plans.replaying:
            self._keep_busy(fresh)
        for unit in self.world.living():
            self.unit_ticks[unit.squad] += 1
            if idle(unit):
                self.idle_ticks[unit.squad] += 1
        self.world.step_tick()
        if self._over():
            self._end_match()

    def run_to_end(self) -> None:
        while not self.finished:
            self.step_tick()

    # ------------------------------------------------------------------ the opening

    @property
    def opening(self) -> bool:
        """The match has not started: the LLM squads' first rounds are still planning."""
        return self._opening_due and self._opening_rounds is not None

    @property
    def opening_pending(self) -> bool:
        """An opening is still to run or running: `update` plays it out (on the virtual
        clock at once); `step_tick` on the wall clock skips it."""
        return self._opening_due

    def _begin_opening(self) -> None:
        self._opening_rounds = {self._current_round[s] for s in self._submit_rounds()}
        self.opening_ms = 0.0

    def _open_for(self, dt: float) -> None:
        """The opening on the wall clock: `dt` more seconds of it, never blocking."""
        if self._opening_rounds is None:
            self._begin_opening()
        self._drain()
        self.opening_ms = (self.opening_ms or 0.0) + dt * 1000
        self._end_opening_if_done()

    def _open_virtually(self, clock: VirtualClock) -> None:
        """The opening on the virtual clock: time runs (the world does not) until the
        opening's rounds are done; the first tick is then."""
        self._begin_opening()
        started = clock.now()
        while self._opening_due:
            clock.advance(OPENING_STEP_S)
            self._drain()
            self.opening_ms = (clock.now() - started) * 1000
            self._end_opening_if_done()
        self._start_time = clock.now()

    def _end_opening_if_done(self) -> None:
        rounds = self._opening_rounds
        cap = self.settings.budget_ms + OPENING_GRACE_MS
        if rounds is not None and (not rounds or (self.opening_ms or 0.0) >= cap):
            self._opening_due = False

    # ------------------------------------------------------------------ turns and plans

    def _rule_plans(self) -> None:
        for squad in SQUADS:
            controller = self.controllers.get(squad)
            if controller is None:
                continue
            for unit_id, steps in controller.plan_turn(self.world, squad).items():
                self.world.assign_plan(unit_id, steps)

    def _submit_rounds(self) -> list[str]:
        """Submit each LLM squad's round that is due now; the squads submitted."""
        if self.planner is None:
            return []
        tick = self.world.tick
        recorded = self.plans.round_squads(tick)
        fresh: list[str] = []
        for squad in self.llm_squads:
            if recorded is not None:
                turn = -(-tick // TICKS_PER_TURN)
                # the record's round for this turn, once (the opening submits it first)
                if squad not in recorded or self._planned_turn.get(squad) == turn:
                    continue
            else:
                due = self._round_due(squad)
                if due is None:
                    continue
                turn = due
            self._planned_turn[squad] = turn
            if turn * TICKS_PER_TURN > tick:
                self.ahead_leads_ms.append((turn * TICKS_PER_TURN - tick) * TICK_SECONDS * 1000)
            snaps = tuple(self.world.snapshot_of(u.id) for u in self.world.living(squad))
            if not snaps:
                continue
            round_id = next(self._round_ids)
            previous = self._current_round.get(squad)
            if previous is not None:
                self._round_turn.pop(previous, None)
            self._current_round[squad] = round_id
            self._round_turn[round_id] = turn
            self._awaiting[squad] = {s.me.id for s in snaps}
            planning = PlanningRound(round_id, squad, snaps, self.scenario.grid)
            for observer in self.observers:
                observer.on_round_submitted(tick, planning)
            self.planner.submit(planning)
            fresh.append(squad)
        return fresh

    def _round_due(self, squad: str) -> int | None:
        """The turn a round submitted now would be for, or None if none is due: the
        current turn if it has none yet (its first tick); with planning ahead, the next
        turn once the squad's lead reaches it."""
        tick = self.world.tick
        turn = tick // TICKS_PER_TURN
        planned = self._planned_turn.get(squad, -1)
        if planned < turn:
            return turn
        nxt = turn + 1
        if not self.pacing.plan_ahead or planned >= nxt or nxt >= self.world.turn_limit:
            return None
        lead = self.lead.lead_ticks(squad)
        if lead is None:
            # nothing measured: the prior, once this turn's round has delivered (started
            # earlier, the next round would supersede a round still in flight)
            lead = 0 if self._awaiting.get(squad) else PRIOR_LEAD_TICKS
        return nxt if lead > 0 and tick >= nxt * TICKS_PER_TURN - lead else None

    def _keep_busy(self, fresh: Sequence[str]) -> None:
        """Interim plans: an agent of a round just submitted whose plan has not landed
        keeps the rest of its previous plan only if that is still legal; any LLM agent
        with nothing to do gets a rule plan at once."""
        for squad in self.llm_squads:
            waiting = self._awaiting.get(squad, set()) if squad in fresh else set()
            for unit in self.world.living(squad):
                if unit.id in waiting:
                    snap = self.world.snapshot_of(unit.id)
                    if not first_step_legal(unit, snap, self.scenario.grid):
                        self._interim(unit.id)
                elif idle(unit):
                    self._interim(unit.id)

    def _interim(self, unit_id: int) -> None:
        steps = tuple(heuristic.plan(self.world.snapshot_of(unit_id), self._interim_rng))
        self.world.assign_plan(unit_id, steps)
        self._applied(unit_id, steps, "interim")

    def _drain(self) -> None:
        if self.planner is None:
            return
        for event in self.planner.drain():
            self._on_event(event)

    def _on_event(self, event: PlanEvent) -> None:
        self.log.apply(event)
        for observer in self.observers:
            observer.on_event(event)
        if isinstance(event, RoundDone | RoundCancelled) and self._opening_rounds:
            self._opening_rounds.discard(event.round_id)
        if isinstance(event, RoundDone):
            self.round_stats.append(event.stats)
            self.lead.round_done(event.squad, event.round_id)
            trace = self.log.round_trace(event.round_id)
            if trace is not None:
                self.traces.append(trace)
        elif isinstance(event, RoundCancelled):
            self.lead.forget(event.round_id)
        elif isinstance(event, PlanDelivered):
            if not event.outcome.from_cache:  # a hit waits for nothing: no lead needed
                self.lead.delivered(event.round_id, event.plan_wait_ms)
            if self._current_round.get(event.squad) == event.round_id:
                self._awaiting.get(event.squad, set()).discard(event.outcome.agent_id)
                if not self.plans.replaying:
                    self._apply_plan(event.outcome.agent_id, event.outcome.steps)
                if event.outcome.tier in LLM_TIERS:
                    self._acted(event.round_id)

    def _acted(self, round_id: int) -> None:
        """An LLM plan of the current round is applied now: the world ticks from this tick
        with it, so the agent acts on it from this tick on (see act_wait in ARCHITECTURE)."""
        turn = self._round_turn.get(round_id)
        if turn is None:
            return
        ticks = max(0, self.world.tick - turn * TICKS_PER_TURN)
        wait = ticks * TICK_SECONDS * 1000
        self.act_waits_ms.append(wait)
        self.act_wait_turns.append(turn)
        self.log.acted(wait)

    def _apply_plan(self, unit_id: int, steps: tuple[Step, ...]) -> None:
        """Check a plan against the world as it is now; the legal steps start next tick."""
        unit = self.world.units.get(unit_id)
        if unit is None or not unit.alive:
            return
        snap = self.world.snapshot_of(unit_id)
        checked = validate_plan(
            AgentPlan(agent_id=unit_id, steps=steps), snap, self.scenario.grid, FULL_TOOLS
        )
        for dropped in checked.dropped:
            # "target 9 not visible" and "target 4 not visible" are one kind of drop.
            self.late_drops[dropped.code] += 1
        kept = checked.steps
        if not kept:
            kept, _, _ = heuristic_plan(snap, self._rng, self.scenario.grid)
        self.world.assign_plan(unit_id, kept)
        self._applied(unit_id, kept, "llm")

    def _applied(self, unit_id: int, steps: tuple[Step, ...], source: PlanOrigin) -> None:
        if source == "interim":
            squad = self.world.units[unit_id].squad
            self.interim_agents.add(unit_id)
            self.interim_plans[squad] += 1
            self.interim_steps[squad] += len(steps)
        else:
            self.interim_agents.discard(unit_id)
        for observer in self.observers:
            observer.on_plan_applied(self.world.tick, unit_id, steps, source)

    # ------------------------------------------------------------------ the player

    def order(self, unit_id: int, steps: list[Step]) -> str | None:
        """A player's order for one of their units: the refusal reason, or None."""
        unit = self.world.units.get(unit_id)
        if unit is None or not unit.alive:
            return f"unit {unit_id} is not alive"
        if self.player_squad is None or unit.squad != self.player_squad:
            return f"unit {unit_id} is not yours"
        if not steps:
            return "empty order"
        refused = self.plans.refusal()
        if refused is not None:
            return refused
        illegal = check_step(steps[0], self.world.snapshot_of(unit_id), self.scenario.grid)
        if illegal is not None:
            return illegal.message
        self.world.assign_plan(unit_id, steps)
        self._applied(unit_id, tuple(steps), "player")
        return None

    # ------------------------------------------------------------------ replay

    @property
    def replaying(self) -> bool:
        return self.plans.replaying

    def replay_rounds(self) -> list[int]:
        """The ticks at which the record's planning rounds started (replays only)."""
        return self.plans.round_ticks()

    def replay_round(self) -> int:
        """Index of the latest recorded round the replay has reached (-1 before the first)."""
        # A round whose tick is the current one has not been submitted yet.
        return sum(1 for t in self.replay_rounds() if t < self.world.tick) - 1

    def seek_round(self, index: int) -> int:
        """Replay only: play again from the start to the end of round `index` (clamped), so
        the overlay, waterfall and inspector show that round. Returns the index reached."""
        ticks = self.replay_rounds()
        if not ticks:
            return -1
        index = max(0, min(index, len(ticks) - 1))
        end = self.plans.end_tick
        end_tick = end if end is not None else ticks[-1] + 1
        target = ticks[index + 1] if index + 1 < len(ticks) else end_tick
        self.restart()
        while self.world.tick < target and not self._over():
            self.step_tick()
        return index

    # ------------------------------------------------------------------ lifetime

    def restart(self, *, seed: int | None = None) -> None:
        """The match again from its first tick (with another seed, if given)."""
        if seed is not None:
            self.config = replace(self.config, seed=seed)
        self._accumulator = 0.0
        renew = self._planning.renew if self._planning is not None else None
        if renew is not None:
            if self.planner is not None:
                self.planner.close()
            self.planner = renew()
            # a renewed replay planner finds each recorded round by its id: count afresh
            self._round_ids = iter(range(1, 1 << 62))
        clock = self.virtual_clock
        if clock is not None:
            self._start_time = clock.now()
        self._new_match()

    def close(self) -> None:
        if self.planner is not None:
            self.planner.close()
        self._end_match()

    def _end_match(self) -> None:
        """Tell the observers, once per match, how it ended (or that it was left)."""
        if self._ended:
            return
        self._ended = True
        winner = self.world.winner or "unfinished"
        state_hash = self.world.state_hash()
        for observer in self.observers:
            observer.on_match_end(self.world.tick, winner, state_hash)

    # ------------------------------------------------------------------ results

    def trace_json(self) -> str:
        """The planning rounds as Chrome trace-event JSON (open it in Perfetto)."""
        return trace_json(self.traces)

    def result_summary(self) -> dict[str, Any]:
        """The match result and its planning statistics (end screen and headless report)."""
        log = self.log
        tiers = {t.value: log.tier_counts.get(t.value, 0) for t in Tier}
        plans = sum(tiers.values())
        llm_plans = sum(tiers[t.value] for t in LLM_TIERS)
        stats = self.round_stats

        def pct(name: str, q: float) -> float | None:
            value = log.p(name, q)
            return None if value is None else round(value, 3)

        honest = log.honest_figures(stats)
        completion = honest["completion_tokens"]
        ahead = percentile(self.ahead_leads_ms, 50)
        by_size: dict[int, list[float]] = {}
        for st in stats:
            if st.ttfp_ms is not None:
                by_size.setdefault(st.agents, []).append(st.ttfp_ms)
        return {
            "winner": self.world.winner or ("draw" if self.finished else None),
            "turns": -(-self.world.tick // TICKS_PER_TURN),
            "units_alive": self.world.alive_counts(),
            "rounds": len(stats),
            "plans": plans,
            "plans_by_tier": tiers,
            "llm_plan_share": round(llm_plans / plans, 4) if plans else None,
            "fallback_rate": round(1 - llm_plans / plans, 4) if plans else None,
            "cache_hits": log.cache_hits,
            "cache_misses": sum(s.cache_misses for s in stats),
            "llm_requests": sum(s.requests for s in stats),
            "retries": sum(s.retries for s in stats),
            **honest,
            "output_tokens_per_plan": (
                round(completion / llm_plans, 1)
                if llm_plans and isinstance(completion, int)
                else None
            ),
            "over_budget": log.cause_counts.get("over_budget", 0),
            "late_dropped_steps": dict(sorted(self.late_drops.items())),
            "cache_adapted": sum(s.cache_adapted for s in stats),
            "cache_rejected": sum(s.cache_rejected for s in stats),
            "cache_refreshed": sum(s.cache_refreshed for s in stats),
            "cache_new_situations": sum(s.cache_new_situations for s in stats),
            "cache_hit_rate": _rate(log.cache_hits, sum(s.cache_misses for s in stats)),
            "act_wait_ms": {
                "avg": round(sum(self.act_waits_ms) / len(self.act_waits_ms), 3)
                if self.act_waits_ms
                else None,
                "p50": percentile(self.act_waits_ms, 50),
                "p95": percentile(self.act_waits_ms, 95),
                "plans": len(self.act_waits_ms),
            },
            "pacing": {
                "interim": self.pacing.interim,
                "plan_ahead": self.pacing.plan_ahead,
                "rounds_ahead": len(self.ahead_leads_ms),
                "lead_ms_p50": ahead,
                "opening": self.pacing.opening,
                "opening_ms": None if self.opening_ms is None else round(self.opening_ms, 3),
            },
            "idle_ticks": {s: self.idle_ticks.get(s, 0) for s in SQUADS},
            "unit_ticks": {s: self.unit_ticks.get(s, 0) for s in SQUADS},
            "interim_plans": {s: self.interim_plans.get(s, 0) for s in SQUADS},
            "interim_steps": {s: self.interim_steps.get(s, 0) for s in SQUADS},
            "latency_ms": {
                **{
                    f"{name}_p{q}": pct(name, q)
                    for name in ("ttft", "ttfp", "time_to_all", "plan_wait")
                    for q in (50, 95)
                },
                "overhead_p50": pct("overhead", 50),
                "overhead_p99": pct("overhead", 99),
            },
            "ttfp_p50_by_agents": {
                str(n): round(percentile(v, 50) or 0.0, 3) for n, v in sorted(by_size.items())
            },
        }


def _rate(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None
