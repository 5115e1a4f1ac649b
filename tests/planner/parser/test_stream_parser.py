"""PlanStreamParser: shapes accepted, incremental emission, bad elements, ids, truncation."""

from __future__ import annotations

import json

import pytest

from game.rules.steps import MAX_STEPS, Attack, MoveTo, Reload, Scan, TakeCover, Wait
from planner.schema import AgentPlan
from planner.stream import (
    ParsedPlan,
    ParseResult,
    ParseSummary,
    PlanStreamParser,
    RejectedElement,
)

BATCH = (
    '{"plans":['
    '{"agent_id":3,"steps":[{"act":"MoveTo","x":4,"y":7},{"act":"Attack","target_id":9}]},'
    '{"agent_id":5,"steps":[{"act":"TakeCover","x":6,"y":2},{"act":"Reload"}]}'
    "]}"
)
PLAN_3 = AgentPlan(agent_id=3, steps=(MoveTo(x=4, y=7), Attack(target_id=9)))
PLAN_5 = AgentPlan(agent_id=5, steps=(TakeCover(x=6, y=2), Reload()))


def parse(
    text: str, expected: list[int] | None = None, chunk: int = 0, max_steps: int = MAX_STEPS
) -> tuple[list[ParseResult], ParseSummary]:
    parser = PlanStreamParser(expected, max_steps=max_steps)
    results: list[ParseResult] = []
    step = chunk or max(1, len(text))
    for start in range(0, len(text), step):
        results += parser.feed(text[start : start + step])
    return results, parser.finish()


def plans(results: list[ParseResult]) -> list[AgentPlan]:
    return [r.plan for r in results if isinstance(r, ParsedPlan)]


def rejected(results: list[ParseResult]) -> list[RejectedElement]:
    return [r for r in results if isinstance(r, RejectedElement)]


def element(agent_id: int, *steps: str) -> str:
    return f'{{"agent_id":{agent_id},"steps":[{",".join(steps)}]}}'


WAIT = '{"act":"Wait"}'
SCAN = '{"act":"Scan"}'


# --- shapes --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [0, 1, 2, 7])
def test_wrapper_object(chunk: int) -> None:
    results, summary = parse(BATCH, [3, 5], chunk)
    assert plans(results) == [PLAN_3, PLAN_5]
    assert [r.raw for r in results] == [
        '{"agent_id":3,"steps":[{"act":"MoveTo","x":4,"y":7},{"act":"Attack","target_id":9}]}',
        '{"agent_id":5,"steps":[{"act":"TakeCover","x":6,"y":2},{"act":"Reload"}]}',
    ]
    assert summary == ParseSummary(missing=(), partial=None, rejected=(), trailing_error=None)


def test_bare_array() -> None:
    bare = json.dumps(json.loads(BATCH)["plans"], indent=2)
    results, summary = parse(bare, [3, 5])
    assert plans(results) == [PLAN_3, PLAN_5]
    assert summary.trailing_error is None


def test_single_bare_plan_object() -> None:
    results, summary = parse(f"Plan:\n{element(3, WAIT)}\n", [3])
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Wait(),))]
    assert summary.missing == () and summary.trailing_error is None


def test_leading_prose_with_brackets_and_braces_and_a_code_fence() -> None:
    text = (
        'Sure! For agents [3, 5] (use {x, y} tiles) here\'s what "I" think:\n'
        f"```json\n{BATCH}\n```\nLet me know {{if}} you need more [help]."
    )
    results, summary = parse(text, [3, 5])
    assert plans(results) == [PLAN_3, PLAN_5]
    assert rejected(results) == []
    assert summary.trailing_error is None


def test_any_whitespace() -> None:
    text = BATCH.replace(":", " \r\n:\t ").replace(",", "\n ,\t").replace("[", "[\n ")
    results, _ = parse(text, [3, 5], 3)
    assert plans(results) == [PLAN_3, PLAN_5]


def test_strings_with_braces_brackets_quotes_backslashes_and_escapes() -> None:
    nasty = 'a}b]c{d[\\"e\\"f\\\\g\\u0041\\ud83d\\ude00\\n}]}\\"'
    text = (
        '{"note":"]}{[","plans":['
        f'{{"agent_id":3,"reason":"{nasty}","steps":[{{"act":"Wait","why":"}}]\\\\"}}]}},'
        f'{{"agent_id":5,"steps":[{{"act":"Scan","x":"{nasty}"}}]}}'
        "]}"
    )
    json.loads(text)  # the test input itself is valid JSON
    for chunk in (0, 1, 3):
        results, summary = parse(text, [3, 5], chunk)
        assert plans(results) == [
            AgentPlan(agent_id=3, steps=(Wait(),)),
            AgentPlan(agent_id=5, steps=(Scan(),)),
        ]
        assert summary.trailing_error is None


