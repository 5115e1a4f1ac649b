"""Scenarios: text maps in `assets/maps/NAME.txt`.

File format
-----------
Optional header lines first, each ``# key: value`` (a ``#`` then a space; grid
rows never contain spaces, so a row of walls ``#####`` is never a header):

    # name: village          (default: the file name without .txt)
    # description: free text
    # hold_turns: 4          turns one squad must hold the objective alone (default 3)
    # turn_limit: 60         turns before the match is a draw (default 60)

Blank lines are ignored. Then a rectangular grid, one row per line:

    .  floor            #  wall (blocks movement and sight)
    +  low cover        ~  water (impassable, does not block sight)
    O  objective zone tile

Spawn letters put a unit on a floor tile. Case picks the squad, the letter the role:

    lowercase = blue squad, UPPERCASE = red squad
    r/R rifleman    s/S scout    m/M medic    h/H heavy

Unit ids are 1, 2, 3, ... in reading order (top row first, left to right), so they
are stable for a given map. Errors are one line: ``path:line: problem``.

A map is at most MAX_MAP_WIDTH x MAX_MAP_HEIGHT tiles (checked while reading, before
any grid is built); a UTF-8 byte order mark at the start is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Final, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from game.rules.grid import OBJECTIVE, TERRAIN_CHARS, Grid
from game.rules.snapshot import Role

SQUADS: Final[tuple[str, str]] = ("blue", "red")

SPAWN_ROLES: Final[dict[str, Role]] = {
    "r": "rifleman",
    "s": "scout",
    "m": "medic",
    "h": "heavy",
}


MAX_MAP_WIDTH: Final = 256
MAX_MAP_HEIGHT: Final = 256
BOM: Final = "\ufeff"


class MapError(ValueError):
    """A map or scenario could not be loaded; the message is one line naming file and line."""


@dataclass(frozen=True)
class Spawn:
    x: int
    y: int
    squad: str
    role: Role


@dataclass(frozen=True)
class Scenario:
    name: str
    grid: Grid
    spawns: tuple[Spawn, ...]
    """In reading order; unit id = index + 1."""
    objective: tuple[tuple[int, int], ...]
    """Objective zone tiles in reading order (may be empty for custom maps)."""
    hold_turns: int
    turn_limit: int
    description: str = ""
    source: str = ""

    @cached_property
    def objective_centre(self) -> tuple[int, int] | None:
        """The zone tile nearest the zone's centroid (ties: reading order)."""
        if not self.objective:
            return None
        n = len(self.objective)
        sx = sum(x for x, _ in self.objective)
        sy = sum(y for _, y in self.objective)
        # Compare n*tile against the sum to stay in integers.
        return min(self.objective, key=lambda t: (t[0] * n - sx) ** 2 + (t[1] * n - sy) ** 2)


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=64)
    description: str = Field(default="", max_length=500)
    hold_turns: int = Field(default=3, gt=0, le=1000)
    turn_limit: int = Field(default=60, gt=0, le=100_000)


