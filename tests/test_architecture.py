"""The layers of docs/ARCHITECTURE.md, checked on the source (ast, nothing imported).

    game.rules  <-  planner (core)  <-  game.match  <-  game.ui  <-  game.__main__
                    planner.sim, planner.bench: at the edge

Every import between project modules is an arrow of the import graph, whether it sits at
the top of a file, inside a function or under TYPE_CHECKING: a loop hidden in a function
is still a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("game", "planner")

# Layer of each module prefix (longest prefix wins) and what each layer may import.
LAYER_OF = {
    "game.rules": "rules",
    "planner": "planner",
    "planner.sim": "edge",
    "planner.simserver": "edge",
    "planner.bench": "edge",
    "game.match": "match",
    "game.ui": "ui",
    "game.__main__": "main",
    "game.ladder": "edge",
    "game": "package",
}
MAY_IMPORT = {
    "rules": {"rules"},
    "planner": {"rules", "planner"},
    "match": {"rules", "planner", "match", "edge"},
    "edge": {"rules", "planner", "match", "edge"},
    "ui": {"rules", "planner", "match", "ui"},
    "main": {"rules", "planner", "match", "edge", "ui"},
    "package": set(),
}
UI_PLANNER_API = {"planner.events", "planner.settings", "planner.fallback", "planner.errors"}
"""The UI sees the planner only through its public types."""

IO_MODULES = {
    "os",
    "threading",
    "time",
    "socket",
    "subprocess",
    "urllib",
    "httpx",
    "anyio",
    "asyncio",
    "pygame",
    "requests",
    "queue",
    "sys",
    "pathlib",
}
"""What a pure core may not import: clocks, threads, files, the network, the screen."""
PURE_PLANNER = [
    "planner/stream.py",
    "planner/prompts.py",
    "planner/validate.py",
    "planner/schema.py",
    "planner/fallback.py",
    "planner/intents.py",
    "planner/sim/model.py",
]
"""Pure planner cores besides every module of game/rules (which are all pure)."""
RANDOM_ALLOWED = {"Random"}
"""`random.Random` is how a seeded RNG is passed in; `random.random()` & co are global state."""


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (relative imports resolved)."""
    tree = ast.parse(path.read_text("utf-8"))
    here = module_name(path).split(".") if path.is_relative_to(ROOT) else []
    if here and path.name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pkg import mod` imports the module pkg.mod when there is one.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in project_files()}


def project_imports(path: Path) -> set[str]:
    me = module_name(path)
    return {m for m in imported_modules(path) if m in MODULES and m != me}


def layer(module: str) -> str:
    best = max((p for p in LAYER_OF if module == p or module.startswith(p + ".")), key=len)
    return LAYER_OF[best]


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's __init__ counts as a module,
    but importing `game.rules.world` does not count as importing `game.rules`)."""
    return {name: project_imports(path) for name, path in MODULES.items()}


def cycles(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """Each strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    found: list[list[str]] = []

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    yield from found


def test_the_checker_sees_a_loop_and_a_wrong_arrow() -> None:
    """The checks below can fail: a loop and an upward arrow in a made-up graph are found."""
    assert list(cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == [["a", "b", "c"]]
    assert list(cycles({"a": {"b"}, "b": set()})) == []
    assert "rules" not in MAY_IMPORT["rules"] - {"rules"}
    assert layer("game.rules.world") == "rules" and "planner" not in MAY_IMPORT["rules"]
    assert layer("planner.sim.model") == "edge" and "edge" not in MAY_IMPORT["planner"]
    assert layer("planner.backends.select") == "planner"


def test_the_graph_covers_the_project() -> None:
    edges = graph()
    assert (
        "game.rules.world" in edges["game.rules.effects"]
        or "game.rules.state" in (edges["game.rules.effects"])
    )
    assert "planner.dispatch" in edges["planner.service"]
    assert len(edges) >= 70


def test_no_import_loops() -> None:
    loops = list(cycles(graph()))
    assert not loops, "import loops: " + "; ".join(" <-> ".join(c) for c in loops)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_arrows_follow_the_layer_order(name: str) -> None:
    mine = layer(name)
    wrong = {m for m in project_imports(MODULES[name]) if layer(m) not in MAY_IMPORT[mine]}
    wrong -= {"game", "planner"}  # the packages' own docstring-only __init__ modules
    assert not wrong, f"{name} ({mine}) imports {sorted(wrong)} against the layer order"


@pytest.mark.parametrize("name", [n for n in sorted(MODULES) if layer(n) == "ui"])
def test_the_ui_sees_only_the_planners_public_types(name: str) -> None:
    planner = {m for m in project_imports(MODULES[name]) if layer(m) == "planner"}
    assert planner <= UI_PLANNER_API, f"{name} imports {sorted(planner - UI_PLANNER_API)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_ui_imports_pygame(name: str) -> None:
    uses = any(m.split(".")[0] == "pygame" for m in imported_modules(MODULES[name]))
    assert not uses or layer(name) == "ui", f"{name} imports pygame"


def pure_cores() -> list[Path]:
    rules = sorted((ROOT / "game" / "rules").glob("*.py"))
    return rules + [ROOT / p for p in PURE_PLANNER]


def global_random_calls(path: Path) -> set[str]:
    """`random.x(...)` uses other than `random.Random`: the module-level RNG is I/O."""
    tree = ast.parse(path.read_text("utf-8"))
    bad = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
            and node.attr not in RANDOM_ALLOWED
        ):
            bad.add(f"random.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            bad.update(f"random.{a.name}" for a in node.names if a.name not in RANDOM_ALLOWED)
    return bad


@pytest.mark.parametrize("path", pure_cores(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_cores_do_no_io(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in IO_MODULES}
    bad |= global_random_calls(path)
    assert not bad, f"{path.relative_to(ROOT)} uses {sorted(bad)}"


def test_the_io_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import random\nimport time\nx = random.choice([1])\nr = random.Random(1)\n")
    assert {m for m in imported_modules(sample) if m in IO_MODULES} == {"time"}
    assert global_random_calls(sample) == {"random.choice"}
