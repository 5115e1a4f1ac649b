"""Match records: JSON Lines written during a match, read back to replay it exactly.

One JSON object per line, each with a `kind`:

- `header`  scenario (with its map text, so custom maps replay too), seed, turn limit,
            who plans each squad, planner settings, backend name and model
- `round`   a planning round submitted: tick, round id, squad, every agent's snapshot
- `event`   a planner event as the game received it: the prompts (`RequestSent`), every
            raw chunk with its instant (`ChunkReceived`), how each answer ended
            (`ResponseEnded`), deliveries with tier and cause, fallbacks, round stats;
            `"heard": false` on one the game never drained (a virtual round superseded
            before its instant had run to its end: its later answers still shaped the
            planner, so only a replay's backend is fed them)
- `applied` a plan the world was given: tick, unit, steps, source (llm | player | interim)
- `end`     final tick, winner, state_hash

Replay feeds the recorded streams back through the real planner pipeline (so the
overlay, waterfall and inspector show what happened) and gives the world exactly the
recorded plans at the recorded ticks, so the final `state_hash` is identical whatever
clock the original match ran on. Records hold no secrets: API keys and headers never
reach planner events.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from game.rules.scenarios import MapError, Scenario, parse
from game.rules.snapshot import Snapshot
from game.rules.steps import Step
from planner.backends.base import Capabilities
from planner.backends.replay import NEVER_S, RecordedChunk, RecordedResponse
from planner.core import PlanningRound
from planner.errors import first_error
from planner.events import PlanEvent
from planner.fallback import Tier
from planner.schedule import PlannedRequest, Schedule
from planner.settings import PlannerSettings

RECORD_VERSION = 1

MAX_LINE_CHARS = 4_000_000
"""A longer line is refused before it is parsed (a header with the largest map, a round
with every snapshot, a prompt: all far shorter)."""
MAX_NESTING = 64
"""Brackets nested deeper than this are refused before `json.loads` sees them (a record
line nests about 6 deep)."""
MAX_MAP_CHARS = 200_000
MAX_MAP_SIDE = 256
"""A header's map: its text, and its width and height, checked before it is parsed."""
MAX_TURN_LIMIT = 100_000
MAX_INSTANT_S = 1e7
"""Recorded instants and offsets are seconds, finite, and below about 115 days."""

Owner = Literal["llm", "heuristic", "random", "player"]


class MatchRecordError(ValueError):
    """A record that cannot be replayed; the message names the file and line."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class HeaderLine(_Line):
    kind: Literal["header"]
    version: int
    scenario: str = Field(max_length=200)
    map_text: str = Field(max_length=MAX_MAP_CHARS)
    seed: int = Field(ge=-(2**63), lt=2**63)
    turn_limit: int = Field(ge=1, le=MAX_TURN_LIMIT)
    owners: dict[Literal["red", "blue"], Owner]
    """squad -> llm | heuristic | random | player"""
    settings: dict[str, Any]
    backend: str
    model: str
    pacing: dict[str, bool] = Field(default_factory=dict)
    """Interim plans and planning ahead as the match began (absent in older records)."""
    capabilities: dict[str, bool | int | str] = Field(default_factory=dict, max_length=50)
    """The recorded backend's capabilities (planner/backends/base.py), so the replay builds
    its requests the same way (absent in older records: the defaults)."""


class RoundLine(_Line):
    kind: Literal["round"]
    tick: int = Field(ge=0)
    round_id: int = Field(ge=0)
    squad: Literal["red", "blue"]
    snapshots: tuple[Snapshot, ...]


class EventLine(_Line):
    kind: Literal["event"]
    type: str
    data: dict[str, Any]
    heard: bool = True
    """False: the planner produced it but the game never drained it (its round was
    superseded first); only a replay's backend is fed it."""


class AppliedLine(_Line):
    kind: Literal["applied"]
    tick: int = Field(ge=0)
    unit_id: int = Field(ge=1)
    steps: tuple[Step, ...]
    source: Literal["llm", "player", "interim"]


class EndLine(_Line):
    kind: Literal["end"]
    tick: int = Field(ge=0)
    winner: str = Field(max_length=50)
    state_hash: str = Field(max_length=128)
    digest: str | None = Field(default=None, max_length=100)
    """sha256 over the streams and snapshots as written (absent in older records)."""


