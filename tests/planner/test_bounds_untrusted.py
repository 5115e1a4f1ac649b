"""Untrusted input stays data: nothing the LLM sends is evaluated or used as a path, the
sim server listens on loopback unless told otherwise, and API keys come only from the
environment."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import planner.sim.server as simserver
from game.match.cli import build_parser
from planner.sim.server import SimServer

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("planner", "game")
EVALUATORS = {"eval", "exec", "compile", "__import__", "execfile"}
UNSAFE_MODULES = {"pickle", "marshal", "shelve", "dill", "yaml", "importlib"}
LLM_TEXT_MODULES = [
    "planner/stream.py",
    "planner/validate.py",
    "planner/dispatch.py",
    "planner/runner.py",
    "planner/delivery.py",
    "planner/round_state.py",
    "planner/service.py",
    "planner/schema.py",
    "planner/fallback.py",
    "planner/cache.py",
    "planner/prompts.py",
    "planner/events.py",
    "planner/telemetry.py",
    "planner/sim/model.py",
    "planner/sim/server.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "planner" / "backends").glob("*.py")),
]
"""Modules through which model output flows."""
FILE_FUNCTIONS = {"open", "Path", "PurePath"}
FILE_METHODS = {"write_text", "write_bytes", "unlink", "mkdir", "rmdir", "rename", "touch"}
"""(Methods named `open` and `read_text` are allowed: the HTTP edge's open a request and
read its body; no Path can be made here to call them on, as `Path(` is refused.)"""
FILE_MODULES = {"os", "shutil", "subprocess", "pathlib", "glob", "tempfile"}


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def calls(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names called bare, like `eval(...)`; method names called, like `x.read_text()`)."""
    bare: set[str] = set()
    methods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                bare.add(func.id)
            elif isinstance(func, ast.Attribute):
                methods.add(func.attr)
    return bare, methods


def imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "path", [p for pkg in PACKAGES for p in sources(pkg)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_evaluates_code_or_unpickles(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"))
    bare, methods = calls(tree)
    assert not bare & EVALUATORS
    assert not methods & (EVALUATORS - {"compile"}), "re.compile is fine; builtins.eval not"
    assert not imported(tree) & UNSAFE_MODULES


@pytest.mark.parametrize("name", LLM_TEXT_MODULES)
def test_modules_that_carry_llm_text_touch_no_files(name: str) -> None:
    tree = ast.parse((ROOT / name).read_text("utf-8"))
    bare, methods = calls(tree)
    assert not bare & FILE_FUNCTIONS, "LLM text must never become a path"
    assert not methods & FILE_METHODS, "LLM text must never become a path"
    assert not imported(tree) & FILE_MODULES - {"os"}, "no file or process modules"
    uses_os = "os" in imported(tree)
    if uses_os:  # only to read the environment (API keys, settings)
        source = (ROOT / name).read_text("utf-8")
        assert all(
            f"os.{attr}" not in source for attr in ("system", "remove", "path", "popen", "exec")
        )


def test_the_sim_server_listens_on_loopback_by_default() -> None:
    assert inspect.signature(SimServer).parameters["host"].default == "127.0.0.1"
    tcp = Path("/proc/net/tcp")
    with SimServer(preset="instant") as server:
        assert server.url.startswith("http://127.0.0.1:")
        if tcp.exists():  # the kernel's own word on the listening address
            port = f"{server.port:04X}"
            listening = [
                line.split()[1]
                for line in tcp.read_text().splitlines()[1:]
                if line.split()[1].endswith(f":{port}") and line.split()[3] == "0A"
            ]
            assert listening == [f"0100007F:{port}"], listening


def test_the_sim_server_command_defaults_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts: list[str] = []

    class Refuses:
        def __init__(self, *, host: str, **_: object) -> None:
            hosts.append(host)

        def start(self) -> None:
            raise OSError("not in a test")

    monkeypatch.setattr(simserver, "SimServer", Refuses)
    assert simserver.main(["--port", "0"]) == 1
    assert simserver.main(["--port", "0", "--host", "0.0.0.0"]) == 1
    assert hosts == ["127.0.0.1", "0.0.0.0"]


def test_api_keys_come_only_from_the_environment() -> None:
    options = [opt for action in build_parser()._actions for opt in action.option_strings]
    assert not [opt for opt in options if "key" in opt or "token" in opt or "secret" in opt]
