"""The simulated LLM over real HTTP on loopback, speaking Ollama's and OpenAI's protocols.

    python -m planner.sim.server [--host 127.0.0.1] [--port 11434] [--preset gpu]
                                [--num-parallel K] [--faults RATE] [--seed S] [--persona NAME]
                                [--allow-host NAME ...] [--idle-timeout SECONDS]

An anyio TCP listener and h11 (the HTTP/1.1 state machine httpx itself uses), no web
framework. `SimModel` decides the text and when each token leaves; this module only
paces it onto the socket in each protocol's framing:

- Ollama: GET /, /api/version, /api/tags; POST /api/chat, /api/generate (NDJSON stream
  or one JSON object; the last line has done, done_reason and the *_duration ns stats).
- OpenAI: GET /v1/models; POST /v1/chat/completions (SSE: role chunk, content chunks,
  finish chunk, usage chunk when stream_options.include_usage, [DONE]; or one JSON).

Injected faults: 500 with a JSON body, 429 with Retry-After, stall (stop sending, keep
the connection open), disconnect (close the socket mid-body), text faults in the content.
`SimServer` runs it on its own event loop thread for tests and the bench.

Guards: a request whose Host is not a loopback name (localhost, 127.0.0.0/8, ::1), the
bound address or a name allowed with --allow-host gets 421 (a web page reaching the
server through DNS rebinding sends its own name); one with an Origin header naming any
other host gets 403. Each says why in one line, and the connection closes. A connection
closes when a request has not arrived whole within the idle timeout (idle keep-alive,
a request cut off half way, a peer gone without a word), when a client takes no bytes
for that long, and when a stall has held it that long.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.from_thread
import h11
from pydantic import ValidationError

from planner.backends.wire_ollama import OllamaChatRequest, OllamaGenerateRequest, OllamaOptions
from planner.backends.wire_openai import OpenAIChatRequest
from planner.clock import Clock, MonotonicClock
from planner.sim.model import FaultConfig, SimModel, SimResponse, get_preset
from planner.sim.persona import PERSONA_CHOICES

MAX_BODY_BYTES = 8 * 1024 * 1024
IDLE_TIMEOUT_S = 30.0
"""How long a connection may wait for a whole request, or for the client to take bytes."""
OLLAMA_VERSION = "0.6.0-sim"
JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
SSE_TYPE = "text/event-stream"

Dialect = Literal["ollama", "openai"]


# --- request bodies: every external input is validated, by the wire models the clients
# use too (planner.backends.wire_ollama, planner.backends.wire_openai)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    if first["type"] == "json_invalid":
        return f"invalid JSON body: {first['msg']}"
    loc = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{loc}: {first['msg']}"


# --- HTTP plumbing ------------------------------------------------------------------


class _Closed(Exception):
    """The peer went away (or we dropped the connection on purpose)."""


class _Http:
    """One h11 connection on an anyio byte stream; `timeout_s` bounds each send and
    a stall (reading a request is bounded by the caller)."""

    def __init__(self, stream: anyio.abc.ByteStream, timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.SERVER)
        self.timeout_s = timeout_s

    async def _event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive(65536)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = b""
            self.conn.receive_data(data)

    async def read_request(self) -> tuple[h11.Request, bytes] | None:
        event = await self._event()
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not isinstance(event, h11.Request):
            raise _Closed
        body = bytearray()
        while True:
            part = await self._event()
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY_BYTES:
                    raise _BodyTooLarge
            elif isinstance(part, h11.EndOfMessage):
                return event, bytes(body)
            else:
                raise _Closed

    async def send(self, event: Any) -> None:
        data = self.conn.send(event)
        if data:
            try:
                with anyio.fail_after(self.timeout_s):  # a client that reads nothing
                    await self.stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                raise _Closed from None  # (TimeoutError is an OSError)

    async def start(
        self, status: int, content_type: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Start a streamed (chunked) body."""
        base = [("Content-Type", content_type), ("Transfer-Encoding", "chunked")]
        await self.send(_response(status, [*base, *headers]))

    async def whole(
        self, status: int, content_type: str, body: bytes, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        base = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        await self.send(_response(status, [*base, *headers]))
        await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def json(self, status: int, obj: object, headers: Sequence[tuple[str, str]] = ()) -> None:
        await self.whole(status, JSON_TYPE, _dumps(obj).encode(), headers)

    async def chunk(self, data: bytes) -> None:
        await self.send(h11.Data(data=data))

    async def end(self) -> None:
        await self.send(h11.EndOfMessage())

    async def hold_open(self) -> None:
        """A stalled server: send nothing more, keep the socket until the peer leaves
        (or the timeout passes: a peer gone without a word never says so)."""
        try:
            with anyio.move_on_after(self.timeout_s):
                while await self.stream.receive(65536):
                    pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        raise _Closed


class _BodyTooLarge(Exception):
    pass


def _response(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    """A response head with its reason phrase ("421 Misdirected Request")."""
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    return h11.Response(status_code=status, headers=headers, reason=reason)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


# --- the server ---------------------------------------------------------------------


def _host_name(value: str) -> str:
    """The name in a Host header value or an --allow-host NAME: no port, no brackets,
    lower case, no trailing dot."""
    text = value.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.lower().rstrip(".")


def _is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostGuard:
    """Which Host (and Origin) names a request may carry: loopback names, the bound
    address, and the names allowed explicitly."""

    def __init__(self, bound: str, allowed: Sequence[str] = ()) -> None:
        self.names = frozenset(_host_name(n) for n in (bound, *allowed) if _host_name(n))

    def allows(self, name: str) -> bool:
        return _is_loopback(name) or name in self.names

    def refusal(self, request: h11.Request) -> tuple[int, str] | None:
        """(status, one-line reason) for a request to refuse, or None."""
        headers = {k.lower(): v for k, v in request.headers}
        raw_host = headers.get(b"host")
        if raw_host is None:
            return 421, "no Host header: this server answers only requests that name it"
        host = raw_host.decode("latin-1")
        if not self.allows(_host_name(host)):
            return 421, (
                f"Host {host!r} is not served here (loopback names and"
                f" {', '.join(sorted(self.names))}; add one with --allow-host NAME)"
            )
        raw_origin = headers.get(b"origin")
        if raw_origin is not None:
            origin = raw_origin.decode("latin-1")
            try:
                name = urlsplit(origin.strip()).hostname or ""
            except ValueError:
                name = ""
            if not name or not self.allows(name.rstrip(".")):
                return 403, f"Origin {origin!r} is not allowed (add its host with --allow-host)"
        return None


class SimHTTP:
    """Routes and protocol framing over one `SimModel` (runs inside an event loop)."""

    def __init__(
        self,
        sim: SimModel,
        clock: Clock,
        guard: HostGuard | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.sim = sim
        self.clock = clock
        self.guard = guard or HostGuard("127.0.0.1")
        self.idle_timeout_s = idle_timeout_s

    @property
    def model_names(self) -> frozenset[str]:
        name = self.sim.model_name
        return frozenset({name, f"{name}:latest"})

    async def handle_connection(self, stream: anyio.abc.ByteStream) -> None:
        http = _Http(stream, self.idle_timeout_s)
        try:
            while True:
                try:
                    # The whole request within the timeout: an idle keep-alive, a
                    # request cut off half way and a vanished peer all end here.
                    with anyio.fail_after(self.idle_timeout_s):
                        got = await http.read_request()
                except TimeoutError:
                    return
                except _BodyTooLarge:
                    await http.json(413, {"error": "request body too large"})
                    return
                except h11.RemoteProtocolError as exc:
                    if http.conn.our_state is h11.SEND_RESPONSE:
                        await http.json(400, {"error": f"bad HTTP request: {exc}"})
                    return
                if got is None:
                    return
                request, body = got
                refused = self.guard.refusal(request)
                if refused is not None:
                    status, reason = refused
                    close = [("Connection", "close")]
                    await http.whole(
                        status, "text/plain; charset=utf-8", f"{reason}\n".encode(), close
                    )
                    return
                await self._route(http, request, body)
                if http.conn.our_state is not h11.DONE or http.conn.their_state is not h11.DONE:
                    return
                http.conn.start_next_cycle()
        except (_Closed, h11.ProtocolError):
            pass
        finally:
            await anyio.aclose_forcefully(stream)

    async def _route(self, http: _Http, request: h11.Request, body: bytes) -> None:
        method = request.method.decode("ascii", "replace").upper()
        path = request.target.decode("ascii", "replace").split("?", 1)[0].rstrip("/") or "/"
        routes: dict[str, tuple[str, Callable[[_Http, bytes], Awaitable[None]]]] = {
            "/api/chat": ("POST", self._ollama_chat),
            "/api/generate": ("POST", self._ollama_generate),
            "/api/tags": ("GET", self._ollama_tags),
            "/api/version": ("GET", self._ollama_version),
            "/v1/chat/completions": ("POST", self._openai_chat),
            "/v1/models": ("GET", self._openai_models),
            "/": ("GET", self._root),
        }
        openai = path.startswith("/v1/") or path == "/v1"
        if path not in routes:
            if openai:
                await http.json(404, _openai_error(f"Unknown route {method} {path}", None, 404))
            else:
                await http.whole(404, "text/plain; charset=utf-8", b"404 page not found")
            return
        allowed, handler = routes[path]
        if method == "HEAD" and allowed == "GET":
            await http.whole(200, "text/plain; charset=utf-8", b"")
            return
        if method != allowed:
            headers = [("Allow", allowed)]
            if openai:
                error = _openai_error(f"Method {method} not allowed on {path}", None, 405)
                await http.json(405, error, headers)
            else:
                await http.whole(405, "text/plain; charset=utf-8", b"405 method not allowed")
            return
        await handler(http, body)

    # --- simple GET routes ---

    async def _root(self, http: _Http, body: bytes) -> None:
        await http.whole(200, "text/plain; charset=utf-8", b"Ollama is running")

    async def _ollama_version(self, http: _Http, body: bytes) -> None:
        await http.json(200, {"version": OLLAMA_VERSION})

    async def _ollama_tags(self, http: _Http, body: bytes) -> None:
        name = f"{self.sim.model_name}:latest"
        digest = hashlib.sha256(name.encode()).hexdigest()
        entry = {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 0,
            "digest": digest,
            "details": {
                "format": "gguf",
                "family": "sim",
                "families": ["sim"],
                "parameter_size": "8B",
                "quantization_level": "Q4_K_M",
            },
        }
        await http.json(200, {"models": [entry]})

    async def _openai_models(self, http: _Http, body: bytes) -> None:
        entry = {"id": self.sim.model_name, "object": "model", "created": 0, "owned_by": "sim"}
        await http.json(200, {"object": "list", "data": [entry]})

    # --- Ollama ---

    async def _ollama_chat(self, http: _Http, body: bytes) -> None:
        try:
            req = OllamaChatRequest.model_validate_json(body)
        except ValidationError as exc:
            await http.json(400, {"error": _describe(exc)})
            return
        messages = [(m.role, m.content) for m in req.messages]
        await self._ollama_reply(http, req.model, messages, req.stream, req.options, chat=True)

    async def _ollama_generate(self, http: _Http, body: bytes) -> None:
        try:
            req = OllamaGenerateRequest.model_validate_json(body)
        except ValidationError as exc:
            await http.json(400, {"error": _describe(exc)})
            return
        if req.model and req.model in self.model_names and not req.prompt:
            # Ollama answers an empty prompt by loading the model.
            load = {"model": req.model, "created_at": _rfc3339_now(), "response": ""}
            await http.json(200, {**load, "done": True, "done_reason": "load"})
            return
        messages = [("system", req.system)] if req.system else []
        messages.append(("user", req.prompt))
        await self._ollama_reply(http, req.model, messages, req.stream, req.options, chat=False)

    async def _ollama_reply(
        self,
        http: _Http,
        model: str,
        messages: list[tuple[str, str]],
        stream: bool,
        options: OllamaOptions | None,
        *,
        chat: bool,
    ) -> None:
        if not model:
            await http.json(400, {"error": "model is required"})
            return
        if model not in self.model_names:
            error = f'model "{model}" not found, try pulling it first'
            await http.json(404, {"error": error})
            return
        opts = options or OllamaOptions()
        max_tokens = (
            opts.num_predict if opts.num_predict is not None and opts.num_predict >= 0 else None
        )
        r = self.sim.respond(
            self.clock.now(), messages, request_seed=opts.seed, max_tokens=max_tokens
        )
        if await self._http_fault(http, r, "ollama"):
            return

        def line(text: str, done: bool) -> dict[str, Any]:
            head: dict[str, Any] = {"model": model, "created_at": _rfc3339_now()}
            if chat:
                head["message"] = {"role": "assistant", "content": text}
            else:
                head["response"] = text
            head["done"] = done
            return head

        def final(text: str) -> dict[str, Any]:
            return {
                **line(text, True),
                "done_reason": r.finish_reason,
                "total_duration": _ns(r.end - r.arrival),
                "load_duration": _ns(r.overhead_s),
                "prompt_eval_count": r.prompt_tokens,
                "prompt_eval_duration": _ns(r.prefill_s),
                "eval_count": r.completion_tokens,
                "eval_duration": _ns(r.decode_s),
            }

        if not stream:
            await self._whole_after(http, r)
            left = self.clock.now()
            await http.json(200, final(r.text))
            self._record_whole(r, left)
            return
        await http.start(200, NDJSON_TYPE)
        async for text in self._paced(http, r):
            await http.chunk((_dumps(line(text, False)) + "\n").encode())
        await http.chunk((_dumps(final("")) + "\n").encode())
        await http.end()

    # --- OpenAI ---

    async def _openai_chat(self, http: _Http, body: bytes) -> None:
        try:
            req = OpenAIChatRequest.model_validate_json(body)
        except ValidationError as exc:
            await http.json(400, _openai_error(_describe(exc), None, 400))
            return
        if req.stream_options is not None and not req.stream:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            await http.json(400, _openai_error(message, "stream_options", 400))
            return
        fmt = req.response_format
        if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is None:
            message = "Missing required parameter: 'response_format.json_schema'."
            await http.json(400, _openai_error(message, "response_format", 400))
            return
        if req.model not in self.model_names:
            message = f"The model `{req.model}` does not exist or you do not have access to it."
            await http.json(404, _openai_error(message, "model", 404, code="model_not_found"))
            return
        messages = [(m.role, m.text()) for m in req.messages]
        max_tokens = req.max_completion_tokens or req.max_tokens
        r = self.sim.respond(
            self.clock.now(), messages, request_seed=req.seed, max_tokens=max_tokens
        )
        if await self._http_fault(http, r, "openai"):
            return
        completion_id = f"chatcmpl-sim-{r.request_id}"
        created = int(time.time())
        usage = {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "total_tokens": r.prompt_tokens + r.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": r.cached_tokens},
        }
        head = {"id": completion_id, "created": created, "model": req.model}

        if not req.stream:
            await self._whole_after(http, r)
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": r.text},
                "logprobs": None,
                "finish_reason": r.finish_reason,
            }
            whole = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            left = self.clock.now()
            await http.json(200, {**whole, "system_fingerprint": "sim"})
            self._record_whole(r, left)
            return

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            obj = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {_dumps(obj)}\n\n".encode()

        await http.start(200, SSE_TYPE, [("Cache-Control", "no-cache")])
        await http.chunk(chunk({"role": "assistant", "content": ""}, None))
        async for text in self._paced(http, r):
            await http.chunk(chunk({"content": text}, None))
        await http.chunk(chunk({}, r.finish_reason))
        if req.stream_options is not None and req.stream_options.include_usage:
            tail = {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await http.chunk(f"data: {_dumps(tail)}\n\n".encode())
        await http.chunk(b"data: [DONE]\n\n")
        await http.end()

    # --- pacing and faults, shared by both protocols ---

    async def _until(self, instant: float) -> None:
        await self.clock.sleep(instant - self.clock.now())

    async def _http_fault(self, http: _Http, r: SimResponse, dialect: Dialect) -> bool:
        if r.status == 200:
            return False
        await self._until(r.end)
        if r.status == 429:
            message = "Rate limit reached (injected by the sim); retry later."
            headers = [("Retry-After", str(math.ceil(r.retry_after or 1)))]
            if dialect == "openai":
                body: object = _openai_error(message, None, 429, code="rate_limit_exceeded")
            else:
                body = {"error": message}
            await http.json(429, body, headers)
        else:
            message = "Internal server error (injected by the sim)."
            body = _openai_error(message, None, 500) if dialect == "openai" else {"error": message}
            await http.json(r.status, body)
        return True

    async def _paced(self, http: _Http, r: SimResponse) -> AsyncIterator[str]:
        """Each token at its absolute instant; then the stall or disconnect, if injected."""
        brace_at = {index: agent_id for agent_id, index in r.plan_tokens}
        for i in range(r.sent_tokens):
            await self._until(r.token_times[i])
            # When the brace really left (handed to the socket), not when it was due: a
            # server that wakes late must not count its lateness as the client's.
            left = self.clock.now()
            yield r.tokens[i]
            if i in brace_at:
                self.sim.record_emission(r.request_id, brace_at[i], left)
        await self._cut(http, r)

    async def _whole_after(self, http: _Http, r: SimResponse) -> None:
        if r.cut_after is None:
            await self._until(r.end)
        else:
            await self._cut(http, r)

    def _record_whole(self, r: SimResponse, left: float) -> None:
        """A whole answer's braces all left with its body, at `left`."""
        for agent_id, _ in r.plan_tokens:
            self.sim.record_emission(r.request_id, agent_id, left)

    async def _cut(self, http: _Http, r: SimResponse) -> None:
        if r.fault == "stall":
            await http.hold_open()
        if r.fault == "disconnect":
            sent = r.sent_tokens
            await self._until(r.token_times[sent] if sent < len(r.token_times) else r.end)
            raise _Closed  # the connection handler closes the socket mid-body


def _openai_error(
    message: str, param: str | None, status: int, code: str | None = None
) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        404: "invalid_request_error",
        405: "invalid_request_error",
        429: "requests",
    }.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class SimServer(AbstractContextManager["SimServer"]):
    """The sim server on its own event-loop thread: `.url`, `.port`, `.sim`, `stop()`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        preset: str = "gpu",
        num_parallel: int = 1,
        faults: FaultConfig | None = None,
        seed: int = 0,
        persona: str | None = None,
        clock: Clock | None = None,
        allow_hosts: Sequence[str] = (),
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        if not 0 < idle_timeout_s < math.inf:
            raise ValueError(f"idle_timeout_s must be a positive number, got {idle_timeout_s}")
        self.host = host
        self._requested_port = port
        self.sim = SimModel(
            get_preset(preset), seed=seed, num_parallel=num_parallel, faults=faults, persona=persona
        )
        guard = HostGuard(host, allow_hosts)
        self._app = SimHTTP(self.sim, clock or MonotonicClock(), guard, idle_timeout_s)
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self.port = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SimServer:
        with self._lock:
            if self._portal is not None:
                return self
            cm = anyio.from_thread.start_blocking_portal(name="simserver")
            portal = cm.__enter__()
            try:
                self._listener = portal.call(self._open)
                portal.start_task_soon(self._serve)
            except BaseException:
                cm.__exit__(None, None, None)
                raise
            self._portal_cm, self._portal = cm, portal
        return self

    async def _open(self) -> anyio.abc.Listener[anyio.abc.SocketStream]:
        listener = await anyio.create_tcp_listener(
            local_host=self.host, local_port=self._requested_port
        )
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        return listener

    async def _serve(self) -> None:
        assert self._listener is not None
        async with self._listener:
            await self._listener.serve(self._app.handle_connection)

    def stop(self) -> None:
        """Cancel every connection (stalled ones too) and join the thread."""
        with self._lock:
            portal, cm = self._portal, self._portal_cm
            self._portal = self._portal_cm = None
        if portal is None or cm is None:
            return
        with suppress(RuntimeError):  # already stopped
            portal.call(portal.stop, True)
        cm.__exit__(None, None, None)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m planner.sim.server",
        description="Serve the simulated LLM over HTTP (Ollama and OpenAI protocols).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    parser.add_argument(
        "--port", type=int, default=11434, help="port (default: 11434, Ollama's; 0 picks one)"
    )
    parser.add_argument(
        "--preset",
        default="gpu",
        choices=["gpu", "mac", "cpu", "instant"],
        help="latency model: gpu 3500/110 tok/s, mac 500/45, cpu 60/15 (prefill/decode)",
    )
    parser.add_argument(
        "--num-parallel",
        type=int,
        default=1,
        metavar="K",
        help="sequences decoded at once: 1 queues like a default Ollama, 16 is vLLM-like",
    )
    parser.add_argument(
        "--faults",
        type=float,
        default=0.0,
        metavar="RATE",
        help="chance per request of an injected fault (malformed JSON, truncation, wrong or "
        "missing agents, prose, HTTP 500/429, stall, disconnect)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for plans and faults")
    parser.add_argument(
        "--persona",
        choices=PERSONA_CHOICES,
        default=None,
        help="how the simulated squad plays (seed: one picked by --seed); default: the rule "
        "planner plus noise",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides loopback names and the bound address "
        "(repeatable); any other Host gets 421",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help=f"close a connection that sends no whole request, or takes no bytes, for this "
        f"long (default: {IDLE_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    if args.num_parallel < 1:
        parser.error("--num-parallel must be at least 1")
    if not 0.0 <= args.faults <= 1.0:
        parser.error("--faults must be between 0 and 1")
    if not 0 < args.idle_timeout < math.inf:
        parser.error("--idle-timeout must be a positive number of seconds")
    if any(not _host_name(name) for name in args.allow_host):
        parser.error("--allow-host needs a host name")
    server = SimServer(
        host=args.host,
        port=args.port,
        preset=args.preset,
        num_parallel=args.num_parallel,
        faults=FaultConfig.uniform(args.faults) if args.faults else None,
        seed=args.seed,
        persona=args.persona,
        allow_hosts=args.allow_host,
        idle_timeout_s=args.idle_timeout,
    )
    try:
        server.start()
    except OSError as exc:
        print(f"simserver: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 1
    print(
        f"sim LLM ({server.sim.model_name}, num_parallel={args.num_parallel},"
        f" faults={args.faults}) listening on {server.url}",
        flush=True,
    )
    stop = threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("simserver: stopping")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
