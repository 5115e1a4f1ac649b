"""write_whole: a file a later game reads is replaced whole or left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from game.match.files import write_whole


def test_a_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "plans.json"
    target.write_text("old", "utf-8")
    write_whole(target, "new text")
    assert target.read_text("utf-8") == "new text"
    assert [p.name for p in tmp_path.iterdir()] == ["plans.json"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "plans.json"
    target.write_text("old", "utf-8")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("game.match.files.os.replace", refuse)
    with pytest.raises(OSError):
        write_whole(target, "new text")
    assert target.read_text("utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plans.json"]
