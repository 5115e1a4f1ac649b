"""Backend choice for `--backend {auto,sim,ollama,openai}`.

`auto` asks Ollama for its models with a short timeout and uses it if the model is
there, else the built-in sim. A server that is named but unreachable is a one-line
ConfigError. The probes close their HTTP client afterwards, so the backend builds a
fresh one inside whichever event loop later uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio
import httpx

from planner.backends.base import Backend
from planner.backends.http_edge import normalize_base_url
from planner.backends.ollama import DEFAULT_OLLAMA_URL, OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.backends.profiles import profile_for_owners, profile_for_url
from planner.errors import BackendError, BackendHTTPStatus, ConfigError

AUTO_PROBE_S = 0.3
"""`auto` must not hold up start-up: at most this long asking Ollama."""
NAMED_PROBE_S = 3.0
"""A named server gets longer to answer before it is called unreachable."""
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
KINDS = ("auto", "sim", "ollama", "openai")


def ollama_url(url: str | None, env: Mapping[str, str]) -> str:
    """`--url`, else OLLAMA_HOST, else the default. Read like Ollama's own client does:
    'host' or 'host:port' without a scheme means http on port 11434 by default; a
    listen-everywhere address (0.0.0.0, ::) means this machine."""
    raw = url or env.get("OLLAMA_HOST", "").strip()
    if not raw:
        return DEFAULT_OLLAMA_URL
    parsed = httpx.URL(normalize_base_url(raw))
    host = "127.0.0.1" if parsed.host in ("0.0.0.0", "::") else parsed.host
    port = parsed.port or (11434 if "://" not in raw else None)
    netloc = f"[{host}]" if ":" in host else host
    return f"{parsed.scheme}://{netloc}{f':{port}' if port else ''}{parsed.path.rstrip('/')}"


def pick_model(wanted: str | None, available: list[str]) -> str | None:
    """`wanted` if the server has it ('llama3.1' matches 'llama3.1:latest'), else None;
    with nothing wanted, the first listed."""
    if wanted is None:
        return available[0] if available else None
    for name in available:
        if name == wanted or name == f"{wanted}:latest":
            return name if name == wanted else wanted
    return None


def _reason_of(exc: BackendError) -> str:
    """'cannot connect to X: connection refused' -> 'connection refused'."""
    if isinstance(exc, BackendHTTPStatus) and exc.status < 300:
        return _answered(exc)
    message = exc.message
    return message.rsplit(": ", 1)[-1] if ": " in message else message


def _answered(exc: BackendHTTPStatus) -> str:
    """What a server that refused to answer answered: 'HTTP 404', or a page at 200."""
    if exc.status < 300:  # the HTTP edge raises for a 2xx only when it is a page
        return f"an HTML page, not the API (HTTP {exc.status})"
    return f"HTTP {exc.status}"


SimFactory = Callable[[], Backend]
"""Builds the sim the way the caller needs it (its clock, concurrency, faults)."""


def _sim(why: str, make_sim: SimFactory) -> tuple[Backend, str]:
    backend = make_sim()
    return backend, f"{backend.describe()} ({why})"


async def _probe_ollama(backend: OllamaBackend, seconds: float) -> list[str] | None:
    """The model list, or None if Ollama did not answer within `seconds`."""
    try:
        with anyio.move_on_after(seconds):
            return await backend.list_models(timeout=httpx.Timeout(seconds))
        return None
    finally:
        await backend.aclose()


async def choose_backend(
    kind: str,
    url: str | None,
    model: str | None,
    env: Mapping[str, str],
    *,
    make_sim: SimFactory,
    profile: str | None = None,
) -> tuple[Backend, str]:
    """The backend to use and a one-line human reason for the choice. `profile` names
    what an OpenAI-compatible server is (planner/backends/profiles.py) instead of
    detecting it."""
    if profile is not None and kind != "openai":
        raise ConfigError("--profile is for --backend openai")
    if kind == "sim":
        return _sim("chosen by --backend sim", make_sim)
    if kind == "auto":
        return await _auto(url, model, env, make_sim)
    if kind == "ollama":
        return await _named_ollama(url, model, env)
    if kind == "openai":
        return await _named_openai(url, model, env, profile)
    raise ConfigError(f"unknown backend {kind!r} (choose one of {', '.join(KINDS)})")


async def _auto(
    url: str | None,
    model: str | None,
    env: Mapping[str, str],
    make_sim: SimFactory,
) -> tuple[Backend, str]:
    base = ollama_url(url, env)
    wanted = model or env.get("OLLAMA_MODEL") or None
    probe = OllamaBackend(base)
    try:
        models = await _probe_ollama(probe, AUTO_PROBE_S)
    except BackendError as exc:
        return _sim(f"no Ollama at {base}: {_reason_of(exc)}", make_sim)
    if models is None:
        return _sim(f"no answer from Ollama at {base} within 300 ms", make_sim)
    chosen = pick_model(wanted, models)
    if chosen is None:
        missing = f"no model {wanted}" if wanted else "no models"
        return _sim(f"Ollama at {base} has {missing}", make_sim)
    backend = OllamaBackend(base, chosen)
    return backend, f"{backend.describe()} (found by auto)"


async def _named_ollama(
    url: str | None, model: str | None, env: Mapping[str, str]
) -> tuple[Backend, str]:
    base = ollama_url(url, env)
    wanted = model or env.get("OLLAMA_MODEL") or None
    try:
        models = await _probe_ollama(OllamaBackend(base), NAMED_PROBE_S)
    except BackendHTTPStatus as exc:
        raise ConfigError(f"Ollama at {base} answered {_answered(exc)}") from None
    except BackendError as exc:
        raise ConfigError(f"cannot reach Ollama at {base}: {_reason_of(exc)}") from None
    if models is None:
        raise ConfigError(f"cannot reach Ollama at {base}: no answer within {NAMED_PROBE_S:g} s")
    chosen = pick_model(wanted, models)
    if chosen is None:
        if wanted is None:
            raise ConfigError(f"Ollama at {base} has no models (try: ollama pull llama3.1)")
        listed = ", ".join(models) or "none"
        raise ConfigError(f"Ollama at {base} has no model {wanted} (it has: {listed})")
    backend = OllamaBackend(base, chosen)
    return backend, f"{backend.describe()} (named by --backend ollama)"


async def _named_openai(
    url: str | None, model: str | None, env: Mapping[str, str], named: str | None = None
) -> tuple[Backend, str]:
    base = url or env.get("OPENAI_BASE_URL", "").strip() or OPENAI_DEFAULT_URL
    wanted = model or env.get("OPENAI_MODEL") or None
    probe = OpenAIBackend(base, wanted or "", env=env)
    shown = probe.url
    try:
        with anyio.move_on_after(NAMED_PROBE_S) as scope:
            entries = await probe.list_model_entries(timeout=httpx.Timeout(NAMED_PROBE_S))
        if scope.cancelled_caught:
            raise ConfigError(f"cannot reach {shown}: no answer within {NAMED_PROBE_S:g} s")
    except BackendHTTPStatus as exc:
        if exc.status in (401, 403):
            raise ConfigError(
                f"{shown} answered HTTP {exc.status}: set OPENAI_API_KEY to a valid key"
            ) from None
        if wanted is None:
            raise ConfigError(
                f"{shown} cannot list models ({_answered(exc)}); pass --model"
            ) from None
        entries = []  # a server without /v1/models can still chat
    except BackendError as exc:
        raise ConfigError(f"cannot reach {shown}: {_reason_of(exc)}") from None
    finally:
        await probe.aclose()
    ids = [e.id for e in entries if e.id]
    chosen = wanted or (ids[0] if ids else None)
    if chosen is None:
        raise ConfigError(f"{shown} lists no models; pass --model")
    profile = named or profile_for_url(shown) or profile_for_owners(e.owned_by for e in entries)
    backend = OpenAIBackend(base, chosen, profile=profile, env=env)
    how = " and --profile" if named else ""
    return backend, f"{backend.describe()} (named by --backend openai{how})"
