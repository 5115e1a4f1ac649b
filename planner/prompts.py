"""Prompt building: a static prefix, then one compact line per agent.

Layout of every prompt (single agent = a batch of one):

    system  static per tier and plan format, byte-identical across rounds, agents and
            scenarios: instructions, tool doc, output format (verbose or compact, see
            planner/schema.py). It carries nothing per round, so a server's prefix
            cache stays hot.
    user    round header   Map village 20x14 turn 5 squad red goal [10,5]
            agent blocks   one line per agent, ascending agent_id whatever the input order:
                           <role prompt> {"id":3,"r":"m","p":[4,7],"hp":[6,10],"a":3,...}
            footer         Ids [3,5]. Return exactly 2 plans.

Role prompts: rifleman and heavy -> tactical, medic -> support, scout -> stealth when
enemies are in sight, else exploration.

Compact unit encoding (no whitespace, short keys; all values are whole tiles/points):
  me       id, r (role letter), p [x,y], hp, a (ammo), st (status, omitted when idle),
           g (grenades, omitted when 0).
           A current value equal to its maximum is written once (`"hp":10`), otherwise
           as `[cur,max]`, so the maximum round-trips without costing a number.
  allies   al: [id, x, y, hp]                   (+max hp when hurt)
  enemies  en: [id, x, y, hp]                   (+"marked" when marked)
  cover    cv: [[x,y],...] nearest first
  smoke    sm: [[x,y],...]                      (omitted when empty)
  terrain  w walls, wa water: [[x0,y0,x1,y1],...] inclusive rectangles near the agent
           (planner/terrain.py; only when the builder is given the grid; omitted when
           empty): the full tier shows TERRAIN_RADIUS_FULL tiles around the agent, the
           simplified one up to TERRAIN_RADIUS_SIMPLIFIED, shrunk first by the budget.
Roles, ammo and other statuses of other units are left out (they decode as rifleman,
0, idle). A simplified line is at most SIMPLIFIED_BLOCK_BUDGET characters: past it
allies (unhurt and far first), far smoke, far cover, then far enemies are left out.
The full tier sends every field of every unit (role, maxima, ammo, status, grenades,
enemy squad) and every cover tile, so it round-trips exactly.
Turn, scenario, squad and objective go once in the header; a block repeats one only
when it differs from the header.

`decode_agent_blocks` parses this back into Snapshots (the simulated LLM plans from
exactly what the prompt shows). Fields a tier leaves out decode as neutral defaults;
`prompt_view(snap, tier)` is the snapshot as that tier's prompt shows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from game.rules.actions import AOE_AMMO, THROW_RANGE
from game.rules.grid import Grid
from game.rules.snapshot import Role, Snapshot, UnitView
from game.rules.steps import MAX_STEPS, POSITION_ACTS, SIMPLE_ACTS, TARGET_ACTS
from planner.fallback import TIER_TOOLS, Tier
from planner.schema import INTENT_MAX_CHARS, PLAN_FORMATS, PlanFormat
from planner.terrain import NO_TERRAIN, Rect, Terrain, near


class Style(StrEnum):
    """The four role prompts."""

    tactical = "tactical"
    stealth = "stealth"
    support = "support"
    exploration = "exploration"


STYLE_PROMPTS: dict[Style, str] = {
    Style.tactical: "tactical:cover,focus fire",
    Style.stealth: "stealth:unseen,flank",
    Style.support: "support:heal allies",
    Style.exploration: "explore:scout to goal",
}
"""Role prompt per style, short enough for the simplified single prompt (SINGLE_PROMPT_LIMIT)."""

STYLE_PROMPTS_FULL: dict[Style, str] = {
    Style.tactical: "Role tactical: hold cover, focus fire on the weakest enemy, reload early.",
    Style.stealth: "Role stealth: stay out of sight, flank through smoke, mark targets for allies.",
    Style.support: "Role support: heal hurt allies, stay behind them, smoke to cover retreats.",
    Style.exploration: "Role exploration: scout toward the objective, scan often, avoid fights.",
}
"""Longer role prompts for the full tier."""

ROLE_CODE: dict[Role, str] = {"rifleman": "r", "scout": "s", "medic": "m", "heavy": "h"}
CODE_ROLE: dict[str, Role] = {code: role for role, code in ROLE_CODE.items()}

DEFAULT_STATUS = "idle"
MARKED = "marked"
_UNKNOWN_ROLE: Role = "rifleman"
"""What the simplified tier's ally and enemy rows (which omit roles) decode as."""


