"""The simulated LLM server as a pure model: what it answers and when each token leaves.

No I/O and no clock of its own: callers pass the arrival instant and get back a
`SimResponse` with the exact text, its ~4-character tokens and the absolute instant
each token leaves. The in-process backend (`planner.sim.backend`) and the loopback
HTTP server (`planner.sim.server`) only pace and carry what this model decided, so both
give the same answer at the same times for the same seed.

Timing model (per request, all instants absolute):
- queue: a request waits for a free decode slot (`num_parallel` slots; 1 is a default
  Ollama, K > 1 is vLLM-style continuous batching). Slot order = call order.
- then `overhead`, then prefill of the prompt tokens the prefix cache does not hold;
  the first token leaves at the end of prefill (ttft = queue + overhead + prefill);
- token i (0-based) leaves at first + i / rate. With K > 1 the rate is
  decode / (1 + 0.05 * (active - 1)), `active` being the sequences decoding when the
  request gets its slot (a modest per-sequence slowdown, fixed for the request so the
  schedule of a stream already running never changes).
- A stream cut short by the server (stall, disconnect) keeps its slot until its scheduled
  end; one the client abandons frees its slot when the client goes (`release`), as real
  servers stop generating for a closed connection. Injected 500/429 are refused before
  admission and take no slot.
- Prefix cache: the longest prefix shared with one of the last 64 prompts is not
  prefilled again (whole tokens; the last prompt token is always evaluated, as in llama.cpp).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from game.rules.actions import ROLE_STATS
from game.rules.heuristic import plan as heuristic_plan
from game.rules.sight import bresenham, dist2, in_range
from game.rules.snapshot import Snapshot
from game.rules.steps import FULL_TOOLS, MAX_STEPS, STEP_TYPES, Approach, Attack, MoveTo, Scan, Step
from planner.intents import intent_of
from planner.prompts import decode_agents
from planner.schema import PlanFormat, step_fields
from planner.sim.persona import persona_plan, resolve
from planner.terrain import NO_TERRAIN, Terrain

BATCH_SLOWDOWN = 0.05
"""Per extra concurrent sequence, the fraction by which each sequence's decode slows."""

CHARS_PER_TOKEN = 4
PREFIX_CACHE_ENTRIES = 64
"""How many past prompts the prefix cache remembers (oldest forgotten first)."""
SLOT_BOOKINGS_KEPT = 16
"""Requests remembered per decode slot (enough to free a slot behind a short queue)."""
EMISSIONS_KEPT = 4096
"""Plan emissions remembered (oldest forgotten first, trimmed at twice this): a long-running
server must not grow without bound, and readers (the bench) only ask about recent ones."""

NOISE_SCAN_FIRST = 0.15
"""Chance a plan starts with a Scan the heuristic did not ask for."""
NOISE_OTHER_TARGET = 0.15
"""Chance an Attack picks another visible enemy than the heuristic's."""

RETRY_AFTER_S = 1
"""Retry-After (whole seconds, as HTTP sends it) of an injected 429."""


@dataclass(frozen=True)
class Preset:
    name: str
    prefill_tps: float
    decode_tps: float
    overhead_s: float