def parse(text: str, source: str = "<map>", default_name: str = "custom") -> Scenario:
    """Parse map text; every problem raises MapError("source:line: ...")."""
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    rows: list[tuple[int, str]] = []
    text = text.removeprefix(BOM).replace("\r\n", "\n").replace("\r", "\n")
    for lineno, (raw, after) in enumerate(_lines(text), start=1):
        line = raw.rstrip()
        if not line:
            continue
        if line.startswith("# "):
            if rows:
                raise MapError(f"{source}:{lineno}: header line after the grid started")
            key, sep, value = line[2:].partition(":")
            key = key.strip()
            if not sep or not key:
                raise MapError(f"{source}:{lineno}: header must look like '# key: value'")
            header[key] = value.strip()
            header_lines[key] = lineno
            continue
        rows.append((lineno, line))
        if len(line) > MAX_MAP_WIDTH or len(rows) > MAX_MAP_HEIGHT:
            _too_large(text, rows, source, after)

    meta = _parse_header(header, header_lines, source)
    if not rows:
        raise MapError(f"{source}: map has no grid rows")

    width = len(rows[0][1])
    terrain: list[tuple[str, ...]] = []
    spawns: list[Spawn] = []
    for y, (lineno, line) in enumerate(rows):
        if len(line) != width:
            raise MapError(
                f"{source}:{lineno}: row has {len(line)} characters, expected {width} "
                "(rows must all be the same width)"
            )
        row: list[str] = []
        for x, ch in enumerate(line):
            if ch in TERRAIN_CHARS:
                row.append(TERRAIN_CHARS[ch])
            elif ch.lower() in SPAWN_ROLES:
                squad = "blue" if ch.islower() else "red"
                spawns.append(Spawn(x, y, squad, SPAWN_ROLES[ch.lower()]))
                row.append(TERRAIN_CHARS["."])
            else:
                raise MapError(f"{source}:{lineno}: unknown map character {ch!r} at column {x + 1}")
        terrain.append(tuple(row))

    for squad in SQUADS:
        if not any(s.squad == squad for s in spawns):
            hint = "lowercase r/s/m/h" if squad == "blue" else "uppercase R/S/M/H"
            last = rows[-1][0]
            raise MapError(f"{source}:{last}: no spawn points for squad {squad!r} ({hint})")

    grid = Grid(width=width, height=len(terrain), rows=tuple(terrain))
    return Scenario(
        name=meta.name or default_name,
        grid=grid,
        spawns=tuple(spawns),
        objective=grid.tiles_of(OBJECTIVE),
        hold_turns=meta.hold_turns,
        turn_limit=meta.turn_limit,
        description=meta.description,
        source=source,
    )


def _lines(text: str) -> Iterator[tuple[str, int]]:
    """Each line of `text` and the offset after it, one at a time (so a huge map is
    refused after its 257th row, before the rest is split)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end], end + 1
        start = end + 1


def _rows_after(text: str, start: int) -> int:
    """Non-empty lines from `start` on, counted without copying them."""
    count = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        count += end > start
        start = end + 1
    return count


def _too_large(text: str, rows: list[tuple[int, str]], source: str, after: int) -> NoReturn:
    width = max(len(line) for _, line in rows)
    height = len(rows) + _rows_after(text, after)
    raise MapError(
        f"{source}:{rows[-1][0]}: map is {width}x{height}, the largest is "
        f"{MAX_MAP_WIDTH}x{MAX_MAP_HEIGHT}"
    )


def _parse_header(header: dict[str, str], lines: dict[str, int], source: str) -> _Header:
    try:
        return _Header.model_validate(header)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        where = f"{source}:{lines[key]}" if key in lines else source
        if err["type"] == "extra_forbidden":
            known = ", ".join(_Header.model_fields)
            raise MapError(f"{where}: unknown header key {key!r} (known: {known})") from None
        raise MapError(f"{where}: bad header {key!r}: {err['msg']}") from None


def flipped(scenario: Scenario, *, swap_squads: bool = False) -> Scenario:
    """The scenario mirrored left to right (unit ids renumbered in reading order).

    With `swap_squads` the colours swap too: on a mirrored map that is the same map
    again, so a unit and its counterpart trade places. Without, each squad starts where
    the other did: the ladder uses it to tell a map position from a colour.
    """
    w = scenario.grid.width
    grid = Grid(
        width=w,
        height=scenario.grid.height,
        rows=tuple(tuple(reversed(row)) for row in scenario.grid.rows),
    )
    other = {SQUADS[0]: SQUADS[1], SQUADS[1]: SQUADS[0]}
    spawns = sorted(
        (
            Spawn(w - 1 - s.x, s.y, other[s.squad] if swap_squads else s.squad, s.role)
            for s in scenario.spawns
        ),
        key=lambda s: (s.y, s.x),
    )
    return Scenario(
        name=scenario.name,
        grid=grid,
        spawns=tuple(spawns),
        objective=grid.tiles_of(OBJECTIVE),
        hold_turns=scenario.hold_turns,
        turn_limit=scenario.turn_limit,
        description=scenario.description,
        source=scenario.source,
    )