class PromptDecodeError(ValueError):
    """The text holds no round header or a malformed agent block."""


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    width: int
    height: int


@dataclass(frozen=True)
class PromptParts:
    system: str
    """Static prefix: instructions, tool doc, output format."""
    user: str
    """Round header, one block per agent (ascending id), id list, "Return exactly N plans"."""
    agent_ids: tuple[int, ...]
    agent_blocks: dict[int, str]
    """Each agent's line of `user` (the role prompt and its compact snapshot)."""


def style_for(snap: Snapshot) -> Style:
    role = snap.me.role
    if role == "medic":
        return Style.support
    if role == "scout":
        return Style.stealth if snap.enemies else Style.exploration
    return Style.tactical


# --------------------------------------------------------------------------- system


def _tool_doc_simplified(tools: frozenset[str]) -> str:
    def names(kinds: Iterable[type[Any]]) -> str:
        return ",".join(n for n in (k.model_fields["act"].default for k in kinds) if n in tools)

    return f"Acts: {names(POSITION_ACTS)} x,y;{names(TARGET_ACTS)} target_id;{names(SIMPLE_ACTS)}."


_FULL_TOOL_HELP: dict[str, str] = {
    "MoveTo": "x,y walk to a tile",
    "TakeCover": "x,y move to a cover tile (less damage taken)",
    "ThrowSmoke": f"x,y smoke cloud that blocks sight (1 grenade, range {THROW_RANGE})",
    "ThrowExplosive": f"x,y explosive, damages an area (1 grenade, range {THROW_RANGE})",
    "AoEAttack": f"x,y fire at an area in sight (uses {AOE_AMMO} ammo)",
    "Attack": "target_id shoot a visible enemy (uses ammo)",
    "Approach": "target_id close in on a unit",
    "Retreat": "target_id move away from a unit",
    "MarkTarget": "target_id mark an enemy so allies hit it harder",
    "Distract": "target_id draw an enemy's attention",
    "Reload": "refill ammo",
    "Scan": "look around for enemies",
    "Wait": "hold position",
    "Block": "brace, less damage until next turn",
    "Heal": "heal self or an adjacent hurt ally",
}


def _tool_doc_full(tools: frozenset[str]) -> str:
    order = [k.model_fields["act"].default for k in (*POSITION_ACTS, *TARGET_ACTS, *SIMPLE_ACTS)]
    return "Tools:\n" + "\n".join(f"{n} {_FULL_TOOL_HELP[n]}" for n in order if n in tools)


OUTPUT_EXAMPLES: dict[PlanFormat, str] = {
    "verbose": '{"plans":[{"agent_id":3,"steps":[{"act":"Scan"}]}]}',
    "compact": '{"plans":[[3,[["MoveTo",4,7],["Attack",5]]]]}',
}
INTENT_EXAMPLES: dict[PlanFormat, str] = {
    "verbose": '{"plans":[{"agent_id":3,"steps":[{"act":"Scan"}],"intent":"look for #5"}]}',
    "compact": '{"plans":[[3,[["MoveTo",4,7],["Attack",5]],"flank #5"]]}',
}
"""The examples with a plan's optional intent (its last value), when intents are on."""
"""The answer shown in each format's system prompt (its tools are in every tier). The
compact one shows a unit id, then its steps as [act, values in the tool doc's order];
the simplified prompt has room for nothing more (SINGLE_PROMPT_LIMIT), and the servers
that get compact constrain the shape with its schema anyway."""

_OUTPUT_SHAPE: dict[PlanFormat, str] = {
    "verbose": "",
    "compact": " Each plan is [unit id,[steps]], each step [tool, its values in the order"
    " listed above].",
}


_INTENT_SHAPE: dict[PlanFormat, str] = {
    "verbose": ' an "intent"',
    "compact": " a third value, an intent",
}


