"""The results file: one JSON line per finished match, appended as it finishes.

A rerun reads it back (each line validated), skips the cells already there, and plays
the rest: an interrupted run resumes. A last line cut short by the interruption is
removed from the file (that match is played again); any other bad line stops the run
with its number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.errors import first_error


class PerRole(BaseModel):
    a: int
    b: int


class Row(BaseModel):
    """What the ladder reads back of a result line (extra fields are kept as written)."""

    model_config = ConfigDict(extra="allow")

    key: str
    a: str
    b: str
    scenario: str
    preset: str
    seed: int
    swap: int
    a_squad: str
    left_squad: str
    winner: str
    turns: int
    unit_ticks: PerRole
    idle_ticks: PerRole
    stale_steps: PerRole
    illegal_steps: PerRole
    retargeted_steps: PerRole
    actions: dict[str, dict[str, int]]
    llm_plan_share: float | None
    prompt_tokens: int
    completion_tokens: int


class StoreError(ValueError):
    """A results file that cannot be resumed from; the message is one line."""


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text("utf-8").split("\n")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(Row.model_validate_json(line).model_dump())
        except ValidationError as exc:
            last = all(not rest.strip() for rest in lines[number:])
            if last and not line.endswith("}"):
                # Cut short by an interruption: drop it (that match is played again), so
                # the next result starts on a line of its own.
                keep = "".join(f"{kept}\n" for kept in lines[: number - 1])
                path.write_text(keep, "utf-8")
                break
            raise StoreError(f"{path}:{number}: not a ladder result ({first_error(exc)})") from None
    return rows


def append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
