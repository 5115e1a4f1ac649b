"""The shipped scenarios and custom map files: reading them is I/O, so it lives here and
the rules only parse (`game.rules.scenarios.parse`)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from game.rules.scenarios import MAX_MAP_HEIGHT, MAX_MAP_WIDTH, MapError, Scenario, parse

MAPS_DIR: Final = Path(__file__).resolve().parents[2] / "assets" / "maps"
MAX_MAP_BYTES: Final = 4 * 1024 * 1024
"""Far more than the largest map (256x256 tiles) needs; a bigger file is not read."""


def names() -> list[str]:
    """Scenario names shipped in assets/maps, sorted."""
    if not MAPS_DIR.is_dir():
        return []
    return sorted(p.stem for p in MAPS_DIR.glob("*.txt"))


def load(name: str) -> Scenario:
    """Load a shipped scenario by name (e.g. "village")."""
    available = names()
    if name not in available:
        choices = ", ".join(available) or "none found in " + str(MAPS_DIR)
        raise MapError(f"unknown scenario {name!r} (choose from: {choices})")
    return load_file(MAPS_DIR / f"{name}.txt")


def load_file(path: str | Path) -> Scenario:
    """Load a map file from any path."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_MAP_BYTES + 1)
        if len(data) > MAX_MAP_BYTES:
            raise MapError(
                f"{p}: map file is over {MAX_MAP_BYTES // 2**20} MiB, not read "
                f"(the largest map is {MAX_MAP_WIDTH}x{MAX_MAP_HEIGHT})"
            )
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MapError(f"{p}: cannot read map file: {reason}") from None
    return parse(text, source=str(p), default_name=p.stem)