def test_surrogate_pair_escape_and_emoji_split_anywhere() -> None:
    text = '[{"agent_id":1,"name":"\\uD83D\\uDE00 😀 \\\\","steps":[{"act":"Wait"}]}]'
    whole, _ = parse(text, [1])
    assert plans(whole) == [AgentPlan(agent_id=1, steps=(Wait(),))]
    for k in range(len(text) + 1):
        parser = PlanStreamParser([1])
        assert parser.feed(text[:k]) + parser.feed(text[k:]) == whole, k


def test_no_json_at_all() -> None:
    results, summary = parse("I cannot help with that.", [1, 2])
    assert results == []
    assert summary.missing == (1, 2)
    assert summary.trailing_error == "no JSON plans found in the response"


def test_empty_text_and_prose_objects_are_not_plans() -> None:
    assert parse("", [1])[1].trailing_error == "no JSON plans found in the response"
    results, summary = parse('Use {"x": 1} and [1, 2].', [1])
    assert results == [] and summary.trailing_error == "no JSON plans found in the response"


def test_scalars_in_the_plans_array_are_skipped() -> None:
    results, _ = parse(f'{{"plans":[1, "two", null, {element(1, WAIT)}]}}', [1])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
    assert rejected(results) == []


# --- incremental emission ----------------------------------------------------------


def test_plan_is_emitted_the_moment_its_closing_brace_arrives() -> None:
    first_close = BATCH.index("]}") + 2  # end of agent 3's element
    parser = PlanStreamParser([3, 5])
    assert parser.feed(BATCH[: first_close - 1]) == []
    emitted = parser.feed(BATCH[first_close - 1 : first_close])
    assert [r.plan for r in emitted if isinstance(r, ParsedPlan)] == [PLAN_3]
    assert plans(parser.feed(BATCH[first_close:])) == [PLAN_5]


def test_feed_after_finish_is_an_error() -> None:
    parser = PlanStreamParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed("[]")
    with pytest.raises(RuntimeError):
        parser.finish()


# --- bad elements ----------------------------------------------------------------------


def test_malformed_element_does_not_spoil_the_others() -> None:
    bad = '{"agent_id":2,"steps":[{"act":"Wait" "x":1}]}'  # missing comma, balanced
    text = f"[{element(1, WAIT)},{bad},{element(3, SCAN)}]"
    for chunk in (0, 1):
        results, summary = parse(text, [1, 2, 3], chunk)
        assert plans(results) == [
            AgentPlan(agent_id=1, steps=(Wait(),)),
            AgentPlan(agent_id=3, steps=(Scan(),)),
        ]
        [rej] = rejected(results)
        assert (rej.agent_id, rej.cause, rej.raw) == (2, "parse_error", bad)
        assert summary.missing == (2,)
        assert summary.trailing_error is None


def test_mismatched_bracket_is_rejected_and_scanning_recovers() -> None:
    bad = '{"agent_id":2,"steps":[{"act":"Wait"]}'
    results, summary = parse(f"[{bad},{element(3, SCAN)}]", [2, 3])
    assert [(r.agent_id, r.cause) for r in rejected(results)] == [(2, "parse_error")]
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Scan(),))]
    assert summary.trailing_error is None


def test_unclosed_element_followed_by_the_next_one() -> None:
    # Agent 2's step and element never close: the next '{' sits where a key belongs.
    text = f'[{element(1, WAIT)},{{"agent_id":2,"steps":[{{"act":"Wait",{element(3, SCAN)}]'
    for chunk in (0, 1):
        results, summary = parse(text, [1, 2, 3], chunk)
        assert plans(results) == [
            AgentPlan(agent_id=1, steps=(Wait(),)),
            AgentPlan(agent_id=3, steps=(Scan(),)),
        ]
        [rej] = rejected(results)
        assert rej.agent_id == 2 and rej.cause == "parse_error"
        assert rej.raw == '{"agent_id":2,"steps":[{"act":"Wait"'
        assert summary.missing == (2,)


