"""The inspector says what a plan is for, when the plan said it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from game.ui.inspector import inspector_lines
from planner.events import PlanDelivered
from tests.ui_fakes import make_session, round_events

pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.mark.parametrize("intent", ["flank #7 from the north", None])
def test_the_inspector_shows_the_plans_intent(intent: str | None) -> None:
    session, _ = make_session()
    red = tuple(u.id for u in session.world.living("red"))
    for event in round_events(red[:1]):
        if isinstance(event, PlanDelivered):
            event = replace(event, outcome=replace(event.outcome, intent=intent))
        session.log.apply(event)
    state = session.log.agents[red[0]]
    snap = session.world.snapshot_of(red[0])
    text = [line.text for line in inspector_lines(red[0], state, snap, session.log, "red")]
    said = [t for t in text if t.startswith("intent: ")]
    assert said == ([f"intent: {intent}"] if intent else [])
