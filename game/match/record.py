"""Match records: JSON Lines written during a match, read back to replay it exactly.

One JSON object per line, each with a `kind`:

- `header`  scenario (with its map text, so custom maps replay too), seed, turn limit,
            who plans each squad, planner settings, backend name and model
- `round`   a planning round submitted: tick, round id, squad, every agent's snapshot
- `event`   a planner event as the game received it: the prompts (`RequestSent`), every
            raw chunk with its instant (`ChunkReceived`), how each answer ended
            (`ResponseEnded`), deliveries with tier and cause, fallbacks, round stats
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
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from game.rules.snapshot import Snapshot
from game.rules.steps import Step
from planner.backends.replay import RecordedChunk, RecordedResponse
from planner.core import PlanningRound
from planner.events import PlanEvent
from planner.schedule import PlannedRequest, Schedule

RECORD_VERSION = 1


class MatchRecordError(ValueError):
    """A record that cannot be replayed; the message names the file and line."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderLine(_Line):
    kind: Literal["header"]
    version: int
    scenario: str
    map_text: str
    seed: int
    turn_limit: int
    owners: dict[str, str]
    """squad -> llm | heuristic | random | player"""
    settings: dict[str, Any]
    backend: str
    model: str
    pacing: dict[str, bool] = Field(default_factory=dict)
    """Interim plans and planning ahead as the match began (absent in older records)."""


class RoundLine(_Line):
    kind: Literal["round"]
    tick: int
    round_id: int
    squad: str
    snapshots: tuple[Snapshot, ...]


class EventLine(_Line):
    kind: Literal["event"]
    type: str
    data: dict[str, Any]


class AppliedLine(_Line):
    kind: Literal["applied"]
    tick: int
    unit_id: int
    steps: tuple[Step, ...]
    source: Literal["llm", "player", "interim"]


class EndLine(_Line):
    kind: Literal["end"]
    tick: int
    winner: str
    state_hash: str


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


class Recorder:
    """Writes a match record line by line, as one of the Session's observers: launch writes
    the header, the Session reports the rest. Flushed at each round (so a crash keeps most)
    and closed at the match's end; what it is told after that is not written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._out: IO[str] = self.path.open("w", encoding="utf-8")

    def _write(self, obj: dict[str, Any]) -> None:
        if not self._out.closed:
            self._out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")

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
        data = {
            f.name: _plain(getattr(event, f.name))
            for f in dataclasses.fields(event)
            if f.name not in SKIPPED_FIELDS
        }
        self._write({"kind": "event", "type": type(event).__name__, "data": data})

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
        self._write({"kind": "end", "tick": tick, "winner": winner, "state_hash": state_hash})
        self.close()

    def close(self) -> None:
        if not self._out.closed:
            self._out.close()


@dataclass
class MatchRecord:
    header: HeaderLine
    rounds: list[RoundLine] = field(default_factory=list)
    responses: list[RecordedResponse] = field(default_factory=list)
    applied: dict[int, list[AppliedLine]] = field(default_factory=lambda: defaultdict(list))
    end: EndLine | None = None
    events: int = 0
    schedules: list[Schedule] = field(default_factory=list)
    """`auto`'s decisions in the order they were taken (replayed, not re-decided)."""


def _parse_line(path: Path, lineno: int, text: str) -> RecordLine:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MatchRecordError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
    try:
        return _LINE.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MatchRecordError(
            f"{path}:{lineno}: bad record line: {where}: {first['msg']}"
        ) from None


def load_record(path: str | Path) -> MatchRecord:
    """Read and check a whole record; a corrupt or truncated one raises MatchRecordError."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise MatchRecordError(f"{path}: cannot read record: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MatchRecordError(f"{path}: not a UTF-8 text file") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise MatchRecordError(f"{path}:1: empty record")
    first = _parse_line(path, 1, lines[0])
    if not isinstance(first, HeaderLine):
        raise MatchRecordError(f"{path}:1: a record starts with its header")
    if first.version != RECORD_VERSION:
        raise MatchRecordError(f"{path}:1: record version {first.version} is not supported")
    record = MatchRecord(first)
    open_requests: dict[int, dict[str, Any]] = {}
    for lineno, line in enumerate(lines[1:], start=2):
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
                record.applied[parsed.tick].append(parsed)
            case EndLine():
                record.end = parsed
            case EventLine():
                record.events += 1
                _collect(record, open_requests, parsed, path, lineno)
    if record.end is None:
        raise MatchRecordError(
            f"{path}:{len(lines)}: record is truncated (no end line after line {len(lines)})"
        )
    return record


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
            open_requests[int(data["request_id"])] = {
                "ids": tuple(int(i) for i in data["agent_ids"]),
                "chunks": [],
            }
        elif line.type == "RoundScheduled":
            record.schedules.append(
                Schedule(
                    requests=tuple(
                        PlannedRequest(
                            tuple(int(i) for i in r["agent_ids"]),
                            int(r["max_tokens"]),
                            float(r["predicted_ms"]) / 1000,
                        )
                        for r in data["requests"]
                    ),
                    over_budget=tuple(int(i) for i in data["over_budget"]),
                    order=(),
                    reason=str(data["reason"]),
                    predicted_s=float(data["predicted_ms"]) / 1000,
                )
            )
        elif line.type == "ChunkReceived":
            req = open_requests[int(data["request_id"])]
            req["chunks"].append((float(data["at"]), str(data["text"])))
        elif line.type == "ResponseEnded":
            req = open_requests[int(data["request_id"])]
            start = float(data["started_at"])
            record.responses.append(
                RecordedResponse(
                    agent_ids=req["ids"],
                    chunks=tuple(RecordedChunk(at - start, text) for at, text in req["chunks"]),
                    finish_reason=str(data["finish_reason"]),
                    error=str(data["error"]),
                    error_cause=str(data["error_cause"]),
                    error_status=int(data["error_status"]),
                    retry_after=None if data["retry_after"] is None else float(data["retry_after"]),
                    end_offset_s=float(data["at"]) - start,
                    usage=(
                        int(data["prompt_tokens"]),
                        int(data["cached_tokens"]),
                        int(data["completion_tokens"]),
                    ),
                )
            )
            req["chunks"] = []  # a retry's attempt starts afresh
    except (KeyError, TypeError, ValueError) as exc:
        raise MatchRecordError(f"{path}:{lineno}: bad {line.type} event ({exc})") from None