def test_element_missing_its_closing_brackets_before_the_next_element() -> None:
    # Agent 2's steps array and object never close, so agent 3 looks like a step of 2.
    text = f'[{{"agent_id":2,"steps":[{WAIT},{element(3, SCAN)},{element(4, WAIT)}]'
    for chunk in (0, 1, 5):
        results, summary = parse(text, [2, 3, 4], chunk)
        assert [r.agent_id for r in rejected(results)] == [2]
        assert rejected(results)[0].raw == '{"agent_id":2,"steps":[{"act":"Wait"}'
        assert [p.agent_id for p in plans(results)] == [3, 4]
        assert summary.missing == (2,)


def test_agent_id_as_a_value_or_a_later_key_inside_a_step_is_just_chatter() -> None:
    step = '{"act":"Wait","why":"agent_id","agent_id":4,"steps":[]}'
    results, _ = parse(f"[{element(1, step)}]", [1])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]


def test_unterminated_string_in_pretty_printed_output_recovers_at_the_line_end() -> None:
    text = (
        "[\n"
        '  {"agent_id": 1, "steps": [{"act": "Wait", "why": "oops}]},\n'
        f"  {element(2, SCAN)}\n"
        "]"
    )
    results, _ = parse(text, [1, 2])
    assert [(r.agent_id, r.cause) for r in rejected(results)] == [(1, "parse_error")]
    assert plans(results) == [AgentPlan(agent_id=2, steps=(Scan(),))]


def test_wrong_shape_is_a_validation_error_naming_the_field() -> None:
    text = (
        f'[{{"agent_id":1,"steps":[{{"act":"MoveTo","x":1}}]}},'
        f'{{"agent_id":2,"steps":[]}},{{"agent_id":3,"steps":[{{"act":"Fly"}}]}},'
        f'{{"steps":[{WAIT}]}},{{"agent_id":"x","steps":[{WAIT}]}}]'
    )
    results, _ = parse(text)
    assert [(r.agent_id, r.cause) for r in rejected(results)] == [
        (1, "validation_error"),
        (2, "validation_error"),
        (3, "validation_error"),
        (None, "validation_error"),
        (None, "validation_error"),
    ]
    errors = [r.error for r in rejected(results)]
    assert "steps.0.MoveTo.y" in errors[0]
    assert "at least 1 item" in errors[1]
    assert "Fly" in errors[2]
    assert "agent_id" in errors[3]


def test_numeric_string_agent_id_is_accepted_like_pydantic_does() -> None:
    results, _ = parse(f'[{{"agent_id":"4","steps":[{WAIT}]}}]', [4])
    assert plans(results) == [AgentPlan(agent_id=4, steps=(Wait(),))]


# --- ids -----------------------------------------------------------------------------


def test_duplicates_first_wins() -> None:
    text = f"[{element(3, WAIT)},{element(3, SCAN)}]"
    results, summary = parse(text, [3])
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Wait(),))]
    [rej] = rejected(results)
    assert (rej.agent_id, rej.cause, rej.error) == (3, "validation_error", "duplicate agent_id 3")
    assert summary.missing == ()


def test_an_invalid_first_element_does_not_block_a_valid_duplicate() -> None:
    text = f'[{{"agent_id":3,"steps":[]}},{element(3, SCAN)}]'
    results, _ = parse(text, [3])
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Scan(),))]


def test_ids_not_in_the_round_are_rejected_and_missing_ids_reported() -> None:
    text = f"[{element(1, WAIT)},{element(9, WAIT)}]"
    results, summary = parse(text, [4, 1, 2])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
    [rej] = rejected(results)
    assert rej.agent_id == 9 and rej.cause == "validation_error"
    assert rej.error == "unknown agent_id 9 (this round: 1, 2, 4)"
    assert summary.missing == (2, 4)


def test_without_expected_ids_any_id_is_accepted_and_none_missing() -> None:
    results, summary = parse(f"[{element(77, WAIT)}]", None)
    assert plans(results) == [AgentPlan(agent_id=77, steps=(Wait(),))]
    assert summary.missing == ()


# --- truncation ------------------------------------------------------------------------


