"""The window: layout, the frame loop, frame-time measurement and scripted runs.

`run_window(session)` is the whole front end: it polls input, calls
`session.update(dt)` (which only drains the planner's queue and steps fixed
ticks, so a frame never waits on planning), draws, and flips. `GameUI` holds the
per-window state and can be driven without the loop (tests post events and call
`process_events()` / `draw()` themselves).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pygame

from game.match.planlog import percentile
from game.ui import SessionLike, theme
from game.ui import script as event_script
from game.ui.board import BoardLayout, BoardView
from game.ui.help import draw_help
from game.ui.input import Controls, ViewState
from game.ui.inspector import Inspector, llm_agent_ids
from game.ui.labels import draw_agent_labels
from game.ui.overlay import draw_end_screen, draw_status_bar
from game.ui.timeline import Waterfall

MIN_WATERFALL_H = 150
WATERFALL_SHARE = 0.26
"""Of the window's height, for the waterfall (the board gets the rest of its column)."""
INSPECTOR_SHARE = 0.32
MIN_SIZE = (640, 400)
DEFAULT_SIZE = (1280, 800)
SCREEN_SHARE = 0.9
"""The window opens at most this share of the screen (room for panels and a title bar)."""


def window_size(desktop: tuple[int, int] | None) -> tuple[int, int]:
    """The size to open at: most of the screen (any aspect), never under MIN_SIZE."""
    if desktop is None or desktop[0] <= 0 or desktop[1] <= 0:
        return DEFAULT_SIZE
    w, h = (int(d * SCREEN_SHARE) for d in desktop)
    return max(MIN_SIZE[0], w), max(MIN_SIZE[1], h)


# ---------------------------------------------------------------- frame times
@dataclass
class FrameStats:
    """Per-frame work time (input + update + draw + flip, not the fps wait), in ms."""

    samples: list[float] = field(default_factory=list)

    def add(self, ms: float) -> None:
        self.samples.append(ms)

    def p(self, q: float) -> float:
        return percentile(self.samples, q) or 0.0

    @property
    def max(self) -> float:
        return max(self.samples, default=0.0)

    def summary(self) -> str:
        return (
            f"frame time p50 {self.p(50):.1f} ms, p99 {self.p(99):.1f} ms, "
            f"max {self.max:.1f} ms ({len(self.samples)} frames)"
        )


# ---------------------------------------------------------------- layout
@dataclass(frozen=True)
class Layout:
    size: tuple[int, int]
    status: pygame.Rect
    board: BoardLayout
    waterfall: pygame.Rect | None
    inspector: pygame.Rect | None
    left: pygame.Rect
    """The left column (board + waterfall): toasts, help and the end screen sit here."""