RecordLine = Annotated[
    HeaderLine | RoundLine | EventLine | AppliedLine | EndLine, Field(discriminator="kind")
]
_LINE: TypeAdapter[RecordLine] = TypeAdapter(RecordLine)


def _plain(value: Any) -> Any:
    """JSON-ready copy of an event field (dataclasses, pydantic models, enums, tuples)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


SKIPPED_FIELDS = {"trace"}
"""Event fields a record leaves out (the trace repeats instants already recorded)."""


def _data(event: PlanEvent) -> dict[str, Any]:
    return {
        f.name: _plain(getattr(event, f.name))
        for f in dataclasses.fields(event)
        if f.name not in SKIPPED_FIELDS
    }


class Recorder:
    """Writes a match record line by line, as one of the Session's observers: launch writes
    the header, the Session reports the rest. Flushed at each round (so a crash keeps most)
    and closed at the match's end; what it is told after that is not written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._out: IO[str] = self.path.open("w", encoding="utf-8", newline="\n")
        self._digest = Digest()

    def _write(self, obj: dict[str, Any]) -> None:
        if not self._out.closed:
            line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
            self._digest.add(line)
            self._out.write(line + "\n")

    def header(self, header: HeaderLine) -> None:
        self._write(header.model_dump(mode="json"))

    def on_round_submitted(self, tick: int, planning: PlanningRound) -> None:
        self._write(
            {
                "kind": "round",
                "tick": tick,
                "round_id": planning.round_id,
                "squad": planning.squad,
                "snapshots": [s.model_dump(mode="json") for s in planning.snapshots],
            }
        )
        if not self._out.closed:
            self._out.flush()

    def on_event(self, event: PlanEvent) -> None:
        self._write({"kind": "event", "type": type(event).__name__, "data": _data(event)})

    def on_unheard(self, event: PlanEvent) -> None:
        """An event the planner produced that the game will never drain (a `VirtualPlanner`
        round superseded before its instant): a replay's planner must be fed it too."""
        line = {"kind": "event", "type": type(event).__name__, "data": _data(event)}
        self._write({**line, "heard": False})

    def on_plan_applied(
        self, tick: int, unit_id: int, steps: tuple[Step, ...], source: str
    ) -> None:
        self._write(
            {
                "kind": "applied",
                "tick": tick,
                "unit_id": unit_id,
                "steps": [s.model_dump(mode="json") for s in steps],
                "source": source,
            }
        )

    def on_match_end(self, tick: int, winner: str, state_hash: str) -> None:
        self._write(
            {
                "kind": "end",
                "tick": tick,
                "winner": winner,
                "state_hash": state_hash,
                "digest": self._digest.hexdigest(),
            }
        )
        self.close()

    def close(self) -> None:
        if not self._out.closed:
            self._out.close()


