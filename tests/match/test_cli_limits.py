"""Every size a user can set is bounded, and every output path is checked, before the match."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from game.__main__ import main
from game.match.maps import MAX_MAP_BYTES


def one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--num-parallel", "1000000000"], "--num-parallel: must be a whole number from 1 to 1024"),
        (["--num-parallel", "0"], "from 1 to 1024"),
        (["--concurrency", "100000"], "--concurrency: must be a whole number from 1 to 1024"),
        (["--size", "100000x100000"], "window 100000x100000 is too large (at most 7680x4320)"),
        (["--size", "7681x4320"], "too large"),
        (["--budget-ms", "inf"], "--budget-ms: must be a number from 1 to 600000, got inf"),
        (["--budget-ms", "nan"], "--budget-ms: must be a number from 1 to 600000, got nan"),
        (["--budget-ms", "1e-300"], "--budget-ms: must be a number from 1 to 600000"),
        (["--budget-ms", "1e9"], "--budget-ms: must be a number from 1 to 600000"),
        (["--turns", "1000000000"], "--turns: must be a whole number from 1 to 100000"),
        (["--frames", "0"], "--frames: must be a whole number"),
    ],
)
def test_sizes_are_bounded(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert needle in one_line_exit_2(["--backend", "sim", *args], capsys)


@pytest.mark.parametrize("flag", ["--report", "--trace", "--record", "--screenshot"])
def test_an_output_into_a_missing_folder_fails_before_the_match(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "out.png"
    err = one_line_exit_2(["--headless", "--backend", "sim", flag, str(target)], capsys)
    assert f"{flag}: " in err and "does not exist" in err
    assert not target.parent.exists()


def test_a_screenshot_must_be_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_exit_2(["--screenshot", str(tmp_path / "s.txt")], capsys)
    assert "must end in .png" in err
    assert list(tmp_path.iterdir()) == []


def test_a_huge_map_file_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"." * (MAX_MAP_BYTES + 1))
    err = one_line_exit_2(["--headless", "--map", str(big)], capsys)
    assert err.endswith("map file is over 4 MiB, not read (the largest map is 256x256)")


def test_a_large_map_is_one_line_before_the_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.txt"
    row = "R" + "." * 998 + "r"
    big.write_text("\n".join([row] * 1000), encoding="utf-8")
    err = one_line_exit_2(["--headless", "--backend", "sim", "--map", str(big)], capsys)
    assert err.endswith("map is 1000x1000, the largest is 256x256")


def test_a_map_with_a_bom_plays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf#######\n#r...R#\n#######\n")
    assert main(["--headless", "--backend", "sim", "--map", str(bom), "--turns", "1"]) == 0


@pytest.mark.parametrize(
    ("flags", "needle"),
    [('"', "--flags: No closing quotation"), ("--bogus", "unrecognized arguments: --bogus")],
)
@pytest.mark.parametrize("tool", ["planner.bench.targets", "game.match.ladder"])
def test_a_bench_or_ladder_refuses_bad_game_flags_in_one_line(
    tool: str, flags: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(tool)
    with pytest.raises(SystemExit) as exc:
        module.main([f"--flags={flags}", "--seeds", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
