"""The planner's `LLM_*` variables: read in one place, each bad value one line naming it."""

from __future__ import annotations

import pytest

from planner.clock import VirtualClock
from planner.config import ENV_VARS, PlannerConfig
from planner.errors import ConfigError
from planner.service import make_core
from tests.planning_helpers import ScriptedBackend


def test_defaults_when_unset() -> None:
    config = PlannerConfig.from_env({})
    assert config == PlannerConfig()
    assert config.timeouts().request_ms == 10_000 and config.timeouts().connect_ms == 2_000
    assert config.retry().max_attempts == 3 and config.cache_cap == 4096
    breaker = config.breaker(VirtualClock())
    assert breaker.threshold == 5 and breaker.cooldown_s == 5.0


def test_good_values_are_read() -> None:
    env = {
        "LLM_TIMEOUT_MS": " 500 ",
        "LLM_CONNECT_TIMEOUT_MS": "900",
        "LLM_CACHE_CAP": "12",
        "LLM_RETRY_MAX": "5",
        "LLM_BREAKER_THRESHOLD": "2",
        "LLM_BREAKER_COOLDOWN_MS": "0",
    }
    config = PlannerConfig.from_env(env)
    t = config.timeouts()
    assert (t.request_ms, t.connect_ms) == (500, 500)  # connect never outlives the request
    assert config.cache_cap == 12 and config.retry().max_attempts == 5
    assert config.breaker(VirtualClock()).cooldown_s == 0.0


MS_VARS = ("LLM_TIMEOUT_MS", "LLM_CONNECT_TIMEOUT_MS", "LLM_BREAKER_COOLDOWN_MS")
BAD = [
    (var.name, bad)
    for var in ENV_VARS
    for bad in ("abc", "-1", "0", "nan", "inf", "-inf", "2.5", "1e9", "1e308")
    if not (var.name == "LLM_BREAKER_COOLDOWN_MS" and bad == "0")  # no cooldown: allowed
    if not (var.name in MS_VARS and bad == "2.5")  # 2.5 ms is a duration
]


@pytest.mark.parametrize(("var", "bad"), BAD)
def test_each_bad_value_is_one_line_naming_the_variable(var: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        PlannerConfig.from_env({var: bad})
    message = info.value.message
    assert message.startswith(f"{var}={bad!r}: expected ") and "\n" not in message


def test_fractional_milliseconds_are_durations() -> None:
    assert PlannerConfig.from_env({"LLM_TIMEOUT_MS": "2.5"}).timeout_ms == 2.5


def test_make_core_validates_before_building() -> None:
    with pytest.raises(ConfigError, match="LLM_RETRY_MAX"):
        make_core(ScriptedBackend([]), VirtualClock(), 0, {"LLM_RETRY_MAX": "0"})
    core = make_core(ScriptedBackend([]), VirtualClock(), 0, config=PlannerConfig(cache_cap=7))
    assert core.cache.capacity == 7