def test_truncated_last_element_recovers_its_complete_steps() -> None:
    text = f'{{"plans":[{element(1, WAIT)},{{"agent_id":2,"steps":[{WAIT},{SCAN},{{"act":"Mo'
    for chunk in (0, 1):
        results, summary = parse(text, [1, 2, 3], chunk)
        assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
        assert summary.partial is not None
        assert summary.partial.partial is True
        assert summary.partial.plan == AgentPlan(agent_id=2, steps=(Wait(), Scan()))
        assert summary.partial.raw == text[text.index('{"agent_id":2') :]
        assert summary.missing == (3,)
        assert summary.rejected == ()
        assert summary.trailing_error == "the response ended inside the JSON (truncated)"


def test_truncated_element_with_id_after_steps_is_recovered() -> None:
    text = f'[{{"steps":[{WAIT},{{"act":"Reload"}}],"agent_id":7,"x":'
    _, summary = parse(text, [7])
    assert summary.partial is not None
    assert summary.partial.plan == AgentPlan(agent_id=7, steps=(Wait(), Reload()))
    assert summary.missing == ()


@pytest.mark.parametrize(
    ("text", "agent_id"),
    [
        ('[{"agent_id":2,"steps":[{"act":"Wa', 2),  # no step completed
        ('[{"agent_id":2,"steps":[', 2),
        ('[{"agent_id":2', None),  # the id itself may still be growing (2 -> 23)
        ('[{"agent_id', None),
    ],
)
def test_truncated_element_without_a_step_and_an_id_is_rejected(
    text: str, agent_id: int | None
) -> None:
    results, summary = parse(text, [2])
    assert results == []
    assert summary.partial is None
    [rej] = summary.rejected
    assert (rej.agent_id, rej.cause) == (agent_id, "parse_error")
    assert rej.raw == text[1:]
    assert summary.missing == (2,)


def test_truncated_partial_still_obeys_duplicate_and_unknown_rules() -> None:
    _, summary = parse(f'[{element(2, WAIT)},{{"agent_id":2,"steps":[{SCAN},', [2])
    assert summary.partial is None
    assert [r.error for r in summary.rejected] == ["duplicate agent_id 2"]


def test_truncated_after_the_last_element_is_clean_but_reported() -> None:
    results, summary = parse(f'{{"plans":[{element(1, WAIT)}', [1])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
    assert summary.partial is None and summary.rejected == ()
    assert summary.trailing_error == "the response ended inside the JSON (truncated)"


# --- max steps -----------------------------------------------------------------------


def test_too_many_steps_keeps_the_first_max_steps() -> None:
    steps = [WAIT] * 3 + [SCAN] * 7 + ['{"act":"Nope"}']
    results, _ = parse(f"[{element(1, *steps)}]", [1])
    [result] = results
    assert isinstance(result, ParsedPlan)
    assert result.plan.steps == (Wait(), Wait(), Wait(), Scan(), Scan(), Scan(), Scan(), Scan())
    assert result.dropped_steps == 3


def test_smaller_max_steps() -> None:
    results, _ = parse(f"[{element(1, WAIT, SCAN, WAIT)}]", [1], max_steps=2)
    [result] = results
    assert isinstance(result, ParsedPlan)
    assert result.plan.steps == (Wait(), Scan()) and result.dropped_steps == 1


@pytest.mark.parametrize("bad", [0, MAX_STEPS + 1])
def test_max_steps_must_be_within_the_schema_bound(bad: int) -> None:
    with pytest.raises(ValueError):
        PlanStreamParser(max_steps=bad)


# --- linear work -------------------------------------------------------------------------


def _batch_text(count: int) -> str:
    elements = [
        {"agent_id": i, "why": '}{"[]\\ ' * 3, "steps": [{"act": "MoveTo", "x": i, "y": 2}] * 3}
        for i in range(count)
    ]
    return "Here you go:\n```json\n" + json.dumps({"plans": elements}) + "\n```"


def _work(text: str, chunk: int) -> int:
    parser = PlanStreamParser(range(len(text)))
    for start in range(0, len(text), chunk):
        parser.feed(text[start : start + chunk])
    parser.finish()
    return parser.work


def test_work_is_linear_in_the_text() -> None:
    small, large = _batch_text(20), _batch_text(200)
    small_work, large_work = _work(small, 4), _work(large, 4)
    # Each character is scanned once and each element decoded once: 10x the text
    # costs about 10x the work (a re-parse per chunk would be about 100x).
    assert 9 * small_work <= large_work <= 11 * small_work
    assert large_work <= 2 * len(large)
    # Chunk size does not change the work at all: nothing is ever re-scanned.
    assert _work(large, 1) == _work(large, 4) == _work(large, len(large))
