"""The `auto` scheduler: what it knows of the server, and how it shapes each round.

Pure: no clock, no I/O. `ServerModel` learns the server from what finished requests
showed (when each was sent, its first and last token, its token counts, how many of our
requests were in flight with it); `plan_round` turns that knowledge, the round's agents
and the time left into a `Schedule`: how many requests, which agents in each and in what
order, how many output tokens each may take, and who cannot fit (`over_budget`, given a
rule plan at once instead of at the deadline).

The cost model is the one every engine we target follows: a request waits for a free
decode slot (`width` run at once), then pays a fixed overhead and the prefill of its
uncached prompt tokens (ttft), then decodes its plans one token after another at the
per-sequence rate, a little slower the more sequences share the server.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from game.rules.actions import ROLE_STATS
from game.rules.snapshot import Snapshot

BATCH_SLOWDOWN = 0.05
"""Assumed per-sequence decode slowdown (vLLM/llama.cpp continuous batching): a request
admitted after j others of its wave decodes at rate / (1 + 0.05 j)."""
MARGIN_PLANS = 0.25
"""Slack before the deadline, in plans' worth of decode time: estimates are estimates."""
MIN_MARGIN_S = 0.02
MAX_DECODE_TPS = 1e6
"""The fastest decode rate the model learns (a server that answers in no time at all)."""
MAX_REQUESTS = 32
"""Never more requests in one round than this, whatever the server takes."""
SAMPLES = 24
"""How many recent requests the estimates remember."""
RECENT = 3
"""The decode rate is the median of this many latest requests: a server that slows down
(another client, a bigger model) is followed within a few rounds, one odd request is not."""


@dataclass(frozen=True)
class RequestObservation:
    """What one finished request showed, on the planner's timeline (seconds)."""

    sent_at: float
    first_token_at: float | None
    last_token_at: float | None
    uncached_prompt_tokens: int
    completion_tokens: int
    plans: int
    """Plans the answer carried (delivered or not)."""
    wave: int
    """Requests of ours sent together with this one (itself included)."""
    streamed: bool = True