@dataclass
class MatchRecord:
    header: HeaderLine
    scenario: Scenario
    rounds: list[RoundLine] = field(default_factory=list)
    responses: list[RecordedResponse] = field(default_factory=list)
    applied: dict[int, list[AppliedLine]] = field(default_factory=lambda: defaultdict(list))
    end: EndLine | None = None
    events: int = 0
    schedules: dict[int, list[Schedule]] = field(default_factory=dict)
    """`auto`'s decisions in the order they were taken (replayed, not re-decided)."""
    response_lines: list[int] = field(default_factory=list)
    """Where each response's attempt began in the file (its request, or its previous end)."""
    digest: str = ""
    """The digest of the lines as read (compare with `end.digest`)."""
    capabilities: Capabilities = field(default_factory=Capabilities)
    """The header's, checked."""
    deliveries: list[EventLine] = field(default_factory=list)
    """The PlanDelivered events, in order (what a warm cache is built from)."""
    round_starts: list[EventLine] = field(default_factory=list)
    """The RoundStarted events (each round's start tier: the window can switch it)."""


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _nesting(text: str) -> int:
    """How deep brackets nest in a JSON text (strings do not count)."""
    brackets = "".join(re.findall(r"[\[\]{}]", _STRING.sub("", text)))
    if len(brackets) <= MAX_NESTING:
        return len(brackets)
    depth = deepest = 0
    for c in brackets:
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _parse_line(path: Path, lineno: int, text: str) -> RecordLine:
    if len(text) > MAX_LINE_CHARS:
        raise MatchRecordError(f"{path}:{lineno}: line longer than {MAX_LINE_CHARS:,} characters")
    if _nesting(text) > MAX_NESTING:
        raise MatchRecordError(f"{path}:{lineno}: JSON nested deeper than {MAX_NESTING} levels")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise MatchRecordError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
    except ValueError as exc:
        raise MatchRecordError(f"{path}:{lineno}: not JSON ({exc})") from None
    try:
        # Strict: `"1"` is not a version, `1.0` not a tick (JSON arrays still fill tuples).
        del raw
        return _LINE.validate_json(text, strict=True)
    except ValidationError as exc:
        raise MatchRecordError(f"{path}:{lineno}: bad record line: {first_error(exc)}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines without their newline, each read with a bounded size."""
    try:
        with path.open("r", encoding="utf-8", newline="\n") as f:
            lineno = 0
            while True:
                lineno += 1
                line = f.readline(MAX_LINE_CHARS + 2)
                if not line:
                    return
                if not line.endswith("\n"):
                    if len(line) > MAX_LINE_CHARS:
                        raise MatchRecordError(
                            f"{path}:{lineno}: line longer than {MAX_LINE_CHARS:,} characters"
                        )
                    yield lineno, line
                    return
                yield lineno, line[:-1]
    except OSError as exc:
        raise MatchRecordError(f"{path}: cannot read record: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MatchRecordError(f"{path}: not a UTF-8 text file") from None


def _scenario(path: Path, header: HeaderLine) -> Scenario:
    """The header's map, its size checked before it is parsed."""
    rows = [r for r in header.map_text.splitlines() if not r.startswith("#")]
    widest = max((len(r) for r in rows), default=0)
    if len(rows) > MAX_MAP_SIDE or widest > MAX_MAP_SIDE:
        raise MatchRecordError(
            f"{path}:1: the record's map is {widest}x{len(rows)}; at most "
            f"{MAX_MAP_SIDE}x{MAX_MAP_SIDE} is replayed"
        )
    try:
        return parse(header.map_text, f"{path}:1: map", header.scenario)
    except MapError as exc:
        raise MatchRecordError(str(exc)) from None


DIGESTED_EVENTS = frozenset({"RequestSent", "ChunkReceived", "ResponseEnded", "RoundScheduled"})
"""Event lines the integrity digest covers (with every `round` line's snapshots): what a
replay feeds its planner."""


def _digested(line: str) -> bool:
    """Is this written line one the digest covers? (Decided on the line's own kind/type.)"""
    if line.startswith('{"kind":"round"'):
        return True
    if line.startswith('{"kind":"event","type":"'):
        kind = line[len('{"kind":"event","type":"') :].split('"', 1)[0]
        return kind in DIGESTED_EVENTS
    return False


class Digest:
    """sha256 over the record lines a replay is fed: streams and snapshots, byte for byte."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def add(self, line: str) -> None:
        if _digested(line):
            self._sha.update(line.encode("utf-8"))
            self._sha.update(b"\n")

    def hexdigest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


_CAPABILITIES: TypeAdapter[Capabilities] = TypeAdapter(Capabilities)


def _capabilities(path: Path, header: HeaderLine) -> Capabilities:
    unknown = sorted(set(header.capabilities) - {f.name for f in dataclasses.fields(Capabilities)})
    if unknown:
        raise MatchRecordError(f"{path}:1: bad record line: capabilities: unknown {unknown[0]!r}")
    try:
        # From JSON text: strict (no "1" for a bool) and a dict may fill the dataclass.
        return _CAPABILITIES.validate_json(json.dumps(header.capabilities), strict=True)
    except ValidationError as exc:
        where = first_error(exc, within="capabilities")
        raise MatchRecordError(f"{path}:1: bad record line: {where}") from None


def load_record(path: str | Path) -> MatchRecord:
    """Read and check a whole record; a corrupt, hostile or truncated one raises
    MatchRecordError naming the line."""
    path = Path(path)
    lines = _lines(path)
    first_line = next(lines, None)
    if first_line is None:
        raise MatchRecordError(f"{path}:1: empty record")
    first = _parse_line(path, 1, first_line[1])
    if not isinstance(first, HeaderLine):
        raise MatchRecordError(f"{path}:1: a record starts with its header")
    if first.version != RECORD_VERSION:
        raise MatchRecordError(f"{path}:1: record version {first.version} is not supported")
    record = MatchRecord(
        first, scenario=_scenario(path, first), capabilities=_capabilities(path, first)
    )
    units = len(record.scenario.spawns)
    digest = Digest()
    open_requests: dict[int, dict[str, Any]] = {}
    last = end_line = 1
    for lineno, line in lines:
        last = lineno
        if not line.strip():
            continue
        parsed = _parse_line(path, lineno, line)
        if record.end is not None:
            raise MatchRecordError(f"{path}:{lineno}: line after the end of the match")
        match parsed:
            case HeaderLine():
                raise MatchRecordError(f"{path}:{lineno}: a second header")
            case RoundLine():
                record.rounds.append(parsed)
            case AppliedLine():
                if parsed.unit_id > units:
                    raise MatchRecordError(
                        f"{path}:{lineno}: applied plan for unit {parsed.unit_id}: the map "
                        f"has units 1..{units}"
                    )
                record.applied[parsed.tick].append(parsed)
            case EndLine():
                record.end = parsed
                end_line = lineno
                continue
            case EventLine():
                record.events += parsed.heard
                if parsed.type == "PlanDelivered":
                    record.deliveries.append(parsed)
                elif parsed.type == "RoundStarted":
                    record.round_starts.append(parsed)
                _collect(record, open_requests, parsed, path, lineno)
        digest.add(line)
    if record.end is None:
        raise MatchRecordError(
            f"{path}:{last}: record is truncated (no end line after line {last})"
        )
    _unended(record, open_requests)
    record.digest = digest.hexdigest()
    if record.end.digest is not None and record.end.digest != record.digest:
        raise MatchRecordError(
            f"{path}:{end_line}: record was edited: digest mismatch (its streams or "
            "snapshots are not the ones recorded)"
        )
    return record


def recorded_settings(header: HeaderLine) -> PlannerSettings:
    """The planner settings a record's match began with (raises TypeError, ValueError or
    KeyError on bad ones)."""
    recorded = dict(header.settings)
    if "situation_offset" in recorded:
        # records older than the landmark situation key (issue 17): its buckets meant
        # something else and its hits cannot be made again
        recorded.pop("situation_offset")
        recorded["similarity"] = False
    # records older than intents asked for none
    return PlannerSettings(
        **{"intent": False, **recorded, "start_tier": Tier(recorded["start_tier"])}
    )


class RecordedPlans:
    """A replay's plan source for the Session: the world gets exactly the record's `applied`
    plans at their ticks; the planner's re-run deliveries only fill the log (overlay,
    waterfall, inspector), and the player's orders are refused. The match stops at the
    record's last tick, won or not."""

    replaying = True

    def __init__(self, record: MatchRecord) -> None:
        self.record = record
        self._round_ticks = sorted({r.tick for r in record.rounds})
        self._round_squads: dict[int, list[str]] = defaultdict(list)
        for r in record.rounds:
            self._round_squads[r.tick].append(r.squad)

    @property
    def end_tick(self) -> int | None:
        return self.record.end.tick if self.record.end is not None else None

    def refusal(self) -> str | None:
        return "replaying a record: orders are the record's"

    def due(self, tick: int) -> Sequence[AppliedLine]:
        return self.record.applied.get(tick, ())

    def round_ticks(self) -> list[int]:
        return list(self._round_ticks)

    def round_squads(self, tick: int) -> Sequence[str]:
        """The squads whose rounds the record has starting at `tick` (planning ahead
        starts them between turns, so the replay asks at the same ticks)."""
        return self._round_squads.get(tick, ())


