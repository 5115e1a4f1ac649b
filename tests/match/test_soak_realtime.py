"""The real-time soak (issue 16, item 10) in a few turns: the threaded planner over
loopback HTTP to a faulty sim server, sampled for memory, threads, descriptors and
sockets. The 2000-turn run is `python -m game.match.soak --realtime` (game/match/soak.py
says how); here only that the machinery measures, and that it cleans up.
"""

from __future__ import annotations

import socket
import sys

import pytest

from game.match import soak as soak_module
from game.match.soak import descriptors, realtime_soak

LINUX_PROC = sys.platform.startswith("linux")


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
def test_a_few_realtime_turns_over_http_leave_nothing_behind(protocol: str) -> None:
    lines: list[str] = []
    result = realtime_soak(6, 0.2, "village", every=3, protocol=protocol, report=lines.append)
    assert [s.turns for s in result.samples] == [0, 3, 6]
    assert all(s.rss > 0 and s.threads > 0 for s in result.samples)
    assert sum(result.plans.values()) > 0, "plans were delivered"
    assert result.planner_errors == 0
    assert result.threads_flat, (result.thread_counts, result.threads_before, result.threads_after)
    if LINUX_PROC:
        assert result.sockets_left == 0
        assert all(s.fds is not None and s.fds.of_server >= 1 for s in result.samples)
    assert lines[0].startswith("realtime soak: ")
    assert lines[1].startswith("turn      0: rss") and "threads" in lines[1]
    assert "sockets left open after close: " in lines[-1]


@pytest.mark.skipif(not LINUX_PROC, reason="reads /proc")
def test_descriptors_tell_a_servers_sockets_from_its_clients() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        before = descriptors(port)
        assert before is not None and (before.to_server, before.of_server) == (0, 1)
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                during = descriptors(port)
                assert during is not None
                assert (during.to_server, during.of_server) == (1, 2)
                assert during.sockets == before.sockets + 2
                assert client.fileno() >= 0


def test_the_realtime_command_runs_and_checks_its_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = soak_module.main(["--realtime", "--turns", "2", "--every", "1", "--protocol", "ollama"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sockets left open after close" in out and "planner errors: 0" in out
    for bad in (["--budget-ms", "0"], ["--budget-ms", "inf"], ["--protocol", "grpc"]):
        with pytest.raises(SystemExit) as exit_info:
            soak_module.main(["--realtime", *bad])
        assert exit_info.value.code == 2