PRESETS: dict[str, Preset] = {
    # Published llama.cpp figures for a 7-8B Q4 model (see DESIGN.md).
    "gpu": Preset("gpu", 3500.0, 110.0, 0.030),
    "mac": Preset("mac", 500.0, 45.0, 0.030),
    "cpu": Preset("cpu", 60.0, 15.0, 0.030),
    "instant": Preset("instant", math.inf, math.inf, 0.0),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown sim preset {name!r} (known: {', '.join(PRESETS)})") from None


def count_tokens(text: str) -> int:
    """Tokens ~= 4 characters."""
    return -(-len(text) // CHARS_PER_TOKEN)


def tokenize(text: str) -> list[str]:
    """Split into the ~4-character tokens the sim emits (token k holds chars 4k..4k+3)."""
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def render_chat(messages: Sequence[tuple[str, str]]) -> str:
    """The text the server 'prefills' for (role, content) messages, like a chat template."""
    return "".join(f"<|{role}|>\n{content}\n" for role, content in messages)


# --- faults -------------------------------------------------------------------------

FaultKind = Literal[
    "malformed_json",
    "truncation",
    "wrong_ids",
    "missing_agents",
    "prose_fences",
    "http_500",
    "http_429",
    "stall",
    "disconnect",
]
FAULT_KINDS: tuple[FaultKind, ...] = FaultKind.__args__  # type: ignore[attr-defined]
HTTP_FAULTS: frozenset[FaultKind] = frozenset({"http_500", "http_429"})
CUT_FAULTS: frozenset[FaultKind] = frozenset({"stall", "disconnect"})


@dataclass(frozen=True)
class FaultConfig:
    """Chance per request of each fault kind (at most one fault per request)."""

    rates: Mapping[FaultKind, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, rate in self.rates.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate for {kind} must be in [0, 1], got {rate}")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")

    @classmethod
    def none(cls) -> FaultConfig:
        return cls()

    @classmethod
    def uniform(cls, rate: float) -> FaultConfig:
        """A total fault rate spread evenly over every kind."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {rate}")
        return cls({kind: rate / len(FAULT_KINDS) for kind in FAULT_KINDS})

    @classmethod
    def only(cls, kind: FaultKind, rate: float = 1.0) -> FaultConfig:
        return cls({kind: rate})

    def pick(self, rng: random.Random) -> FaultKind | None:
        u = rng.random()
        total = 0.0
        for kind in FAULT_KINDS:  # fixed order, so a seed always picks the same kind
            total += self.rates.get(kind, 0.0)
            if u < total:
                return kind
        return None


# --- the reply text -----------------------------------------------------------------


SimPlan = tuple[int, list[Step], str | None]
"""One agent's answer: its id, steps and intent (None: not asked for)."""
PlanLike = tuple[int, Sequence[Step]] | tuple[int, Sequence[Step], str | None]


@dataclass(frozen=True)
class Reply:
    text: str
    plan_ends: tuple[tuple[int, int], ...]
    """(agent_id, index in `text` of that plan's closing brace or bracket), in text order."""
    fmt: PlanFormat = "verbose"


def _step_wire(step: Step) -> dict[str, Any]:
    # Only the step's own fields, "act" first (as a model would write it).
    fields = step.model_dump()
    return {"act": fields.pop("act"), **fields}


def _step_compact(step: Step) -> list[Any]:
    return [step.act, *(getattr(step, name) for name in step_fields(step.act))]


def serialise(plans: Sequence[PlanLike], fmt: PlanFormat = "verbose") -> Reply:
    """Wire JSON `{"plans":[...]}` without whitespace, in plan format `fmt`, and where each
    plan element closes. A plan's intent, when it has one, is its last value."""
    text = '{"plans":['
    ends: list[tuple[int, int]] = []
    for i, plan in enumerate(plans):
        agent_id, steps = plan[0], plan[1]
        intent = plan[2] if len(plan) == 3 else None
        element: object
        if fmt == "compact":
            element = [agent_id, [_step_compact(s) for s in steps]]
            if intent is not None:
                element.append(intent)
        else:
            element = {"agent_id": agent_id, "steps": [_step_wire(s) for s in steps]}
            if intent is not None:
                element["intent"] = intent
        text += ("," if i else "") + json.dumps(element, separators=(",", ":"))
        ends.append((agent_id, len(text) - 1))
    return Reply(text + "]}", tuple(ends), fmt)


_COMPACT_EXAMPLE = re.compile(r'\{"plans":\[\[')
_ASKS_INTENT = re.compile(r"\bintent\b")


def asks_intent(system_text: str) -> bool:
    """Whether a system prompt asks for each plan's intent (then the sim writes one)."""
    return _ASKS_INTENT.search(system_text) is not None


def asked_format(system_text: str) -> PlanFormat:
    """The plan format a prompt's output example shows (a model answers like its example):
    compact when the example's plans are arrays, else verbose."""
    return "compact" if _COMPACT_EXAMPLE.search(system_text) else "verbose"


def _noisy(steps: list[Step], snap: Snapshot, rng: random.Random) -> list[Step]:
    # Seeded noise so the sim is not a perfect copy of the heuristic tier.
    out = list(steps)
    if rng.random() < NOISE_OTHER_TARGET:
        target = next((s.target_id for s in out if isinstance(s, Attack)), None)
        others = [e.id for e in snap.enemies if e.id != target]
        if target is not None and others:
            new = rng.choice(others)
            out = [
                s.model_copy(update={"target_id": new})
                if getattr(s, "target_id", None) == target
                else s
                for s in out
            ]
    scan_first = rng.random() < NOISE_SCAN_FIRST
    if scan_first and len(out) < MAX_STEPS and not (out and isinstance(out[0], Scan)):
        out.insert(0, Scan())
    return out[:MAX_STEPS] or [Scan()]


def offered_tools(system_text: str) -> frozenset[str]:
    """The actions a prompt's tool doc offers (a model only uses what it is offered)."""
    return frozenset(act for act in STEP_TYPES if re.search(rf"\b{act}\b", system_text))


def _near(
    snap: Snapshot, tx: int, ty: int, reach: int, terrain: Terrain = NO_TERRAIN
) -> tuple[int, int]:
    """Where to walk to reach (tx, ty) from `reach` tiles away: a known cover tile in reach
    of it nearest to me, else the first tile in reach on the straight line from me that
    the prompt's terrain does not show as wall or water (terrain it did not show may
    still be; validation moves a step off an impassable tile)."""
    me = (snap.me.x, snap.me.y)
    target = (tx, ty)
    taken = {(u.x, u.y) for u in (*snap.allies, *snap.enemies)}
    cover = [c for c in snap.cover if c not in taken and in_range(c, target, reach)]
    if cover:
        return min(cover, key=lambda c: (dist2(c, me), c[1], c[0]))
    for tile in bresenham(me, target):
        if tile not in taken and in_range(tile, target, reach) and not terrain.blocked(*tile):
            return tile
    return me


def _off_blocked(
    snap: Snapshot, x: int, y: int, terrain: Terrain, radius: int = 3
) -> tuple[int, int]:
    """(x, y), or the nearest tile the terrain shown does not block (a model that is
    shown the walls does not aim at them)."""
    if not terrain.blocked(x, y):
        return x, y
    me = (snap.me.x, snap.me.y)
    near = [
        (x + dx, y + dy)
        for dx in range(-radius, radius + 1)
        for dy in range(-radius, radius + 1)
        if 0 <= x + dx < snap.width
        and 0 <= y + dy < snap.height
        and not terrain.blocked(x + dx, y + dy)
    ]
    if not near:
        return x, y
    return min(near, key=lambda t: (max(abs(t[0] - x), abs(t[1] - y)), dist2(t, me), t[1], t[0]))


def mind_the_terrain(steps: Sequence[Step], snap: Snapshot, terrain: Terrain) -> list[Step]:
    """Moves aimed at a wall or water tile the prompt showed, moved off it."""
    out: list[Step] = []
    for step in steps:
        if isinstance(step, MoveTo):
            x, y = _off_blocked(snap, step.x, step.y, terrain)
            step = step if (x, y) == (step.x, step.y) else MoveTo(x=x, y=y)
        out.append(step)
    return out


def within_tools(
    steps: Sequence[Step], snap: Snapshot, tools: frozenset[str], terrain: Terrain = NO_TERRAIN
) -> list[Step]:
    """The plan restated with only offered tools: Approach becomes a MoveTo next to the
    target; actions with no offered equivalent are left out; never empty."""
    units = {u.id: u for u in (*snap.allies, *snap.enemies)}
    out: list[Step] = []
    for step in steps:
        if step.act in tools:
            out.append(step)
        elif isinstance(step, Approach) and "MoveTo" in tools and step.target_id in units:
            target = units[step.target_id]
            # Close to within weapon range of an enemy; right beside an ally.
            hostile = any(e.id == target.id for e in snap.enemies)
            reach = max(1, ROLE_STATS[snap.me.role].range - 1) if hostile else 1
            x, y = _near(snap, target.x, target.y, reach, terrain)
            if (x, y) != (snap.me.x, snap.me.y):
                out.append(MoveTo(x=x, y=y))
    return out[:MAX_STEPS] or [Scan()]


def compose_plans(
    snapshots: Sequence[Snapshot],
    rng: random.Random,
    tools: frozenset[str] = FULL_TOOLS,
    *,
    terrains: Sequence[Terrain] | None = None,
    persona: str | None = None,
    intent: bool = False,
) -> list[SimPlan]:
    """Plan each agent block, in prompt order, using only the tools offered: with a
    `persona`, its plan; else the heuristic plus seeded noise. Moves keep off the walls
    and water each block's `terrains` show. With `intent`, each plan says what it is for
    (the persona's reason, or one read off the plan's steps)."""
    out: list[SimPlan] = []
    for i, snap in enumerate(snapshots):
        terrain = terrains[i] if terrains is not None else NO_TERRAIN
        if persona is not None:
            steps, why = persona_plan(persona, snap, terrain, rng)
        else:
            steps, why = _noisy(list(heuristic_plan(snap, rng)), snap, rng), ""
        steps = mind_the_terrain(within_tools(steps, snap, tools, terrain), snap, terrain)
        said = (why or intent_of(steps, snap)) if intent else None
        out.append((snap.me.id, steps, said))
    return out


def _derive_rng(*parts: object) -> random.Random:
    # hashlib, never hash(): the same inputs must give the same stream in every process.
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def apply_plan_fault(
    kind: FaultKind | None, plans: list[SimPlan], rng: random.Random
) -> list[SimPlan]:
    if not plans:
        return plans
    if kind == "wrong_ids":
        i = rng.randrange(len(plans))
        known = {plan[0] for plan in plans}
        bogus = max(known) + 1 + rng.randrange(50)
        plans = [*plans[:i], (bogus, plans[i][1], plans[i][2]), *plans[i + 1 :]]
    elif kind == "missing_agents":
        i = rng.randrange(len(plans))
        plans = plans[:i] + plans[i + 1 :]
    return plans


PROSE_BEFORE = "Sure! Here are the plans for your squad:\n```json\n"
PROSE_AFTER = "\n```\nEach unit acts on its own plan."


_SEPARATORS: dict[PlanFormat, str] = {"verbose": ":", "compact": ":,"}
"""What a malformed_json fault breaks: a colon (verbose), or a colon or comma (compact
plans have no colons: only the wrapper's would break, and it would break them all)."""


def apply_text_fault(kind: FaultKind | None, reply: Reply, rng: random.Random) -> Reply:
    text = reply.text
    if kind == "malformed_json":
        separators = _SEPARATORS[reply.fmt]
        spots = [i for i, c in enumerate(text) if c in separators]
        if spots:
            at = rng.choice(spots)
            return Reply(text[:at] + "=" + text[at + 1 :], reply.plan_ends, reply.fmt)
    elif kind == "truncation":
        cut = rng.randrange(len(text) // 3, len(text) - 1)
        return Reply(text[:cut], tuple(e for e in reply.plan_ends if e[1] < cut), reply.fmt)
    elif kind == "prose_fences":
        shift = len(PROSE_BEFORE)
        ends = tuple((agent_id, at + shift) for agent_id, at in reply.plan_ends)
        return Reply(PROSE_BEFORE + text + PROSE_AFTER, ends, reply.fmt)
    return reply


# --- the response and its schedule --------------------------------------------------


@dataclass(frozen=True)
class SimResponse:
    """Everything one request gets, with absolute instants on the caller's clock."""

    request_id: int
    arrival: float
    fault: FaultKind | None
    status: int
    """HTTP status: 200, or 500/429 for an injected error (then there are no tokens)."""
    retry_after: float | None
    text: str
    """The whole text the server would send (stall/disconnect send only `cut_after` tokens)."""
    tokens: tuple[str, ...]
    token_times: tuple[float, ...]
    plan_tokens: tuple[tuple[int, int], ...]
    """(agent_id, index of the token carrying its closing brace), in emission order."""
    cut_after: int | None
    """For stall/disconnect: how many tokens leave before the stream stops."""
    finish_reason: str
    """stop | length"""
    start: float
    """The request got its decode slot."""
    overhead_s: float
    prefill_s: float
    """Prefill of the prompt tokens the prefix cache did not hold."""
    first_token_at: float
    end: float
    prompt_tokens: int
    cached_tokens: int
    slot: int = -1
    """The decode slot it holds until `end` (-1: refused before admission)."""

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    @property
    def sent_tokens(self) -> int:
        return len(self.tokens) if self.cut_after is None else self.cut_after

    @property
    def queue_s(self) -> float:
        return self.start - self.arrival

    @property
    def decode_s(self) -> float:
        return self.end - self.first_token_at

    def server_timings(self) -> dict[str, float]:
        return {
            "queue_ms": self.queue_s * 1000.0,
            "overhead_ms": self.overhead_s * 1000.0,
            "prefill_ms": self.prefill_s * 1000.0,
            "decode_ms": self.decode_s * 1000.0,
        }


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class SimModel:
    """The server's state: decode slots, prefix cache, request counter, emissions.

    Deterministic for a seed and a call order. Only mutated from one thread (the
    caller's event loop); `emissions_copy()` may be read from any thread.
    """

    def __init__(
        self,
        preset: Preset,
        seed: int = 0,
        num_parallel: int = 1,
        faults: FaultConfig | None = None,
        persona: str | None = None,
    ) -> None:
        if num_parallel < 1:
            raise ValueError("num_parallel must be at least 1")
        self.persona = resolve(persona, seed)
        """How it plays (planner/sim/persona.py); None: the rule planner plus noise."""
        self.preset = preset
        self.seed = seed
        self.num_parallel = num_parallel
        self.faults = faults or FaultConfig.none()
        self._slot_free: list[float] = [-math.inf] * num_parallel
        self._booked: list[list[list[float]]] = [[] for _ in range(num_parallel)]
        """Per slot, the latest requests it holds: [start, end] (end cut short on release)."""
        self._seen: list[str] = []
        self._next_id = 1
        self._emitted: list[tuple[int, int, float]] = []
        """(request id, agent id, instant its plan's closing brace left), in order. Only
        appended to, or replaced whole when trimmed: another thread reading it under the
        GIL sees a consistent list without a lock (the model stays free of threading)."""

    @property
    def model_name(self) -> str:
        persona = f"-{self.persona}" if self.persona else ""
        return f"sim-{self.preset.name}{persona}"

    def record_emission(self, request_id: int, agent_id: int, at: float) -> None:
        self._emitted.append((request_id, agent_id, at))
        if len(self._emitted) >= 2 * EMISSIONS_KEPT:
            self._emitted = self._emitted[-EMISSIONS_KEPT:]

    def emissions_copy(self) -> dict[int, list[tuple[int, float]]]:
        """request id -> (agent id, instant) in order, for the latest requests."""
        out: dict[int, list[tuple[int, float]]] = {}
        for request_id, agent_id, at in list(self._emitted):
            out.setdefault(request_id, []).append((agent_id, at))
        return out

    def _cached_tokens(self, rendered: str, prompt_tokens: int) -> int:
        best = max((_common_prefix_len(rendered, s) for s in self._seen), default=0)
        if rendered in self._seen:
            self._seen.remove(rendered)
        self._seen.append(rendered)
        del self._seen[:-PREFIX_CACHE_ENTRIES]
        # Like llama.cpp, the last prompt token is always evaluated again.
        return max(0, min(best // CHARS_PER_TOKEN, prompt_tokens - 1))

    def _take_slot(self, arrival: float) -> tuple[int, float, int]:
        slot = min(range(self.num_parallel), key=lambda j: (self._slot_free[j], j))
        start = max(arrival, self._slot_free[slot])
        others = sum(1 for j, t in enumerate(self._slot_free) if j != slot and t > start)
        return slot, start, 1 + others

    def respond(
        self,
        arrival: float,
        messages: Sequence[tuple[str, str]],
        *,
        request_seed: int | None = None,
        max_tokens: int | None = None,
    ) -> SimResponse:
        """Decide the whole answer to one request arriving at `arrival`."""
        request_id = self._next_id
        self._next_id += 1
        fault_rng = _derive_rng(self.seed, "fault", request_id)
        fault = self.faults.pick(fault_rng)
        p = self.preset
        rendered = render_chat(messages)
        prompt_tokens = count_tokens(rendered)

        if fault in HTTP_FAULTS:
            # Rejected before admission: no slot, no prefill, nothing cached.
            at = arrival + p.overhead_s
            return SimResponse(
                request_id=request_id,
                arrival=arrival,
                fault=fault,
                status=500 if fault == "http_500" else 429,
                retry_after=float(RETRY_AFTER_S) if fault == "http_429" else None,
                text="",
                tokens=(),
                token_times=(),
                plan_tokens=(),
                cut_after=None,
                finish_reason="stop",
                start=arrival,
                overhead_s=p.overhead_s,
                prefill_s=0.0,
                first_token_at=at,
                end=at,
                prompt_tokens=prompt_tokens,
                cached_tokens=0,
            )

        user_text = "\n".join(content for role, content in messages if role != "system")
        try:
            agents = list(decode_agents(user_text))
        except ValueError:  # a prompt that is not ours: answer with no plans, never crash
            agents = []
        reply_rng = _derive_rng(self.seed, request_seed, rendered)
        system_text = "\n".join(content for role, content in messages if role == "system")
        tools = offered_tools(system_text) or FULL_TOOLS
        composed = compose_plans(
            [a.snap for a in agents],
            reply_rng,
            tools,
            terrains=[a.terrain for a in agents],
            persona=self.persona,
            intent=asks_intent(system_text),
        )
        plans = apply_plan_fault(fault, composed, fault_rng)
        reply = apply_text_fault(fault, serialise(plans, asked_format(system_text)), fault_rng)

        tokens = tokenize(reply.text)
        finish_reason = "length" if fault == "truncation" else "stop"
        if max_tokens is not None and len(tokens) > max(0, max_tokens):
            tokens = tokens[: max(0, max_tokens)]
            finish_reason = "length"
        plan_tokens = tuple(
            (agent_id, at // CHARS_PER_TOKEN)
            for agent_id, at in reply.plan_ends
            if at // CHARS_PER_TOKEN < len(tokens)
        )

        cached = self._cached_tokens(rendered, prompt_tokens)
        slot, start, active = self._take_slot(arrival)
        rate = p.decode_tps / (1.0 + BATCH_SLOWDOWN * (active - 1))
        prefill_s = (prompt_tokens - cached) / p.prefill_tps
        first = start + p.overhead_s + prefill_s
        times = tuple(first + i / rate for i in range(len(tokens)))
        end = times[-1] if times else first
        self._slot_free[slot] = end
        booked = self._booked[slot]
        booked.append([start, end])
        del booked[:-SLOT_BOOKINGS_KEPT]

        cut_after: int | None = None
        if fault in CUT_FAULTS:
            n = len(tokens)
            cut_after = fault_rng.randrange(n // 4, max(n // 4 + 1, (3 * n) // 4))
            plan_tokens = tuple(pt for pt in plan_tokens if pt[1] < cut_after)

        return SimResponse(
            request_id=request_id,
            arrival=arrival,
            fault=fault,
            status=200,
            retry_after=None,
            text="".join(tokens),
            tokens=tuple(tokens),
            token_times=times,
            plan_tokens=plan_tokens,
            cut_after=cut_after,
            finish_reason=finish_reason,
            start=start,
            overhead_s=p.overhead_s,
            prefill_s=prefill_s,
            first_token_at=first,
            end=end,
            prompt_tokens=prompt_tokens,
            cached_tokens=cached,
            slot=slot,
        )

    def release(self, response: SimResponse, at: float) -> None:
        """The client went away at `at`: like llama.cpp, vLLM and Ollama, stop decoding
        for it and free its slot then (unless a later request already queued behind it
        on that slot, whose schedule is fixed)."""
        slot = response.slot
        if not 0 <= slot < self.num_parallel:
            return
        booked = self._booked[slot]
        for entry in booked:
            if entry == [response.start, response.end]:
                # Decoded until `at`; one still queued when its client left never ran.
                entry[1] = min(entry[1], max(at, entry[0])) if at > entry[0] else entry[0]
                break
        else:
            return
        # Requests already scheduled keep their instants; the slot is free for new ones
        # once the last request really holding it is done.
        self._slot_free[slot] = max((e[1] for e in booked if e[1] > e[0]), default=-math.inf)
