"""Scripted input for tests and docs: a small text file of timed events.

One command per line; blank lines and lines starting with ``#`` are ignored.
FRAME is the 0-based frame number at whose start the events are posted (as real
pygame events, so they go through exactly the code a player's input does).
Several lines may share a frame; they are posted in file order.

    at FRAME key NAME                 press and release a key; NAME as pygame.key.key_code
                                      knows it: b, tab, space, f12, escape, return, +, -
    at FRAME move X Y                 move the mouse to window pixel (X, Y)
    at FRAME click X Y [left|right]   click at a window pixel (default left)
    at FRAME drag X1 Y1 X2 Y2         left-drag a selection box
    at FRAME tile TX TY [left|right]  click the centre of board tile (TX, TY)
    at FRAME hover TX TY              move the mouse onto board tile (TX, TY)
    at FRAME shot PATH                save a PNG of this frame once it is drawn
    at FRAME quit                     close the window

Example (select unit 1 of village, send it east, inspect, save a picture)::

    at 5 tile 1 1
    at 6 tile 6 3 right
    at 7 key tab
    at 120 shot docs/frame120.png

Errors name the line: ``script.txt:3: unknown command 'jump'``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pygame

BUTTONS = {"left": 1, "right": 3}


class ScriptError(ValueError):
    """A script could not be parsed; the message names the file and line."""


@dataclass(frozen=True)
class Command:
    frame: int
    verb: str
    args: tuple[str, ...]
    line: int


_ARITY: dict[str, tuple[int, int]] = {
    "key": (1, 1),
    "move": (2, 2),
    "click": (2, 3),
    "drag": (4, 4),
    "tile": (2, 3),
    "hover": (2, 2),
    "shot": (1, 1),
    "quit": (0, 0),
}


def _key_code(name: str) -> int:
    try:
        return int(pygame.key.key_code(name))
    except ValueError:
        raise ValueError(f"unknown key {name!r}") from None


def parse(text: str, source: str = "<script>") -> list[Command]:
    out: list[Command] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        where = f"{source}:{lineno}"
        if len(parts) < 3 or parts[0] != "at":
            raise ScriptError(f"{where}: expected 'at FRAME COMMAND ...', got {line!r}")
        try:
            frame = int(parts[1])
        except ValueError:
            raise ScriptError(f"{where}: frame must be a whole number, got {parts[1]!r}") from None
        if frame < 0:
            raise ScriptError(f"{where}: frame must not be negative")
        verb, args = parts[2], tuple(parts[3:])
        if verb == "shot":
            args = (line.split(None, 3)[3],) if len(parts) > 3 else ()  # a path may hold spaces
        if verb not in _ARITY:
            raise ScriptError(f"{where}: unknown command {verb!r} (known: {', '.join(_ARITY)})")
        lo, hi = _ARITY[verb]
        if not lo <= len(args) <= hi:
            raise ScriptError(f"{where}: {verb} takes {lo}..{hi} arguments, got {len(args)}")
        _check_args(verb, args, where)
        out.append(Command(frame, verb, args, lineno))
    return out


def _check_args(verb: str, args: tuple[str, ...], where: str) -> None:
    if verb == "key":
        try:
            _key_code(args[0])
        except ValueError as exc:
            raise ScriptError(f"{where}: {exc}") from None
    elif verb in ("move", "click", "drag", "tile", "hover"):
        n = 4 if verb == "drag" else 2
        for a in args[:n]:
            if not a.lstrip("-").isdigit():
                raise ScriptError(f"{where}: {verb} needs whole numbers, got {a!r}")
        if len(args) > n and args[n] not in BUTTONS:
            raise ScriptError(f"{where}: button must be left or right, got {args[n]!r}")


def load(path: str | Path) -> list[Command]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{p}: cannot read script: {exc}") from None
    return parse(text, str(p))


TileToPixel = Callable[[int, int], tuple[int, int]]


class Player:
    """Posts each frame's events; collects screenshot requests and quit."""

    def __init__(self, commands: list[Command]) -> None:
        self.by_frame: dict[int, list[Command]] = defaultdict(list)
        for c in commands:
            self.by_frame[c.frame].append(c)

    def post(self, frame: int, tile_px: TileToPixel) -> list[str]:
        """Post this frame's input events; return the screenshot paths asked for."""
        shots: list[str] = []
        for c in self.by_frame.get(frame, ()):
            a = c.args
            match c.verb:
                case "key":
                    code = _key_code(a[0])
                    _post(pygame.KEYDOWN, key=code, mod=0, unicode="", scancode=0)
                    _post(pygame.KEYUP, key=code, mod=0, unicode="", scancode=0)
                case "move":
                    _move((int(a[0]), int(a[1])))
                case "hover":
                    _move(tile_px(int(a[0]), int(a[1])))
                case "click":
                    _click((int(a[0]), int(a[1])), BUTTONS[a[2] if len(a) > 2 else "left"])
                case "tile":
                    pos = tile_px(int(a[0]), int(a[1]))
                    _click(pos, BUTTONS[a[2] if len(a) > 2 else "left"])
                case "drag":
                    p1, p2 = (int(a[0]), int(a[1])), (int(a[2]), int(a[3]))
                    _move(p1)
                    _post(pygame.MOUSEBUTTONDOWN, pos=p1, button=1)
                    _post(
                        pygame.MOUSEMOTION,
                        pos=p2,
                        rel=(p2[0] - p1[0], p2[1] - p1[1]),
                        buttons=(1, 0, 0),
                    )
                    _post(pygame.MOUSEBUTTONUP, pos=p2, button=1)
                case "shot":
                    shots.append(a[0])
                case "quit":
                    _post(pygame.QUIT)
        return shots


def _post(kind: int, **attrs: object) -> None:
    pygame.event.post(pygame.event.Event(kind, attrs))


def _move(pos: tuple[int, int]) -> None:
    _post(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(0, 0, 0))


def _click(pos: tuple[int, int], button: int) -> None:
    _move(pos)
    _post(pygame.MOUSEBUTTONDOWN, pos=pos, button=button)
    _post(pygame.MOUSEBUTTONUP, pos=pos, button=button)
