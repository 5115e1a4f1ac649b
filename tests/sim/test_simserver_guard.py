"""The sim server's guards, over raw sockets (issue 16, item 9): the Host (and Origin) a
request names, and connections that idle, stop half way through a request, or outlive
a stall.

No test waits for time to pass: a connection the server must close is read until EOF,
bounded by HANG_S only to turn a hang into a failure.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

import planner.sim.server as simserver
from planner.sim.model import FaultConfig
from planner.sim.server import SimServer
from tests.planning_helpers import HANG_S
from tests.sim_prompts import messages

SHORT = 0.2
"""The idle timeout of the servers whose connections must close (seconds)."""


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(preset="instant", seed=1, allow_hosts=["sim.lan", "[fd00::5]"]) as srv:
        yield srv


def connect(srv: SimServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.settimeout(HANG_S)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a hang past HANG_S fails the test)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def get(srv: SimServer, *headers: str, version: str = "1.1") -> bytes:
    """A GET /api/version with these header lines, and the whole answer (it closes)."""
    lines = [f"GET /api/version HTTP/{version}", *headers, "Connection: close", "", ""]
    with connect(srv) as sock:
        sock.sendall("\r\n".join(lines).encode())
        return read_all(sock)


def chat(n: int) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in messages(n)]


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def body_of(reply: bytes) -> str:
    return reply.split(b"\r\n\r\n", 1)[1].decode()


# --------------------------------------------------------------------------- Host


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "127.0.0.1",
        "127.9.9.9:{port}",
        "localhost:{port}",
        "LOCALHOST.",
        "[::1]:{port}",
        "sim.lan:{port}",  # --allow-host sim.lan
        "SIM.LAN",
        "[fd00::5]:{port}",  # --allow-host [fd00::5]
    ],
)
def test_loopback_names_the_bound_address_and_allowed_names_are_served(
    server: SimServer, host: str
) -> None:
    reply = get(server, f"Host: {host.format(port=server.port)}")
    assert status_of(reply) == 200, reply
    assert '"version"' in body_of(reply)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",  # DNS rebinding: the page's own name
        "localhost.attacker.example",
        "127.0.0.1.nip.io:{port}",
        "192.168.1.20:{port}",
        "sim.lan.attacker.example",
        "",
    ],
)
def test_any_other_host_gets_421_with_a_one_line_reason(server: SimServer, host: str) -> None:
    value = host.format(port=server.port)
    reply = get(server, f"Host: {value}")
    assert status_of(reply) == 421, reply
    reason = body_of(reply)
    assert reason.endswith("\n") and reason.count("\n") == 1
    assert f"Host {value!r} is not served here" in reason
    assert "--allow-host NAME" in reason
    assert b"connection: close" in reply.lower()


def test_a_request_without_a_host_is_refused(server: SimServer) -> None:
    reply = get(server, version="1.0")  # HTTP/1.0 may leave Host out; HTTP/1.1 may not
    assert status_of(reply) == 421
    assert "no Host header" in body_of(reply)


def test_a_refused_request_never_reaches_the_model() -> None:
    body = json.dumps({"model": "sim-instant", "messages": chat(2), "stream": False}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: evil.example\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with SimServer(preset="instant", seed=1) as srv:
        with connect(srv) as sock:
            sock.sendall(head + body)
            reply = read_all(sock)  # the server closes after its refusal
        assert status_of(reply) == 421
        answer = httpx.post(f"{srv.url}/v1/chat/completions", json=json.loads(body))
    # The model's request counter: the refused request never reached it.
    assert answer.json()["id"] == "chatcmpl-sim-1"


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://localhost:3000", 200),
        ("http://127.0.0.1:{port}", 200),
        ("https://sim.lan", 200),
        ("http://attacker.example", 403),
        ("null", 403),
        ("http://[::1", 403),  # not a URL
    ],
)
def test_an_origin_naming_another_host_gets_403(
    server: SimServer, origin: str, status: int
) -> None:
    value = origin.format(port=server.port)
    reply = get(server, f"Host: 127.0.0.1:{server.port}", f"Origin: {value}")
    assert status_of(reply) == status, reply
    if status == 403:
        assert (
            body_of(reply) == f"Origin {value!r} is not allowed (add its host with --allow-host)\n"
        )


# --------------------------------------------------------------------------- idle connections


@pytest.fixture
def short() -> Iterator[SimServer]:
    with SimServer(preset="instant", seed=1, idle_timeout_s=SHORT) as srv:
        yield srv


def test_a_connection_that_never_sends_a_request_is_closed(short: SimServer) -> None:
    with connect(short) as sock:
        assert read_all(sock) == b""


def test_a_request_cut_off_half_way_is_closed(short: SimServer) -> None:
    with connect(short) as sock:
        sock.sendall(f"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1:{short.port}\r\n".encode())
        assert read_all(sock) == b""


def test_a_body_cut_off_half_way_is_closed(short: SimServer) -> None:
    with connect(short) as sock:
        sock.sendall(
            b'POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"mo'
        )
        assert read_all(sock) == b""


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(short: SimServer) -> None:
    with connect(short) as sock:
        sock.sendall(f"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1:{short.port}\r\n\r\n".encode())
        reply = read_all(sock)  # the answer, then EOF once the connection idled
    assert status_of(reply) == 200
    assert reply.count(b"HTTP/1.1 ") == 1


def test_a_stall_ends_with_the_idle_timeout_when_the_client_never_leaves() -> None:
    with SimServer(
        preset="instant", seed=1, faults=FaultConfig.only("stall"), idle_timeout_s=SHORT
    ) as srv:
        body = b'{"model":"sim-instant","stream":true,"messages":[{"role":"user","content":"x"}]}'
        head = (
            f"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with connect(srv) as sock:
            sock.sendall(head + body)
            reply = read_all(sock)  # headers and some tokens, then the stall, then EOF
    assert status_of(reply) == 200
    assert not reply.endswith(b"0\r\n\r\n")  # the body never ended: the stall was cut


# --------------------------------------------------------------------------- command line


def test_the_command_line_checks_its_guards(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--idle-timeout", "0"], ["--idle-timeout", "nan"], ["--allow-host", ""]):
        with pytest.raises(SystemExit) as exit_info:
            simserver.main(argv)
        assert exit_info.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert ("--idle-timeout" in error) or ("--allow-host" in error)


def test_the_command_line_passes_its_guards_to_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def fake(**kwargs: object) -> object:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(simserver, "SimServer", fake)
    with pytest.raises(Stop):
        simserver.main(["--allow-host", "a.lan", "--allow-host", "b.lan", "--idle-timeout", "5"])
    assert seen["allow_hosts"] == ["a.lan", "b.lan"]
    assert seen["idle_timeout_s"] == 5.0
