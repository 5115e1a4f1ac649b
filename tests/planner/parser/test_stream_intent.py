"""A plan's optional intent in both formats: read at every split of the stream, trimmed
when too long, dropped (never the plan) when it is not a string."""

from __future__ import annotations

import pytest

from game.rules.steps import Attack, MoveTo, Scan
from planner.schema import INTENT_MAX_CHARS
from planner.stream import ParsedPlan, ParseResult, PlanStreamParser, clean_intent

ANSWERS = {
    "compact": '{"plans":[[3,[["MoveTo",4,7],["Attack",5]],"flank #5 [north], hold {x}"],'
    '[4,[["Scan"]]]]}',
    "verbose": '{"plans":[{"agent_id":3,"steps":[{"act":"MoveTo","x":4,"y":7},'
    '{"act":"Attack","target_id":5}],"intent":"flank #5 [north], hold {x}"},'
    '{"agent_id":4,"steps":[{"act":"Scan"}],"intent":null}]}',
}


def parse(*chunks: str) -> list[ParseResult]:
    parser = PlanStreamParser([3, 4])
    out = [r for chunk in chunks for r in parser.feed(chunk)]
    parser.finish()
    return out


def intents(results: list[ParseResult]) -> list[tuple[int, str | None]]:
    assert all(isinstance(r, ParsedPlan) for r in results), results
    return [(r.plan.agent_id, r.plan.intent) for r in results if isinstance(r, ParsedPlan)]


@pytest.mark.parametrize("fmt", sorted(ANSWERS))
def test_intent_read_at_every_split(fmt: str) -> None:
    text = ANSWERS[fmt]
    want = [(3, "flank #5 [north], hold {x}"), (4, None)]
    for i in range(len(text) + 1):
        results = parse(text[:i], text[i:])
        assert intents(results) == want, i
        assert results[0].plan.steps == (MoveTo(x=4, y=7), Attack(target_id=5))  # type: ignore[union-attr]
    assert intents(parse(*text)) == want  # one character at a time


@pytest.mark.parametrize(
    "element",
    ['[3,[["Scan"]],"{}"]', '{{"agent_id":3,"steps":[{{"act":"Scan"}}],"intent":"{}"}}'],
    ids=["compact", "verbose"],
)
def test_an_over_long_intent_is_trimmed_not_refused(element: str) -> None:
    long = "hold the square " * 10
    [result] = parse('{"plans":[' + element.format(long) + "]}")
    assert isinstance(result, ParsedPlan)
    assert result.plan.steps == (Scan(),)
    assert result.plan.intent == long[:INTENT_MAX_CHARS].rstrip()
    assert len(result.plan.intent) <= INTENT_MAX_CHARS


@pytest.mark.parametrize("bad", ["7", '{"a":1}', "true", "null", '"   "', '""'])
def test_a_bad_intent_is_dropped_and_the_plan_kept(bad: str) -> None:
    compact = f'[3,[["Scan"]],{bad}]'
    verbose = f'{{"agent_id":4,"steps":[{{"act":"Scan"}}],"intent":{bad}}}'
    assert intents(parse(f'{{"plans":[{compact},{verbose}]}}')) == [(3, None), (4, None)]


def test_an_array_after_the_steps_reads_as_the_next_element() -> None:
    """`[3,[...],[...]` cannot be told from a plan left open before the next began (the
    parser's resynchronisation): the compact plan is lost, never mistaken. A verbose
    intent that is an array is only dropped."""
    results = parse('{"plans":[[3,[["Scan"]],["x"]]]}')
    assert not any(isinstance(r, ParsedPlan) and r.plan.agent_id == 3 for r in results)
    verbose = '{"plans":[{"agent_id":4,"steps":[{"act":"Scan"}],"intent":["x"]}]}'
    assert intents(parse(verbose)) == [(4, None)]


def test_clean_intent_collapses_whitespace() -> None:
    assert clean_intent("  rush\n #7\t now ") == "rush #7 now"
    assert clean_intent(None) is None


def test_a_fourth_compact_value_is_still_a_wrong_shape() -> None:
    [result] = parse('{"plans":[[3,[["Scan"]],"hold","more"]]}')
    assert not isinstance(result, ParsedPlan)
    assert result.cause == "validation_error" and result.agent_id == 3


def test_a_stream_cut_inside_the_intent_keeps_the_steps() -> None:
    text = ANSWERS["compact"]
    cut = text.index("flank") + 4
    parser = PlanStreamParser([3, 4])
    assert parser.feed(text[:cut]) == []
    partial = parser.finish().partial
    assert partial is not None
    assert partial.plan.steps == (MoveTo(x=4, y=7), Attack(target_id=5))
    assert partial.plan.intent is None