@cache
def system_prompt(tier: Tier, fmt: PlanFormat = "verbose", intent: bool = False) -> str:
    """The static prefix for a tier, plan format and intent switch (cached: identical
    object and bytes every round)."""
    if fmt not in PLAN_FORMATS:
        raise ValueError(f"unknown plan format {fmt!r}")
    tools = TIER_TOOLS[tier]
    example = (INTENT_EXAMPLES if intent else OUTPUT_EXAMPLES)[fmt]
    if tier == Tier.full_llm:
        return "\n".join(
            (
                "You command a squad on a tile grid (x right, y down, 0-based).",
                f"Give every listed unit a plan of 1-{MAX_STEPS} steps, run in order.",
                _tool_doc_full(tools),
                "Unit JSON: id; r role (r rifleman, s scout, m medic, h heavy); p [x,y];"
                " hp and a (ammo) as [now,max]; st status; al allies and en visible enemies"
                " as [id,role,x,y,hp,max_hp,ammo,max_ammo,status,grenades(,squad)];"
                " g grenades; cv free cover tiles; sm smoke tiles; o objective;"
                " w walls and wa water near the unit as [x0,y0,x1,y1] rectangles.",
                "Only target enemies listed in en; only move onto floor, cover or objective"
                " tiles inside the map, never onto w or wa.",
                f"Reply with JSON only: {example}{_OUTPUT_SHAPE[fmt]}",
                *(
                    (
                        f"Each plan may end with{_INTENT_SHAPE[fmt]}: its purpose in at most"
                        f" {INTENT_MAX_CHARS} characters.",
                    )
                    if intent
                    else ()
                ),
            )
        )
    why = f" intent<={INTENT_MAX_CHARS}ch." if intent else ""
    return (
        f"1-{MAX_STEPS} steps per unit. {_tool_doc_simplified(tools)}"
        f" w walls,wa water [x0,y0,x1,y1], not walkable. JSON:{example}{why}"
    )


# --------------------------------------------------------------------------- encoding


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _cur_max(cur: int, maximum: int) -> int | list[int]:
    return cur if cur == maximum else [cur, maximum]


def _full_unit_row(u: UnitView) -> list[Any]:
    return [
        *(u.id, ROLE_CODE[u.role], u.x, u.y, u.hp, u.max_hp),
        *(u.ammo, u.max_ammo, u.status, u.grenades),
    ]


def _distance(me: UnitView, x: int, y: int) -> int:
    return max(abs(me.x - x), abs(me.y - y))


def _nearest(units: tuple[UnitView, ...], me: UnitView, n: int) -> list[UnitView]:
    """The n nearest units, kept in snapshot (id) order."""
    if len(units) <= n:
        return list(units)
    keep = set(sorted(range(len(units)), key=lambda i: _distance(me, units[i].x, units[i].y))[:n])
    return [u for i, u in enumerate(units) if i in keep]


def _allies_kept(snap: Snapshot, n: int) -> list[UnitView]:
    """The n allies most worth knowing about (most hurt, then nearest), in id order."""
    me = snap.me
    if me.role == "medic":
        n = max(n, 1)
    if len(snap.allies) <= n:
        return list(snap.allies)

    def worth(u: UnitView) -> tuple[float, int, int]:
        hurt = (u.max_hp - u.hp) / u.max_hp if u.max_hp > 0 else 0.0
        return (-hurt, _distance(me, u.x, u.y), u.id)

    keep = {u.id for u in sorted(snap.allies, key=worth)[:n]}
    return [u for u in snap.allies if u.id in keep]


def _encode_common(snap: Snapshot, header: _Header, block: dict[str, Any]) -> dict[str, Any]:
    # Per-round values live in the header; repeat one only if this agent differs.
    if snap.turn != header.turn:
        block["t"] = snap.turn
    if snap.me.squad != header.squad:
        block["sq"] = snap.me.squad
    if snap.objective != header.objective:
        block["o"] = list(snap.objective) if snap.objective is not None else None
    return block


def _encode_terrain(block: dict[str, Any], terrain: Terrain) -> dict[str, Any]:
    if terrain.walls:
        block["w"] = [list(r) for r in terrain.walls]
    if terrain.water:
        block["wa"] = [list(r) for r in terrain.water]
    return block


def _terrain(grid: Grid | None, snap: Snapshot, radius: int) -> Terrain:
    if grid is None or radius <= 0:
        return NO_TERRAIN
    return near(grid, snap.me.x, snap.me.y, radius)


