"""The dependency rules of docs/ARCHITECTURE.md, checked on the source (ast, no imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GAME_MAY_USE_PLANNER = {"session", "__main__", "launch", "record"}
UI_PLANNER_API = {"planner.events", "planner.settings", "planner.fallback", "planner.errors"}
PURE = [
    "game/rules/world.py",
    "game/rules/actions.py",
    "game/rules/sight.py",
    "game/rules/pathfinding.py",
    "game/rules/heuristic.py",
    "planner/stream.py",
    "planner/prompts.py",
    "planner/cache.py",
    "planner/resilience.py",
    "planner/validate.py",
    "planner/sim/model.py",
]
IO_MODULES = {"socket", "httpx", "pygame", "subprocess", "urllib", "requests", "anyio"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", modules("planner"), ids=lambda p: p.name)
def test_planner_never_imports_pygame_or_the_ui(path: Path) -> None:
    bad = {m for m in imports_of(path) if m.split(".")[0] == "pygame" or m.startswith("game.ui")}
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", modules("game"), ids=lambda p: str(p.relative_to(ROOT)))
def test_game_reaches_the_planner_only_where_allowed(path: Path) -> None:
    planner_imports = {m for m in imports_of(path) if m.split(".")[0] == "planner"}
    rel = path.relative_to(ROOT / "game")
    if rel.parts[0] == "ui":
        assert planner_imports <= UI_PLANNER_API, f"{rel} imports {planner_imports}"
    elif rel.stem not in GAME_MAY_USE_PLANNER and rel.stem != "planlog":
        assert not planner_imports, f"{rel} imports {planner_imports}"


@pytest.mark.parametrize("path", modules("game"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_ui_imports_pygame(path: Path) -> None:
    uses = any(m.split(".")[0] == "pygame" for m in imports_of(path))
    rel = path.relative_to(ROOT / "game")
    assert not uses or rel.parts[0] == "ui", f"{rel} imports pygame"


@pytest.mark.parametrize("name", PURE)
def test_pure_cores_do_no_io(name: str) -> None:
    bad = {m for m in imports_of(ROOT / name) if m.split(".")[0] in IO_MODULES}
    assert not bad, f"{name} imports {bad}"