def compute_layout(
    size: tuple[int, int], grid_w: int, grid_h: int, show_inspector: bool, show_waterfall: bool
) -> Layout:
    w, h = max(size[0], MIN_SIZE[0]), max(size[1], MIN_SIZE[1])
    pad = theme.PAD
    status = pygame.Rect(0, 0, w, theme.STATUS_BAR_H)
    top = status.bottom + pad
    inspector = None
    right_edge = w - pad
    if show_inspector:
        iw = min(theme.INSPECTOR_W, int(w * INSPECTOR_SHARE))
        inspector = pygame.Rect(w - pad - iw, top, iw, h - top - pad)
        right_edge = inspector.x - pad
    left = pygame.Rect(pad, top, right_edge - pad, h - top - pad)
    waterfall_h = max(MIN_WATERFALL_H, int(h * WATERFALL_SHARE))
    board_h = left.height - (waterfall_h + pad if show_waterfall else 0)
    tile = max(4, min(left.width // grid_w, max(4, board_h) // grid_h))
    area = pygame.Rect(left.x, left.y, left.width, tile * grid_h)
    board = BoardLayout.fit(area, grid_w, grid_h)
    waterfall = None
    if show_waterfall:
        y = area.bottom + pad
        waterfall = pygame.Rect(left.x, y, left.width, max(60, left.bottom - y))
    return Layout((w, h), status, board, waterfall, inspector, left)


# ---------------------------------------------------------------- the UI
class GameUI:
    def __init__(self, session: SessionLike, size: tuple[int, int]) -> None:
        self.session = session
        self.size = size
        self.fonts = theme.Fonts()
        self.board = BoardView(self.fonts)
        self.waterfall = Waterfall(self.fonts)
        self.inspector = Inspector(self.fonts)
        self.view = ViewState()
        self.controls = Controls(session, self.view, lambda: self.layout().board)
        self._layout: tuple[tuple[object, ...], Layout] | None = None
        self.started = time.monotonic()

    @property
    def squad(self) -> str:
        return self.session.player_squad or "blue"

    def layout(self) -> Layout:
        grid = self.session.world.grid
        v = self.view
        key = (self.size, grid.width, grid.height, v.show_inspector, v.show_waterfall)
        if self._layout is None or self._layout[0] != key:
            lay = compute_layout(
                self.size, grid.width, grid.height, v.show_inspector, v.show_waterfall
            )
            self._layout = (key, lay)
        return self._layout[1]

    def tile_centre(self, x: int, y: int) -> tuple[int, int]:
        return self.layout().board.centre(x, y)

    def planner_now(self) -> float:
        """The planner clock now (its events' `at` are on it), to grow live waterfall bars."""
        virtual = getattr(self.session, "virtual_clock", None)
        return float(virtual.now()) if virtual is not None else time.perf_counter()

    # ------------------------------------------------------------ input
    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.VIDEORESIZE:
            self.size = (max(event.w, MIN_SIZE[0]), max(event.h, MIN_SIZE[1]))
            return
        if event.type == pygame.MOUSEWHEEL:
            wf = self.layout().waterfall
            if wf is not None and wf.collidepoint(self.view.mouse):
                self.waterfall.scroll_by(-int(event.y))
                return
        self.controls.handle(event)

    def process_events(self) -> None:
        for event in pygame.event.get():
            self.handle(event)

    def inspected(self) -> int | None:
        s = self.session
        ids = llm_agent_ids(s.world, s.log, s.llm_squads)
        cur = self.view.inspected
        if cur is not None and (cur in ids or cur in s.log.agents):
            return cur
        self.view.inspected = ids[0] if ids else None
        return self.view.inspected

    # ------------------------------------------------------------ drawing
    def draw(self, screen: pygame.Surface) -> None:
        s, v = self.session, self.view
        lay = self.layout()
        world, log = s.world, s.log
        now = time.monotonic()
        self.fonts.drawn.clear()
        screen.fill(theme.BACKGROUND)
        shown_units = self.board.shown_units(world, self.squad, v.reveal_all)
        llm_shown = {u.id for u in shown_units if u.squad in s.llm_squads}
        self.board.draw(screen, lay.board, world, self.squad, v.selected, llm_shown, v.reveal_all)
        draw_agent_labels(
            screen,
            lay.board,
            self.fonts,
            world,
            log,
            llm_shown,
            s.interim_agents,
            self.board.unit_rects(lay.board, shown_units),
            now - self.started,
        )
        box = v.drag_rect
        if box is not None:
            pygame.draw.rect(screen, theme.SELECTED, box, 1)
        if lay.waterfall is not None:
            self.waterfall.show_chart = v.show_chart
            self.waterfall.draw(screen, lay.waterfall, log, self.planner_now(), s.interim_agents)
        if lay.inspector is not None:
            self.inspector.draw(screen, lay.inspector, world, log, self.inspected())
        draw_status_bar(screen, lay.status, self.fonts, s)
        # One overlay at a time, so none draws over another: help, else the end of the
        # match, else the toasts.
        if v.show_help:
            w, h = lay.size
            draw_help(
                screen, pygame.Rect(0, lay.status.bottom, w, h - lay.status.bottom), self.fonts
            )
        elif s.finished:
            draw_end_screen(screen, lay.left, self.fonts, s)
        else:
            v.toasts.draw(screen, lay.board.rect, self.fonts, now)


def save_png(screen: pygame.Surface, path: str) -> str | None:
    """Save a PNG (creating its folder); the error text on failure."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(screen, path)
    except (OSError, pygame.error) as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- the loop
WINDOW_OPEN_TIMEOUT_S = 8.0
"""A video driver that neither opens a window nor fails (seen: a Wayland-less session
spinning) gets this long; then one line on stderr and exit 2."""


def _video_hint() -> str:
    driver = os.environ.get("SDL_VIDEODRIVER") or "(SDL's choice)"
    display = os.environ.get("DISPLAY") or "(unset)"
    return f"SDL_VIDEODRIVER={driver}, DISPLAY={display}"


def _window_never_opened() -> None:
    print(
        f"squadmind: error: no window after {WINDOW_OPEN_TIMEOUT_S:g} s ({_video_hint()}); "
        "try SDL_VIDEODRIVER=x11, or --headless",
        file=sys.stderr,
        flush=True,
    )
    os._exit(2)


def show_starting(screen: pygame.Surface, text: str) -> None:
    """One frame saying what is being prepared (the window is up before the match is)."""
    pygame.font.init()
    screen.fill(theme.BACKGROUND)
    img = pygame.font.SysFont(None, 28).render(text, True, theme.TEXT_DIM)
    screen.blit(img, img.get_rect(center=screen.get_rect().center))
    pygame.display.flip()
    pygame.event.pump()


def open_window(size: tuple[int, int] | None, caption: str) -> pygame.Surface | str:
    """The window's surface, or why it cannot open (one line). `size` None: most of the
    screen. A driver that hangs instead of failing ends the process (exit 2)."""
    watchdog = threading.Timer(WINDOW_OPEN_TIMEOUT_S, _window_never_opened)
    watchdog.daemon = True
    watchdog.start()
    try:
        pygame.display.init()
        if size is None:
            desktops = pygame.display.get_desktop_sizes()
            size = window_size(desktops[0] if desktops else None)
        screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        pygame.display.set_caption(caption)
        return screen
    except pygame.error as exc:
        return f"cannot open a window: {exc} ({_video_hint()}); try --headless"
    finally:
        watchdog.cancel()


def run_window(
    session: SessionLike,
    *,
    size: tuple[int, int] | None = None,
    frames: int | None = None,
    screenshot: str | None = None,
    script: str | None = None,
    stats: FrameStats | None = None,
    fps: int = 60,
    screen: pygame.Surface | None = None,
) -> int:
    """Open the window and play until Esc/close (or `frames` frames); the exit code.

    `size` None opens at most of the screen (`window_size`); the window is resizable.
    `frames` runs a fixed number of frames and prints the frame-time summary;
    `screenshot` saves a PNG after the last frame; `script` posts the events of an
    event script (see game.ui.script). `stats` receives the frame times. The
    session is closed on the way out. `screen`: a window already opened (`open_window`,
    so that it shows while the match is being built).
    """
    stats = stats if stats is not None else FrameStats()
    try:
        commands = event_script.load(script) if script else []
        caption = f"squadmind: {session.scenario.name}"
        opened = open_window(size, caption) if screen is None else screen
        if isinstance(opened, str):
            print(f"squadmind: error: {opened}", file=sys.stderr)
            return 2
        screen = opened
        pygame.display.set_caption(caption)
        pygame.font.init()
        ui = GameUI(session, screen.get_size())
        player = event_script.Player(commands)
        clock = pygame.time.Clock()
        ui.draw(screen)  # load fonts and build the terrain layer before timing starts
        # Everything alive now (pygame, pydantic, the planner) lives for the whole run;
        # freezing it keeps full collections from scanning it (a 40+ ms frame otherwise).
        gc.collect()
        gc.freeze()
        frame = 0
        last = time.perf_counter()
        while frames is None or frame < frames:
            t0 = time.perf_counter()
            shots = player.post(frame, ui.tile_centre)
            ui.process_events()
            if ui.view.quit:
                break
            session.update(t0 - last)
            last = t0
            screen = pygame.display.get_surface()
            ui.draw(screen)
            pygame.display.flip()
            stats.add((time.perf_counter() - t0) * 1000)
            for path in shots:
                _report_save(ui, screen, path)
            if ui.view.screenshot_to is not None:
                _report_save(ui, screen, ui.view.screenshot_to, toast=True)
                ui.view.screenshot_to = None
            frame += 1
            if fps:
                clock.tick(fps)
        if screenshot is not None:
            err = save_png(pygame.display.get_surface(), screenshot)
            if err is not None:
                print(f"squadmind: cannot save screenshot {screenshot}: {err}", file=sys.stderr)
                return 1
    except event_script.ScriptError as exc:
        print(f"squadmind: {exc}", file=sys.stderr)
        return 2
    finally:
        gc.unfreeze()
        session.close()
        pygame.display.quit()
    if frames is not None:
        print(stats.summary())
    return 0


def _report_save(ui: GameUI, screen: pygame.Surface, path: str, *, toast: bool = False) -> None:
    err = save_png(screen, path)
    if err is not None:
        ui.controls.toast(f"screenshot failed: {err}", theme.TEXT_BAD)
    elif toast:
        ui.controls.toast(f"saved {path}")
