"""The integrity digest: a record whose streams, decisions or snapshots were rewritten (one
line changed, added or taken away, every other byte as written) is refused by replay, and
one rewritten to the same bytes is not (so it is the edit that is refused)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from game.__main__ import main
from game.match.record import DIGESTED_EVENTS


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A real record's lines, as written (village, seed 4, auto, some faults)."""
    path = tmp_path_factory.mktemp("rec") / "match.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "4"]
    assert main([*args, "--turns", "6", "--faults", "0.3", "--record", str(path)]) == 0
    return path.read_text("utf-8").splitlines()


def _compact(obj: dict[str, Any]) -> str:
    """As the recorder writes a line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _index(lines: list[str], kind: str, type_: str | None = None) -> int:
    for i, line in enumerate(lines):
        obj = json.loads(line)
        if obj["kind"] == kind and (type_ is None or obj.get("type") == type_):
            return i
    raise AssertionError(f"no {kind} {type_} line in the record")


def _replay(path: Path, lines: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path.write_text("\n".join(lines) + "\n", "utf-8")
    capsys.readouterr()
    try:
        code = main(["--headless", "--replay", str(path)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_the_same_bytes_rewritten_still_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: list[str]
) -> None:
    lines = [_compact(json.loads(line)) for line in recorded]
    assert lines == recorded  # the test's own serialisation is the recorder's
    code, err = _replay(tmp_path / "same.jsonl", lines, capsys)
    assert code == 0 and "state_hash matches" in err, err


@pytest.mark.parametrize("type_", sorted(DIGESTED_EVENTS))
def test_an_edited_stream_or_decision_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: list[str], type_: str
) -> None:
    lines = list(recorded)
    i = _index(lines, "event", type_)
    obj = json.loads(lines[i])
    obj["data"]["at"] += 0.001  # one instant moved by a millisecond
    lines[i] = _compact(obj)
    code, err = _replay(tmp_path / f"edited-{type_}.jsonl", lines, capsys)
    assert code == 2, err
    assert err.strip().endswith(
        f":{len(lines)}: record was edited: digest mismatch (its streams or snapshots "
        "are not the ones recorded)"
    ), err


def test_edited_snapshots_and_a_removed_chunk_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: list[str]
) -> None:
    lines = list(recorded)
    i = _index(lines, "round")
    obj = json.loads(lines[i])
    obj["snapshots"][0]["me"]["hp"] -= 1
    lines[i] = _compact(obj)
    code, err = _replay(tmp_path / "snapshot.jsonl", lines, capsys)
    assert code == 2 and "digest mismatch" in err, err

    lines = list(recorded)
    del lines[_index(lines, "event", "ChunkReceived")]
    code, err = _replay(tmp_path / "removed.jsonl", lines, capsys)
    assert code == 2 and "digest mismatch" in err, err