def _int(data: dict[str, Any], key: str, low: int = 0, high: int = 2**63) -> int:
    value = data[key]
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    """An integer, or None where the server did not say (unknown usage)."""
    return None if data[key] is None else _int(data, key)


def _seconds(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if type(value) not in (int, float) or not (
        math.isfinite(value) and -MAX_INSTANT_S <= value <= MAX_INSTANT_S
    ):
        raise ValueError(f"{key} must be a finite number of seconds, got {value!r}")
    return float(value)


def _str(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _ids(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 10_000:
        raise ValueError(f"{key} must be a list of unit ids")
    return tuple(_int({key: v}, key, 1, 10_000) for v in value)


def _offset(at: float, start: float, what: str) -> float:
    offset = at - start
    if offset < 0:
        raise ValueError(f"{what} {at} is before the request started ({start})")
    return offset


def _collect(
    record: MatchRecord,
    open_requests: dict[int, dict[str, Any]],
    line: EventLine,
    path: Path,
    lineno: int,
) -> None:
    data = line.data
    try:
        if line.type == "RequestSent":
            open_requests[_int(data, "request_id")] = {
                "ids": _ids(data["agent_ids"], "agent_ids"),
                "chunks": [],
                "sent": _seconds(data, "at"),
                "attempt": 0,
                "line": lineno,
            }
        elif line.type == "RoundScheduled":
            requests = data["requests"]
            if not isinstance(requests, list):
                raise ValueError("requests must be a list")
            record.schedules.setdefault(_int(data, "round_id"), []).append(
                Schedule(
                    requests=tuple(
                        PlannedRequest(
                            _ids(r["agent_ids"], "agent_ids"),
                            _int(r, "max_tokens", 0, 10**7),
                            _seconds(r, "predicted_ms") / 1000,
                        )
                        for r in requests
                    ),
                    over_budget=_ids(data["over_budget"], "over_budget"),
                    order=(),
                    reason=_str(data, "reason"),
                    predicted_s=_seconds(data, "predicted_ms") / 1000,
                )
            )
        elif line.type == "ChunkReceived":
            req = open_requests[_int(data, "request_id")]
            req["chunks"].append((_seconds(data, "at"), _str(data, "text")))
        elif line.type == "ResponseEnded":
            request_id = _int(data, "request_id")
            req = open_requests[request_id]
            _seconds(data, "started_at")  # checked; offsets count from the request's sending
            start = req["sent"]
            retry_after = data["retry_after"]
            record.responses.append(
                RecordedResponse(
                    agent_ids=req["ids"],
                    chunks=tuple(
                        RecordedChunk(_offset(at, start, "chunk at"), text)
                        for at, text in req["chunks"]
                    ),
                    finish_reason=_str(data, "finish_reason"),
                    error=_str(data, "error"),
                    error_cause=_str(data, "error_cause"),
                    error_status=_int(data, "error_status", 0, 999),
                    retry_after=None if retry_after is None else _seconds(data, "retry_after"),
                    end_offset_s=_offset(_seconds(data, "at"), start, "end at"),
                    usage=(
                        _opt_int(data, "prompt_tokens"),
                        _opt_int(data, "cached_tokens"),
                        _opt_int(data, "completion_tokens"),
                    ),
                    request_id=request_id,
                    attempt=req["attempt"],
                )
            )
            record.response_lines.append(req["line"])
            req["chunks"] = []  # a retry's attempt starts afresh
            req["attempt"] += 1
            req["line"] = lineno
    except (KeyError, TypeError, ValueError) as exc:
        raise MatchRecordError(f"{path}:{lineno}: bad {line.type} event ({exc})") from None


def _unended(record: MatchRecord, open_requests: dict[int, dict[str, Any]]) -> None:
    """A request whose end the original never saw (its round superseded, or the match over
    first): its chunks, then silence, so the replay hears exactly as much."""
    for request_id, req in open_requests.items():
        if not req["chunks"]:
            continue
        start = req["sent"]
        record.response_lines.append(req["line"])
        record.responses.append(
            RecordedResponse(
                agent_ids=req["ids"],
                chunks=tuple(
                    RecordedChunk(max(0.0, at - start), text) for at, text in req["chunks"]
                ),
                finish_reason="",
                error="",
                error_cause="",
                error_status=0,
                retry_after=None,
                end_offset_s=NEVER_S,
                usage=(0, 0, 0),
                ended=False,
                request_id=request_id,
                attempt=req["attempt"],
            )
        )
    # In the order the attempts began (the replay gives a request the earliest unused
    # answer for its agents).
    order = sorted(range(len(record.responses)), key=lambda i: record.response_lines[i])
    record.responses = [record.responses[i] for i in order]
    record.response_lines = [record.response_lines[i] for i in order]
