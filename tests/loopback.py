"""A tiny loopback HTTP server for tests: replays scripted byte sequences.

It binds 127.0.0.1 port 0 and serves each connection in its own thread, so real
clients (httpx in an anyio loop) talk to it over real sockets. A request is parsed
with h11; the reply is a script of raw actions (bytes, pauses, a drop), so tests can
reproduce what real servers do on the wire: chunks split anywhere, stalls, a
connection cut mid-stream, malformed framing.

A stalled server is a `Stall`: it sends nothing until the test releases it or the
server stops, never for some number of seconds that a slow machine might outlast.

    with LoopbackServer(lambda req: ok_sse(body)) as server:
        url = server.url
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import h11


@dataclass(frozen=True)
class Pause:
    """Send nothing for this long (cut short when the server stops)."""

    seconds: float


@dataclass(frozen=True, eq=False)
class Stall:
    """Send nothing more until `release` is set or the server stops: a stalled server
    that stays stalled for as long as the test needs, however slow the machine.
    `reached` is set once a connection's script gets here (its earlier bytes are sent)."""

    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Drop:
    """Close the connection abruptly (RST), as a crashed server would."""


Action = bytes | Pause | Stall | Drop
Script = Sequence[Action]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request], Script]

STALL_POLL_S = 0.05
"""How often a stalled connection looks for its release (the server's stop wakes it at once)."""


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (chunk boundaries survive TCP coalescing: h11 yields them)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def head(status: int, headers: Iterable[tuple[str, str]] = (), *, chunked: bool = True) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
    lines = [f"HTTP/1.1 {status} {reason.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    lines.append("Connection: close")  # one request per connection: no reuse races
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def streamed(
    status: int,
    content_type: str,
    pieces: Iterable[bytes],
    *,
    headers: Iterable[tuple[str, str]] = (),
    pause: float = 0.0,
    end: bool = True,
) -> list[Action]:
    """A chunked response carrying `pieces` as separate HTTP chunks."""
    script: list[Action] = [head(status, [("Content-Type", content_type), *headers])]
    for piece in pieces:
        if pause:
            script.append(Pause(pause))
        if piece:
            script.append(chunk(piece))
    if end:
        script.append(b"0\r\n\r\n")
    return script


def whole(
    status: int,
    body: bytes | str,
    *,
    content_type: str = "application/json",
    headers: Iterable[tuple[str, str]] = (),
) -> list[Action]:
    """A plain response with Content-Length."""
    data = body.encode() if isinstance(body, str) else body
    hdrs = [("Content-Type", content_type), ("Content-Length", str(len(data))), *headers]
    return [head(status, hdrs, chunked=False) + data]


def json_reply(status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
    return whole(status, json.dumps(obj), headers=headers)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`data` split at the given byte offsets."""
    out: list[bytes] = []
    start = 0
    for cut in sorted(set(cuts)):
        if start < cut < len(data):
            out.append(data[start:cut])
            start = cut
    out.append(data[start:])
    return out


@dataclass
class LoopbackServer:
    """Serves `handler(request) -> script` on 127.0.0.1:<free port>.

    `handler` may also be a list of scripts, used one per request in order (the last
    one repeats). Every request is recorded in `requests`.
    """

    handler: Handler | Sequence[Script]
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        self._stop.set()
        _close_quietly(self._sock)  # shutdown() wakes the thread blocked in accept()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _close_quietly(conn)
        self._acceptor.join(timeout=2)
        for thread in list(self._threads):
            thread.join(timeout=2)

    def _script_for(self, request: Request) -> Script:
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
        if callable(self.handler):
            return self.handler(request)
        scripts = self.handler
        return scripts[min(index, len(scripts) - 1)]

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            for action in self._script_for(request):
                if self._stop.is_set():
                    return
                if isinstance(action, Pause):
                    self._stop.wait(action.seconds)
                elif isinstance(action, Stall):
                    action.reached.set()
                    while not (action.release.is_set() or self._stop.wait(STALL_POLL_S)):
                        pass
                elif isinstance(action, Drop):
                    # SO_LINGER 0: close with RST, no orderly FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                else:
                    conn.sendall(action)
        except OSError:
            pass  # the client went away (cancelled request): nothing to do
        finally:
            _close_quietly(conn)


def _read_request(conn: socket.socket) -> Request | None:
    parser = h11.Connection(h11.SERVER)
    method = path = ""
    headers: dict[str, str] = {}
    body = b""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            data = conn.recv(65536)
            if not data:
                return None
            parser.receive_data(data)
        elif isinstance(event, h11.Request):
            method = event.method.decode()
            path = event.target.decode()
            headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return Request(method, path, headers, body)
        else:
            return None


def _close_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected, or already gone
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed): for a connection
    made at once. Another process may take it later; `RefusingPort` keeps it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class RefusingPort:
    """A port on 127.0.0.1 that refuses connections (bound, never listening), kept from
    every other process, the suite's concurrent copies included, until `release()`: then
    a server can start on it at once.

        with RefusingPort() as refusing:
            ...  # connections to refusing.port are refused
            refusing.release()
            server = SimServer(port=refusing.port).start()
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    def release(self) -> None:
        self._sock.close()

    def __enter__(self) -> RefusingPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Endless(Sequence[Action]):
    """A script that never ends: `first`, then `piece` (and `pause`) forever."""

    def __init__(self, first: bytes, piece: bytes, pause: float = 0.0) -> None:
        self._first = first
        self._step: tuple[Action, ...] = (Pause(pause), piece) if pause else (piece,)

    def __len__(self) -> int:
        return sys.maxsize

    @overload
    def __getitem__(self, index: int) -> Action: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Action]: ...

    def __getitem__(self, index: int | slice) -> Action | Sequence[Action]:
        if isinstance(index, slice):
            raise TypeError("an endless script cannot be sliced")
        if index == 0:
            return self._first
        return self._step[(index - 1) % len(self._step)]