def _encode_full(snap: Snapshot, header: _Header, grid: Grid | None = None) -> dict[str, Any]:
    me = snap.me
    block: dict[str, Any] = {
        "id": me.id,
        "r": ROLE_CODE[me.role],
        "p": [me.x, me.y],
        "hp": [me.hp, me.max_hp],
        "a": [me.ammo, me.max_ammo],
        "st": me.status,
        "g": me.grenades,
        "al": [_full_unit_row(u) for u in snap.allies],
        "en": [[*_full_unit_row(u), u.squad] for u in snap.enemies],
        "cv": [list(c) for c in snap.cover],
    }
    if snap.smoke:
        block["sm"] = [list(c) for c in snap.smoke]
    _encode_terrain(block, _terrain(grid, snap, TERRAIN_RADIUS_FULL))
    return _encode_common(snap, header, block)


def _marked(u: UnitView) -> tuple[str, ...]:
    """An enemy's status in the simplified tier: only "marked" (marked targets take more)."""
    return (MARKED,) if MARKED in u.status.split(",") else ()


def _encode_simplified(
    snap: Snapshot, header: _Header, caps: _Caps, grid: Grid | None = None
) -> dict[str, Any]:
    me = snap.me
    block: dict[str, Any] = {
        "id": me.id,
        "r": ROLE_CODE[me.role],
        "p": [me.x, me.y],
        "hp": _cur_max(me.hp, me.max_hp),
        "a": _cur_max(me.ammo, me.max_ammo),
    }
    if me.status != DEFAULT_STATUS:
        block["st"] = me.status
    if me.grenades:
        block["g"] = me.grenades
    allies = _allies_kept(snap, caps.allies)
    if allies:
        block["al"] = [
            [u.id, u.x, u.y, u.hp, *(() if u.hp == u.max_hp else (u.max_hp,))] for u in allies
        ]
    enemies = _nearest(snap.enemies, me, caps.enemies)
    if enemies:
        block["en"] = [[u.id, u.x, u.y, u.hp, *_marked(u)] for u in enemies]
    if snap.cover[: caps.cover]:
        block["cv"] = [list(c) for c in snap.cover[: caps.cover]]
    smoke = sorted(snap.smoke, key=lambda c: _distance(me, *c))[: caps.smoke]
    if smoke:
        block["sm"] = [list(c) for c in snap.smoke if c in smoke]
    _encode_terrain(block, _terrain(grid, snap, min(caps.terrain, TERRAIN_RADIUS_SIMPLIFIED)))
    return _encode_common(snap, header, block)


@dataclass(frozen=True)
class _Caps:
    """How many of each list the simplified block keeps (nearest first)."""

    allies: int
    enemies: int
    cover: int
    smoke: int
    terrain: int = 0
    """Radius of the terrain window (0: none)."""


TERRAIN_RADIUS_FULL = 5
TERRAIN_RADIUS_SIMPLIFIED = 2

_TRIM_STEPS: tuple[_Caps, ...] = (
    _Caps(allies=99, enemies=99, cover=3, smoke=2, terrain=2),
    _Caps(allies=2, enemies=99, cover=3, smoke=1, terrain=2),
    _Caps(allies=1, enemies=99, cover=2, smoke=1, terrain=2),
    _Caps(allies=0, enemies=99, cover=2, smoke=0, terrain=2),
    _Caps(allies=0, enemies=99, cover=2, smoke=0, terrain=1),
    _Caps(allies=0, enemies=99, cover=1, smoke=0, terrain=1),
    _Caps(allies=0, enemies=4, cover=1, smoke=0, terrain=1),
    _Caps(allies=0, enemies=3, cover=1, smoke=0, terrain=1),
    _Caps(allies=0, enemies=2, cover=1, smoke=0, terrain=1),
    _Caps(allies=0, enemies=1, cover=1, smoke=0, terrain=1),
    _Caps(allies=0, enemies=1, cover=1, smoke=0, terrain=0),
)
"""Ever tighter caps, tried in order until a block fits SIMPLIFIED_BLOCK_BUDGET.
Allies go first (hurt ones kept longest; a medic always keeps its most hurt ally), then
the terrain window shrinks, enemies last: the nearest enemies, cover and the walls next
to the agent matter most for a plan."""

