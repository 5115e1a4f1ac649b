"""Every test runs without a display, sound card or Ollama of the developer's."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# A local Ollama must not change what `--backend auto` picks in tests.
os.environ["OLLAMA_HOST"] = "http://127.0.0.1:9"

# Property tests are judged by what they find, never by the clock: no per-example
# deadline and no too-slow health check (a loaded machine is slow). No example database
# either: it would be one directory on disk shared by every copy of the suite running
# here (a failing example is printed in full all the same).
settings.register_profile(
    "squadmind", deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
settings.load_profile("squadmind")


@pytest.fixture
def pygame_display() -> Iterator[None]:
    """A 1280x800 window on the dummy video driver, with an empty event queue."""
    import pygame

    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((1280, 800))
    pygame.event.clear()
    yield
    pygame.display.quit()


@pytest.fixture
def interruptible_children() -> Iterator[None]:
    """Child processes started during the test can be interrupted with SIGINT.

    A shell starts a background job (`pytest &`) with SIGINT ignored, and an ignored
    signal stays ignored across exec: a child Python would never see KeyboardInterrupt.
    A handled signal is reset to the default at exec, so for the test's duration SIGINT
    gets Python's own handler here (which also lets a Ctrl-C stop the test run)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
