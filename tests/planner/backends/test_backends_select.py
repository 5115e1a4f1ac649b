"""Backend choice: auto probing Ollama, named servers, one-line errors."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from game.match.cli import build_parser
from planner.backends.base import Backend
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.backends.select import choose_backend, ollama_url, pick_model
from planner.errors import ConfigError
from planner.sim.backend import SimBackend
from tests.loopback import LoopbackServer, Request, Script, Stall, closed_port, json_reply, whole
from tests.planning_helpers import HANG_S


def sim(preset: str, seed: int) -> Callable[[], Backend]:
    return lambda: SimBackend.create(preset, seed)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio

TAGS = {"models": [{"name": "qwen2.5:7b"}, {"name": "llama3.1:latest"}]}


def fake_ollama(tags: object = TAGS) -> LoopbackServer:
    def handler(req: Request) -> Script:
        assert req.path == "/api/tags"
        return json_reply(200, tags)

    return LoopbackServer(handler)


async def test_auto_uses_ollama_first_listed_model() -> None:
    with fake_ollama() as server:
        backend, reason = await choose_backend(
            "auto", None, None, {"OLLAMA_HOST": server.url}, make_sim=sim("gpu", 1)
        )
    assert isinstance(backend, OllamaBackend)
    assert backend.model == "qwen2.5:7b"
    assert reason == f"Ollama at {server.url}, model qwen2.5:7b (found by auto)"


async def test_auto_prefers_model_arg_then_env() -> None:
    with fake_ollama() as server:
        env = {"OLLAMA_HOST": server.url, "OLLAMA_MODEL": "qwen2.5:7b"}
        by_arg, _ = await choose_backend("auto", None, "llama3.1", env, make_sim=sim("gpu", 1))
        by_env, _ = await choose_backend("auto", None, None, env, make_sim=sim("gpu", 1))
    assert by_arg.model == "llama3.1" and by_env.model == "qwen2.5:7b"


async def test_auto_falls_back_to_sim_when_model_missing_or_none() -> None:
    with fake_ollama() as server:
        env = {"OLLAMA_HOST": server.url}
        backend, reason = await choose_backend("auto", None, "mistral", env, make_sim=sim("mac", 1))
    assert isinstance(backend, SimBackend)
    assert (
        reason
        == f"built-in simulated LLM, mac preset (Ollama at {server.url} has no model mistral)"
    )
    with fake_ollama({"models": []}) as server:
        backend, reason = await choose_backend("auto", server.url, None, {}, make_sim=sim("gpu", 1))
    assert isinstance(backend, SimBackend) and reason.endswith("has no models)")


async def test_auto_with_nothing_listening_uses_sim() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    backend, reason = await choose_backend(
        "auto", None, None, {"OLLAMA_HOST": url}, make_sim=sim("gpu", 7)
    )
    assert isinstance(backend, SimBackend)
    assert reason == f"built-in simulated LLM, gpu preset (no Ollama at {url}: connection refused)"


async def test_auto_does_not_wait_for_a_silent_server() -> None:
    # The server never answers (until the test ends): only the 300 ms probe can end the
    # wait, and the hang bound fails a probe that waited for the server instead.
    with LoopbackServer(lambda req: [Stall()]) as server, anyio.fail_after(HANG_S):
        backend, reason = await choose_backend("auto", server.url, None, {}, make_sim=sim("gpu", 1))
    assert isinstance(backend, SimBackend)
    assert "within 300 ms" in reason or "no Ollama" in reason


async def test_named_ollama_unreachable_is_one_line_config_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ConfigError) as info:
        await choose_backend("ollama", url, None, {}, make_sim=sim("gpu", 1))
    assert str(info.value) == f"cannot reach Ollama at {url}: connection refused"


async def test_named_ollama_reason_and_missing_model() -> None:
    with fake_ollama() as server:
        _, reason = await choose_backend(
            "ollama", server.url, "llama3.1", {}, make_sim=sim("gpu", 1)
        )
        with pytest.raises(ConfigError, match="has no model mistral"):
            await choose_backend("ollama", server.url, "mistral", {}, make_sim=sim("gpu", 1))
    assert reason == f"Ollama at {server.url}, model llama3.1 (named by --backend ollama)"


async def test_named_openai_detects_profile_and_model() -> None:
    def handler(req: Request) -> Script:
        return json_reply(200, {"data": [{"id": "tiny.gguf", "owned_by": "llamacpp"}]})

    with LoopbackServer(handler) as server:
        backend, reason = await choose_backend(
            "openai", server.url + "/v1", None, {}, make_sim=sim("gpu", 1)
        )
    assert isinstance(backend, OpenAIBackend)
    assert backend.profile.name == "llamacpp" and backend.model == "tiny.gguf"
    assert reason == (
        f"OpenAI-compatible (llama.cpp) at {server.url}, model tiny.gguf"
        " (named by --backend openai)"
    )


async def test_named_openai_detects_llama_cpp_python_and_a_named_profile_wins() -> None:
    def handler(req: Request) -> Script:
        return json_reply(200, {"data": [{"id": "tiny", "owned_by": "me"}]})

    with LoopbackServer(handler) as server:
        detected, _ = await choose_backend("openai", server.url, None, {}, make_sim=sim("gpu", 1))
        named, reason = await choose_backend(
            "openai", server.url, None, {}, make_sim=sim("gpu", 1), profile="llamacpp"
        )
    assert isinstance(detected, OpenAIBackend) and isinstance(named, OpenAIBackend)
    assert detected.profile.name == "llamacpp_python"
    assert named.profile.name == "llamacpp"
    assert reason.endswith("(named by --backend openai and --profile)")
    with pytest.raises(ConfigError, match="--profile is for --backend openai"):
        await choose_backend("sim", None, None, {}, make_sim=sim("gpu", 1), profile="llamacpp")


def test_the_profile_flag() -> None:
    parser = build_parser()
    assert parser.parse_args([]).profile is None
    assert parser.parse_args(["--profile", "llamacpp_python"]).profile == "llamacpp_python"
    with pytest.raises(SystemExit):
        parser.parse_args(["--profile", "tgi"])


async def test_named_openai_unreachable_and_unauthorised() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ConfigError, match="connection refused"):
        await choose_backend("openai", url, "m", {}, make_sim=sim("gpu", 1))
    with LoopbackServer(lambda req: json_reply(401, {"error": "no key"})) as server:
        env = {"OPENAI_API_KEY": "sk-bad-key-123"}
        with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
            await choose_backend("openai", server.url, "m", env, make_sim=sim("gpu", 1))
    assert "sk-bad-key-123" not in str(info.value)


async def test_sim_and_unknown_kinds() -> None:
    backend, reason = await choose_backend("sim", None, None, {}, make_sim=sim("cpu", 1))
    assert isinstance(backend, SimBackend)
    assert reason == "built-in simulated LLM, cpu preset (chosen by --backend sim)"
    with pytest.raises(ConfigError, match="unknown backend 'tgi'"):
        await choose_backend("tgi", None, None, {}, make_sim=sim("gpu", 1))


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        (None, {}, "http://127.0.0.1:11434"),
        (None, {"OLLAMA_HOST": "0.0.0.0"}, "http://127.0.0.1:11434"),
        (None, {"OLLAMA_HOST": "gpu-box:9999"}, "http://gpu-box:9999"),
        (None, {"OLLAMA_HOST": "https://ollama.example.com/"}, "https://ollama.example.com"),
        (None, {"OLLAMA_HOST": "[::1]:8080"}, "http://[::1]:8080"),
        ("http://127.0.0.1:8000", {"OLLAMA_HOST": "x"}, "http://127.0.0.1:8000"),
        ("localhost", {}, "http://localhost:11434"),
    ],
)
def test_ollama_url(url: str | None, env: dict[str, str], expected: str) -> None:
    assert ollama_url(url, env) == expected


def test_pick_model() -> None:
    assert pick_model(None, ["a", "b"]) == "a"
    assert pick_model(None, []) is None
    assert pick_model("llama3.1", ["llama3.1:latest"]) == "llama3.1"
    assert pick_model("llama3.1:8b", ["llama3.1:latest"]) is None


PAGE = "<html><head><title>Router login</title></head><body>Sign in</body></html>"


async def test_an_html_page_where_the_api_should_be_says_so() -> None:
    with LoopbackServer(lambda req: whole(200, PAGE, content_type="text/html")) as server:
        _, reason = await choose_backend(
            "auto", None, None, {"OLLAMA_HOST": server.url}, make_sim=sim("gpu", 1)
        )
        assert reason.endswith(f"(no Ollama at {server.url}: an HTML page, not the API (HTTP 200))")
        with pytest.raises(ConfigError) as named:
            await choose_backend("ollama", server.url, None, {}, make_sim=sim("gpu", 1))
        assert str(named.value) == (
            f"Ollama at {server.url} answered an HTML page, not the API (HTTP 200)"
        )
        with pytest.raises(ConfigError) as openai:
            await choose_backend("openai", server.url, None, {}, make_sim=sim("gpu", 1))
        assert "cannot list models (an HTML page, not the API (HTTP 200)); pass --model" in str(
            openai.value
        )
