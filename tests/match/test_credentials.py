"""Credentials: a `user:password@` in --url is never sent, printed, reported or recorded;
the API key goes out only as a Bearer header and never comes back into a file; a refused
key (401/403) is said at once and a headless match with no LLM plan because of it exits 3.

Each test plays a real headless match over loopback HTTP against `tests/loopback.py`,
which checks what it receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from game.__main__ import EXIT_KEY_REFUSED, main
from tests.loopback import Action, LoopbackServer, Request, json_reply

KEY = "sk-test-Z9y8X7w6V5u4"
MODELS = {"object": "list", "data": [{"id": "m", "owned_by": "vllm"}]}


def echoing_server_error(request: Request) -> list[Action]:
    """/v1/models answers; every chat request is a 500 whose body echoes the
    Authorization header and the key, as careless proxies do."""
    if request.path.startswith("/v1/models"):
        return json_reply(200, MODELS)
    auth = request.headers.get("authorization", "")
    body = {
        "error": {
            "message": f"upstream failed; you sent Authorization: {auth} (key {KEY})",
            "headers": {"authorization": auth},
        }
    }
    return json_reply(500, body)


def refusing_the_key(request: Request) -> list[Action]:
    if request.path.startswith("/v1/models"):
        return json_reply(200, MODELS)  # many servers list models without a key
    return json_reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})


def match(url: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--headless",
        "--backend",
        "openai",
        "--url",
        url,
        "--model",
        "m",
        "--scenario",
        "skirmish",
        "--turns",
        "1",
        "--report",
        str(tmp_path / "report.json"),
        "--record",
        str(tmp_path / "match.jsonl"),
        "--trace",
        str(tmp_path / "trace.json"),
        *extra,
    ]


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LLM_RETRY_MAX", "1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.mark.usefixtures("key_env")
def test_url_credentials_and_the_key_never_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer(echoing_server_error) as server:
        url = server.url.replace("http://", "http://alice:secret@") + "/v1"
        code = main(match(url, tmp_path))
    out, err = capsys.readouterr()
    assert code == 0, err
    # sent: the Bearer key, never Basic auth made of the URL's user:password
    assert server.requests and all(
        r.headers.get("authorization") == f"Bearer {KEY}" for r in server.requests
    )
    # said once that the URL's credentials were ignored
    assert err.count("user:password in --url is ignored") == 1
    files = {p.name: p.read_text("utf-8") for p in tmp_path.iterdir()}
    assert set(files) == {"report.json", "match.jsonl", "trace.json"}
    report = json.loads(files["report.json"])
    assert report["backend_reason"].startswith("OpenAI-compatible")
    assert "500" in files["match.jsonl"]  # the server's errors were recorded...
    for where, text in {"stderr": err, "stdout": out, **files}.items():
        for secret in ("alice", "secret", KEY, "Z9y8X7w6V5u4"):  # ...but no secret in them
            assert secret not in text, (where, secret)


@pytest.mark.usefixtures("key_env")
def test_a_refused_key_is_said_at_once_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer(refusing_the_key) as server:
        code = main(match(server.url, tmp_path))
    out, err = capsys.readouterr()
    assert code == EXIT_KEY_REFUSED == 3
    lines = [line for line in err.splitlines() if "the server refused the key" in line]
    assert (
        lines[0]
        == "python -m game: error: the server refused the key (HTTP 401): check OPENAI_API_KEY"
    )
    assert lines[-1].endswith("; no LLM plans") and len(lines) == 2
    assert "llm_plans=0%" in out
    for text in (err, out, *(p.read_text("utf-8") for p in tmp_path.iterdir())):
        assert KEY not in text