SIMPLIFIED_BLOCK_BUDGET = 200
"""Most characters of one simplified agent line; keeps a single-agent prompt (system,
header, one block, footer) within SINGLE_PROMPT_LIMIT on the shipped maps (158 before
the terrain window)."""

SINGLE_PROMPT_LIMIT = 560
"""Was 400 before the simplified tier carried terrain, Heal, ThrowExplosive and intents;
what the extra characters cost in prefill is in docs/BENCHMARKS.md."""


def _simplified_line(snap: Snapshot, header: _Header, grid: Grid | None = None) -> str:
    prefix = STYLE_PROMPTS[style_for(snap)] + " "
    line = ""
    for caps in _TRIM_STEPS:
        line = prefix + _dumps(_encode_simplified(snap, header, caps, grid))
        if len(line) <= SIMPLIFIED_BLOCK_BUDGET:
            break
    return line


def encode_agent_block(snap: Snapshot, tier: Tier, grid: Grid | None = None) -> str:
    """One agent's line: role prompt then compact snapshot (header values taken from it)."""
    return _agent_line(snap, tier, _Header.of(snap), grid)


def _agent_line(snap: Snapshot, tier: Tier, header: _Header, grid: Grid | None = None) -> str:
    if tier == Tier.full_llm:
        block = _encode_full(snap, header, grid)
        return f"{STYLE_PROMPTS_FULL[style_for(snap)]} {_dumps(block)}"
    return _simplified_line(snap, header, grid)


# --------------------------------------------------------------------------- header

_NAME_RE = re.compile(r"[\w.-]+")
_HEADER_RE = re.compile(
    r"^Map (?P<name>\"(?:[^\"\\]|\\.)*\"|\S+) (?P<w>\d+)x(?P<h>\d+) turn (?P<turn>-?\d+)"
    r" squad (?P<squad>\"(?:[^\"\\]|\\.)*\"|\S+)(?: goal \[(?P<ox>-?\d+),(?P<oy>-?\d+)\])?$",
    re.MULTILINE,
)


def _name_token(name: str) -> str:
    return name if _NAME_RE.fullmatch(name) else _dumps(name)


def _name_from_token(token: str) -> str:
    if token.startswith('"'):
        value = json.loads(token)
        if not isinstance(value, str):
            raise PromptDecodeError("bad name in header")
        return value
    return token


@dataclass(frozen=True)
class _Header:
    name: str
    width: int
    height: int
    turn: int
    squad: str
    objective: tuple[int, int] | None

    @classmethod
    def of(cls, snap: Snapshot, scenario: ScenarioInfo | None = None) -> _Header:
        info = scenario or ScenarioInfo(snap.scenario, snap.width, snap.height)
        return cls(info.name, info.width, info.height, snap.turn, snap.me.squad, snap.objective)

    def render(self) -> str:
        text = (
            f"Map {_name_token(self.name)} {self.width}x{self.height} turn {self.turn}"
            f" squad {_name_token(self.squad)}"
        )
        if self.objective is not None:
            text += f" goal [{self.objective[0]},{self.objective[1]}]"
        return text


# --------------------------------------------------------------------------- building


def build_batch_prompt(
    snaps: Sequence[Snapshot],
    tier: Tier,
    scenario: ScenarioInfo | None = None,
    *,
    keep_order: bool = False,
    fmt: PlanFormat = "verbose",
    grid: Grid | None = None,
    intent: bool = False,
) -> PromptParts:
    """Prompt for several agents; blocks in ascending agent_id whatever the input order,
    or in the given order with `keep_order` (the scheduler lists the most urgent first,
    and models answer in the order asked). `fmt` is the plan format the system prompt
    asks for (the agent blocks are the same in both).

    `scenario` overrides the map name/size taken from the snapshots (all snapshots of a
    round share them). Duplicate agent ids are an error, not silently merged. With the
    `grid`, each block carries the walls and water near its agent. `intent` asks for each
    plan's optional intent.
    """
    if tier not in TIER_TOOLS:
        raise ValueError(f"no prompt for tier {tier}")
    if not snaps:
        raise ValueError("a prompt needs at least one agent")
    ordered = list(snaps) if keep_order else sorted(snaps, key=lambda s: s.me.id)
    ids = tuple(s.me.id for s in ordered)
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate agent ids in one round: {list(ids)}")
    header = _Header.of(ordered[0], scenario)
    blocks = {s.me.id: _agent_line(s, tier, header, grid) for s in ordered}
    n = len(ids)
    footer = f"Ids [{','.join(map(str, ids))}]. Return exactly {n} plan{'s' if n != 1 else ''}."
    user = "\n".join((header.render(), *blocks.values(), footer))
    return PromptParts(system_prompt(tier, fmt, intent), user, ids, blocks)