@dataclass
class ServerModel:
    """Online estimates of the server; starts from a cautious prior."""

    width: int = 1
    """Requests the server is known to decode at once (a lower bound until `width_max`)."""
    width_max: int | None = None
    """Set once queueing was seen: the server takes no more than this at once."""
    overhead_s: float = 0.05
    prefill_tps: float = 2000.0
    decode_tps: float = 60.0
    """Per sequence, alone on the server."""
    tokens_per_plan: float = 24.0
    samples: int = 0
    _ttft: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    _decode: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    _per_plan: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))

    # ------------------------------------------------------------------ learning

    def observe_wave(self, wave: Sequence[RequestObservation]) -> None:
        """Learn from requests that were sent together (in the order they were sent)."""
        queued = [_queued(o, wave) for o in wave]
        for position, (o, waited) in enumerate(zip(wave, queued, strict=True)):
            self._observe_one(o, queued=waited, position=position)
        started_at_once = queued.count(False)
        if any(queued):
            # Somebody waited for a slot: the server runs at most this many at once.
            self.width_max = max(1, started_at_once)
            self.width = self.width_max
        elif wave:
            self.width = max(self.width, len(wave))
            if self.width_max is not None and self.width > self.width_max:
                self.width_max = None  # the server grew (another model, more slots)
        self.samples += sum(1 for o in wave if o.first_token_at is not None)

    def _observe_one(self, o: RequestObservation, *, queued: bool, position: int) -> None:
        if o.plans > 0 and o.completion_tokens > 0:
            self._per_plan.append(o.completion_tokens / o.plans)
            self.tokens_per_plan = _mean(self._per_plan)
        if o.first_token_at is None:
            return
        if not queued:
            self._ttft.append((o.uncached_prompt_tokens, o.first_token_at - o.sent_at))
            self._fit_prefill()
        if (
            o.streamed
            and o.last_token_at is not None
            and o.completion_tokens >= 8
            and o.last_token_at > o.first_token_at
        ):
            rate = (o.completion_tokens - 1) / (o.last_token_at - o.first_token_at)
            # Normalised to a sequence alone on the server (it shared the server with the
            # requests of its wave admitted before it).
            self._decode.append(rate * _slowdown(position % max(1, self.width) + 1))
            self.decode_tps = _median(list(self._decode)[-RECENT:])
        elif o.completion_tokens >= 8:
            # A whole answer (or a stream whose tokens all came at one instant) shows no
            # decode timing, only that all of it took this long: decoding is at least that
            # fast (the prior would drop agents that fit); an answer in no time at all is
            # as fast as this model goes.
            took = (o.last_token_at or o.first_token_at) - o.sent_at
            floor = o.completion_tokens / took if took > 0 else MAX_DECODE_TPS
            if floor > self.decode_tps:
                self._decode.append(floor * _slowdown(position % max(1, self.width) + 1))
                self.decode_tps = max(self.decode_tps, _median(list(self._decode)[-RECENT:]))

    def _fit_prefill(self) -> None:
        """ttft = overhead + tokens / prefill_tps, least squares over recent samples."""
        xs = [float(n) for n, _ in self._ttft]
        ys = [t for _, t in self._ttft]
        if len(xs) >= 2 and max(xs) - min(xs) > 16:
            mx, my = _mean(xs), _mean(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
            if slope > 0:
                self.prefill_tps = 1 / slope
                self.overhead_s = max(0.0, my - slope * mx)
                return
        # One size seen: keep the prefill rate, put the rest in the overhead.
        self.overhead_s = max(0.0, _mean([y - x / self.prefill_tps for x, y in self._ttft]))

    def describe(self) -> str:
        width = f"{self.width}" if self.width_max is not None else f">={self.width}"
        return (
            f"width {width}, ttft {self.overhead_s * 1000:.0f} ms + prefill "
            f"{self.prefill_tps:.0f} tok/s, decode {self.decode_tps:.0f} tok/s, "
            f"{self.tokens_per_plan:.1f} tok/plan ({self.samples} requests seen)"
        )

    # ------------------------------------------------------------------ predicting

    def request_seconds(
        self, agents: int, uncached_tokens: int, in_flight: int, position: int = 0
    ) -> float:
        """From sending to the last plan of a request carrying `agents` plans, sent as
        number `position` (0-based) of `in_flight` requests sent together: it waits for a
        slot if the server is full, and decodes a little slower for each request admitted
        before it. While the server has not shown its limit, it is assumed to take what
        we explore with."""
        width = max(1, self.width if self.width_max is not None else self.explore_width())
        decode = self.decode_tps / _slowdown(position % width + 1)
        one = (
            self.overhead_s
            + uncached_tokens / self.prefill_tps
            + agents * self.tokens_per_plan / decode
        )
        # Queued behind earlier waves: about one request like it per wave.
        return (position // width + 1) * one

    def explore_width(self) -> int:
        """How many requests this round may try at once: the known width, or twice it
        while the server has not shown where its limit is."""
        if self.width_max is not None:
            return self.width_max
        return min(MAX_REQUESTS, 2 * max(1, self.width))


# ---------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class PlannedRequest:
    agent_ids: tuple[int, ...]
    """In the order the prompt lists them (most urgent first)."""
    max_tokens: int
    predicted_s: float


@dataclass(frozen=True)
class Schedule:
    requests: tuple[PlannedRequest, ...]
    over_budget: tuple[int, ...]
    """Agents that cannot get an LLM plan in time: their rule plan goes out at once."""
    order: tuple[int, ...]
    """Every agent by urgency, most urgent first."""
    reason: str
    """One line for people: why the round has this shape."""
    predicted_s: float


def urgency(snap: Snapshot) -> tuple[int, int]:
    """Higher first: under fire (an enemy within its weapon range), hurt, nothing to do."""
    me = snap.me
    reach = ROLE_STATS[me.role].range
    under_fire = any(max(abs(e.x - me.x), abs(e.y - me.y)) <= reach for e in snap.enemies)
    hurt = me.hp * 2 < me.max_hp
    idle = me.status.split(",")[0] in ("idle", "cover")
    return (4 * under_fire + 2 * hurt + idle, -me.id)


def plan_round(
    snaps: Sequence[Snapshot],
    server: ServerModel,
    seconds_left: float,
    block_tokens: dict[int, int],
    *,
    max_requests: int = MAX_REQUESTS,
    room: Callable[[int], int] | None = None,
) -> Schedule:
    """Shape one round so that every plan sent lands before the deadline. `room(k)`:
    the output tokens the longest answer for k agents may take in the plan format
    asked for (a request's max_tokens is at least that, if it decodes in time)."""
    ordered = sorted(snaps, key=urgency, reverse=True)
    order = tuple(s.me.id for s in ordered)
    if not ordered:
        return Schedule((), (), (), "nothing to plan", 0.0)
    margin = max(MIN_MARGIN_S, MARGIN_PLANS * server.tokens_per_plan / server.decode_tps)
    usable = seconds_left - margin
    widest = max(1, min(max_requests, server.explore_width()))

    def best_for(n: int) -> tuple[float, int]:
        best = (math.inf, 1)
        for k in range(1, min(n, widest) + 1):
            groups = _split(order[:n], k)
            worst = max(
                server.request_seconds(len(g), sum(block_tokens.get(a, 0) for a in g), k, j)
                for j, g in enumerate(groups)
            )
            if worst < best[0] - 1e-9:
                best = (worst, k)
        return best

    n = len(order)
    seconds, k = best_for(n)
    if server.samples == 0:
        # Nothing learned yet: send everyone (this round is the probe), cut at the deadline.
        usable = math.inf
    while n > 1 and seconds > usable:
        n -= 1
        seconds, k = best_for(n)
    if seconds > usable:
        # Not even one agent fits. The most urgent is still asked, alone and with an output
        # budget that ends at the deadline: the probe that notices a server grown faster.
        probe = PlannedRequest(order[:1], _max_tokens(server, 1, seconds_left, 0), seconds)
        return Schedule(
            (probe,),
            order[1:],
            order,
            f"no plan fits in {seconds_left * 1000:.0f} ms: probing with #{order[0]}",
            seconds,
        )
    groups = _split(order[:n], k)
    requests = []
    for j, g in enumerate(groups):
        predicted = server.request_seconds(len(g), sum(block_tokens.get(a, 0) for a in g), k, j)
        max_tokens = _max_tokens(server, len(g), seconds_left, j, room)
        requests.append(PlannedRequest(g, max_tokens, predicted))
    over = order[n:]
    width = f"width {server.width}" + ("" if server.width_max is not None else "+")
    reason = (
        f"{len(order)} agents in {k} request{'s' * (k != 1)} ({width}, "
        f"{server.tokens_per_plan:.0f} tok/plan at {server.decode_tps:.0f} tok/s)"
    )
    if over:
        reason += f"; {len(over)} over budget"
    return Schedule(tuple(requests), over, order, reason, seconds)


def _split(order: Sequence[int], k: int) -> list[tuple[int, ...]]:
    """Deal the agents round-robin so each request starts with an urgent one."""
    groups: list[list[int]] = [[] for _ in range(k)]
    for i, agent_id in enumerate(order):
        groups[i % k].append(agent_id)
    return [tuple(g) for g in groups if g]


def _max_tokens(
    server: ServerModel,
    agents: int,
    seconds_left: float,
    position: int,
    room: Callable[[int], int] | None = None,
) -> int:
    """Room for the plans with a margin (and for the longest answer the format allows),
    but no more than the server can decode before the deadline: a request cut there
    frees its slot instead of decoding for nobody."""
    want = math.ceil(agents * server.tokens_per_plan * 1.6) + 24
    if room is not None:
        want = max(want, room(agents))
    decode = server.decode_tps / _slowdown(position % max(1, server.width) + 1)
    if server.samples == 0:
        return want  # the probe: the deadline, not a guessed rate, ends it
    fits = math.floor(max(0.0, seconds_left - server.overhead_s) * decode)
    return max(16, min(want, fits))


def _slowdown(sharing: int) -> float:
    """How much slower one sequence decodes while `sharing` sequences run (itself too)."""
    return 1 + BATCH_SLOWDOWN * (sharing - 1)


def _queued(o: RequestObservation, wave: Sequence[RequestObservation]) -> bool:
    """It waited for a slot: its first token came only after another request of its wave
    had finished (or never came while others were answered)."""
    others = [w for w in wave if w is not o and w.last_token_at is not None]
    if o.first_token_at is None:
        return bool(others)
    return any(w.last_token_at is not None and w.last_token_at <= o.first_token_at for w in others)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mean(values: Sequence[float] | deque[float]) -> float:
    return sum(values) / len(values)
