"""On the virtual clock a retry leaves only once its failed attempt has ended and its
backoff is over, as on the wall clock: the shared clock alone (advanced by backoffs, not
by stamps) used to start a retry while the stream it retries was still sending chunks, so
the attempts of one request overlapped and a match record could not tell their chunks
apart (its replay then said another history)."""

from __future__ import annotations

import itertools

import pytest

from planner.clock import VirtualClock
from planner.events import ResponseEnded
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from tests.planning_helpers import make_core, planning_round, run_round


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_a_retry_starts_after_its_failed_attempt_ended(mode: str) -> None:
    clock = VirtualClock()
    retried = 0
    for seed in range(6):
        backend = SimBackend.create(
            "gpu", seed=seed, clock=clock, faults=FaultConfig.only("disconnect", 0.5)
        )
        core = make_core(backend, clock, seed)
        settings = PlannerSettings(mode=mode, budget_ms=60_000, cache=False)
        events = run_round(core, settings, planning_round(seed + 1))
        ends: dict[int, list[ResponseEnded]] = {}
        for e in events:
            if isinstance(e, ResponseEnded):
                ends.setdefault(e.request_id, []).append(e)
        for attempts in ends.values():
            for failed, retry in itertools.pairwise(attempts):
                retried += 1
                assert retry.started_at >= failed.at, (failed, retry)
    assert retried  # the disconnects were retried
