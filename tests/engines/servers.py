"""Real inference engines started on loopback for the tests, always stopped afterwards.

`llama_cpp_python_server(model)` runs `python -m llama_cpp.server` (the `engines` extra)
on a port the OS picks, and yields its base URL once it says it is listening. The
process is killed when the block ends, however it ends. `llama_server(binary, model)`
does the same for llama.cpp's own C++ `llama-server`, for the measurements.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

START_S = 120.0
"""Hang bound on an engine's start-up (it takes under a second with the tiny model)."""
STOP_S = 10.0
MODEL_ALIAS = "tiny"
_LISTENING = re.compile(r"(?:Uvicorn running on|listening on) (http://[0-9.]+:\d+)")


class EngineFailed(RuntimeError):
    """The engine exited or never said it was listening; carries its last output lines."""


def engines_missing() -> str | None:
    """Why the engine tests cannot run here (the `engines` extra is not installed), or None."""
    import importlib.util

    for module in ("llama_cpp", "gguf", "numpy", "uvicorn", "sse_starlette"):
        if importlib.util.find_spec(module) is None:
            return (
                f"{module} is not installed: pip install -e '.[engines]' "
                "(builds llama-cpp-python from source, about 5 minutes)"
            )
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def engine(command: Sequence[str], url: str | None = None) -> Iterator[str]:
    """Run `command` and yield its base URL once it logs that it listens (or `url`)."""
    proc = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    found: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def read() -> None:  # drains the pipe for the engine's whole life
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                found.put(match.group(1))
        found.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        try:
            listening = found.get(timeout=START_S)
        except queue.Empty:
            listening = None
        if listening is None:
            tail = "\n".join(lines[-30:])
            raise EngineFailed(f"{command[0]} did not start (exit {proc.poll()}):\n{tail}")
        yield url or listening
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_S)
        reader.join(timeout=STOP_S)


def llama_cpp_python_command(model: Path, port: int = 0) -> list[str]:
    """llama-cpp-python's OpenAI-compatible server, as the README of real engines says:
    one thread (llama.cpp's threads compete with the server's event loop on 2 cores),
    and requests queue instead of cutting off the running stream."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "8192",
        "--n_threads",
        "1",
        "--interrupt_requests",
        "false",
        "--verbose",
        "false",
    ]


@contextmanager
def llama_cpp_python_server(model: Path) -> Iterator[str]:
    with engine(llama_cpp_python_command(model)) as url:
        yield url


@contextmanager
def llama_server(binary: Path, model: Path) -> Iterator[str]:
    """llama.cpp's C++ server: one thread, one slot, the model's chat template."""
    port = free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-t", "1", "-np", "1", "-c", "32768", "--jinja", "-a", MODEL_ALIAS]
    with engine(command, f"http://127.0.0.1:{port}") as url:
        yield url
