"""Fixtures for the real-engine tests: the tiny model, written once per session, and
llama-cpp-python's server on loopback, started once and always stopped.

Without the `engines` extra these tests are skipped with a message saying how to get
it, except in CI (CI=true), where a missing engine is a failure: CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.servers import engines_missing, llama_cpp_python_server
from tests.engines.tiny_gguf import write_tiny_gguf


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def engines_installed() -> None:
    why = engines_missing()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"CI runs the real-engine tests, but {why}", pytrace=False)
    pytest.skip(f"real-engine tests skipped: {why}")


@pytest.fixture(scope="session")
def tiny_model(engines_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("engines") / "tiny.gguf")


@pytest.fixture(scope="session")
def llama_cpp_python_url(tiny_model: Path) -> Iterator[str]:
    """The base URL of llama-cpp-python's server (killed when the session ends)."""
    with llama_cpp_python_server(tiny_model) as url:
        yield url