def build_single_prompt(
    snap: Snapshot,
    tier: Tier,
    fmt: PlanFormat = "verbose",
    grid: Grid | None = None,
    intent: bool = False,
) -> PromptParts:
    return build_batch_prompt((snap,), tier, fmt=fmt, grid=grid, intent=intent)


def agent_block(parts: PromptParts, agent_id: int) -> str:
    """The prompt line of one agent, for the inspector."""
    try:
        return parts.agent_blocks[agent_id]
    except KeyError:
        raise KeyError(f"agent {agent_id} is not in this prompt {list(parts.agent_ids)}") from None


def prompt_chars(parts: PromptParts) -> int:
    """Characters sent: system + user (what the size bounds are about)."""
    return len(parts.system) + len(parts.user)


# --------------------------------------------------------------------------- decoding


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PromptDecodeError(f"{what} is not an integer: {value!r}")
    return value


def _pair(value: object, what: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise PromptDecodeError(f"{what} is not [x,y]: {value!r}")
    return _int(value[0], what), _int(value[1], what)


def _cur_max_from(value: object, what: str) -> tuple[int, int]:
    if isinstance(value, list):
        return _pair(value, what)
    cur = _int(value, what)
    return cur, cur


def _role(code: object) -> Role:
    if not isinstance(code, str) or code not in CODE_ROLE:
        raise PromptDecodeError(f"unknown role code {code!r}")
    return CODE_ROLE[code]


def _rows(value: object, what: str) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        raise PromptDecodeError(f"{what} is not a list of rows")
    return value


def _decode_unit_row(row: list[Any], squad: str, *, is_enemy: bool) -> UnitView:
    if len(row) == (11 if is_enemy else 10):  # full tier: every field
        uid, code, x, y, hp, max_hp, ammo, max_ammo, status, grenades = row[:10]
        squad = row[10] if is_enemy else squad
        if not isinstance(status, str) or not isinstance(squad, str):
            raise PromptDecodeError(f"bad status or squad in {row!r}")
        return UnitView(
            id=_int(uid, "id"),
            squad=squad,
            role=_role(code),
            x=_int(x, "x"),
            y=_int(y, "y"),
            hp=_int(hp, "hp"),
            max_hp=_int(max_hp, "max_hp"),
            ammo=_int(ammo, "ammo"),
            max_ammo=_int(max_ammo, "max_ammo"),
            status=status,
            grenades=_int(grenades, "grenades"),
        )
    status = DEFAULT_STATUS
    if is_enemy and len(row) in (4, 5):  # a 5th element is the "marked" flag
        uid, x, y, hp = row[:4]
        max_hp = hp
        if len(row) == 5:
            if row[4] != MARKED:
                raise PromptDecodeError(f"bad enemy flag in {row!r}")
            status = MARKED
    elif not is_enemy and len(row) in (4, 5):  # max hp only when hurt
        uid, x, y, hp = row[:4]
        max_hp = row[4] if len(row) == 5 else hp
    else:
        raise PromptDecodeError(f"bad unit row {row!r}")
    return UnitView(
        id=_int(uid, "id"),
        squad=squad,
        role=_UNKNOWN_ROLE,
        x=_int(x, "x"),
        y=_int(y, "y"),
        hp=_int(hp, "hp"),
        max_hp=_int(max_hp, "max_hp"),
        ammo=0,
        max_ammo=0,
        status=status,
    )


ENEMY_SQUAD = "enemy"
"""Squad name decoded for enemies (the prompt does not name their squads)."""


def _decode_agent(obj: Mapping[str, Any], header: _Header) -> Snapshot:
    squad = obj.get("sq", header.squad)
    if not isinstance(squad, str):
        raise PromptDecodeError("bad squad")
    hp, max_hp = _cur_max_from(obj.get("hp"), "hp")
    ammo, max_ammo = _cur_max_from(obj.get("a"), "a")
    status = obj.get("st", DEFAULT_STATUS)
    if not isinstance(status, str):
        raise PromptDecodeError("bad status")
    x, y = _pair(obj.get("p"), "p")
    me = UnitView(
        id=_int(obj.get("id"), "id"),
        squad=squad,
        role=_role(obj.get("r")),
        x=x,
        y=y,
        hp=hp,
        max_hp=max_hp,
        ammo=ammo,
        max_ammo=max_ammo,
        status=status,
        grenades=_int(obj.get("g", 0), "g"),
    )
    objective: tuple[int, int] | None = header.objective
    if "o" in obj:
        objective = None if obj["o"] is None else _pair(obj["o"], "o")
    return Snapshot(
        scenario=header.name,
        turn=_int(obj.get("t", header.turn), "t"),
        width=header.width,
        height=header.height,
        me=me,
        allies=tuple(
            _decode_unit_row(r, squad, is_enemy=False) for r in _rows(obj.get("al", []), "al")
        ),
        enemies=tuple(
            _decode_unit_row(r, ENEMY_SQUAD, is_enemy=True) for r in _rows(obj.get("en", []), "en")
        ),
        cover=tuple(_pair(c, "cv") for c in _rows(obj.get("cv", []), "cv")),
        smoke=tuple(_pair(c, "sm") for c in _rows(obj.get("sm", []), "sm")),
        objective=objective,
    )


def _rect(value: object) -> Rect:
    if not isinstance(value, list) or len(value) != 4:
        raise PromptDecodeError(f"terrain is not [x0,y0,x1,y1]: {value!r}")
    x0, y0, x1, y1 = (_int(v, "terrain") for v in value)
    return x0, y0, x1, y1


def _decode_terrain(obj: Mapping[str, Any]) -> Terrain:
    return Terrain(
        tuple(_rect(r) for r in _rows(obj.get("w", []), "w")),
        tuple(_rect(r) for r in _rows(obj.get("wa", []), "wa")),
    )


_BLOCK_START = '{"id":'


@dataclass(frozen=True)
class DecodedAgent:
    """One agent block read back: the snapshot and the terrain it showed."""

    snap: Snapshot
    terrain: Terrain


def decode_agent_blocks(prompt_text: str) -> list[Snapshot]:
    """Recover every agent's Snapshot from a built prompt (user part, or system + user).

    Blocks come back in prompt order (ascending agent_id). Raises PromptDecodeError when
    the text holds no round header or a block is malformed.
    """
    return [agent.snap for agent in decode_agents(prompt_text)]


def decode_agents(prompt_text: str) -> list[DecodedAgent]:
    """`decode_agent_blocks`, with the terrain each block showed."""
    match = _HEADER_RE.search(prompt_text)
    if match is None:
        raise PromptDecodeError("no round header ('Map ... turn ... squad ...') in prompt")
    objective = None
    if match["ox"] is not None:
        objective = (int(match["ox"]), int(match["oy"]))
    header = _Header(
        name=_name_from_token(match["name"]),
        width=int(match["w"]),
        height=int(match["h"]),
        turn=int(match["turn"]),
        squad=_name_from_token(match["squad"]),
        objective=objective,
    )
    agents: list[DecodedAgent] = []
    for line in prompt_text[match.end() :].splitlines():
        start = line.find(_BLOCK_START)
        if start < 0:
            continue
        try:
            obj = json.loads(line[start:])
        except json.JSONDecodeError as exc:
            raise PromptDecodeError(f"malformed agent block: {exc}") from None
        if not isinstance(obj, dict):
            raise PromptDecodeError("agent block is not an object")
        agents.append(DecodedAgent(_decode_agent(obj, header), _decode_terrain(obj)))
    return agents


def prompt_view(snap: Snapshot, tier: Tier) -> Snapshot:
    """The snapshot exactly as `tier`'s prompt shows it (what decoding gives back)."""
    return decode_agent_blocks(build_single_prompt(snap, tier).user)[0]
