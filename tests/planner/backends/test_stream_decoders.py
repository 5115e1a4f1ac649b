"""SSE and NDJSON line decoders: line ends, fields, comments, and splits at every index."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import planner.stream
from planner.backends.framing import NDJSONDecoder, SSEDecoder, SSEEvent

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SSE_FIXTURES = sorted(FIXTURES.glob("*.sse"))


def decode_sse(*chunks: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.finish()


def decode_ndjson(*chunks: str) -> list[str]:
    decoder = NDJSONDecoder()
    lines: list[str] = []
    for chunk in chunks:
        lines += decoder.feed(chunk)
    return lines + decoder.finish()


# --- SSE -------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_every_line_ending_dispatches_the_same_events(newline: str) -> None:
    text = f"event: plan{newline}data: a{newline}data: b{newline}{newline}data: c{newline}{newline}"
    assert decode_sse(text) == [
        SSEEvent(event="plan", data="a\nb"),
        SSEEvent(event="message", data="c"),
    ]


def test_sse_crlf_split_between_chunks_is_one_line_end() -> None:
    # If the CR and LF were two line ends, the blank line would dispatch "a" early
    # and the "data: b" would become a second event.
    assert decode_sse("data: a\r", "\ndata: b\r", "\n\r", "\n") == [SSEEvent(data="a\nb")]


def test_sse_lone_cr_at_chunk_end_followed_by_data_is_a_line_end() -> None:
    assert decode_sse("data: a\r", "data: b\r", "\r") == [SSEEvent(data="a\nb")]


def test_sse_mixed_line_endings() -> None:
    assert decode_sse("data: 1\r\n\ndata: 2\r\rdata: 3\n\r\n") == [
        SSEEvent(data="1"),
        SSEEvent(data="2"),
        SSEEvent(data="3"),
    ]


def test_sse_does_not_split_on_other_unicode_line_breaks() -> None:
    payload = "a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g"
    assert decode_sse(f"data: {payload}\n\n") == [SSEEvent(data=payload)]


def test_sse_comments_are_skipped() -> None:
    text = ": keep-alive\n\ndata: x\n: inside an event\ndata: y\n\n:\n\n"
    assert decode_sse(text) == [SSEEvent(data="x\ny")]


def test_sse_only_one_leading_space_is_stripped() -> None:
    assert decode_sse("data:  two\n\ndata:none\n\ndata\n\n") == [
        SSEEvent(data=" two"),
        SSEEvent(data="none"),
        SSEEvent(data=""),
    ]


def test_sse_blank_line_without_data_dispatches_nothing_and_resets_event_type() -> None:
    assert decode_sse("event: ping\n\ndata: x\n\n") == [SSEEvent(event="message", data="x")]


def test_sse_id_persists_and_retry_and_unknown_fields_are_ignored() -> None:
    text = "id: 7\nretry: 100\nfoo: bar\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\0y\ndata: d\n\n"
    assert decode_sse(text) == [
        SSEEvent(data="a", id="7"),
        SSEEvent(data="b", id="7"),
        SSEEvent(data="c", id=""),
        SSEEvent(data="d", id=""),
    ]


def test_sse_value_may_contain_colons() -> None:
    assert decode_sse('data: {"a": "b:c"}\n\n') == [SSEEvent(data='{"a": "b:c"}')]


def test_sse_unterminated_event_is_discarded_at_finish() -> None:
    decoder = SSEDecoder()
    assert decoder.feed("data: done\n\ndata: half") == [SSEEvent(data="done")]
    assert decoder.finish() == []


def test_sse_trailing_cr_is_resolved_by_finish() -> None:
    decoder = SSEDecoder()
    assert decoder.feed("data: x\r") == []
    assert decoder.feed("\r") == [SSEEvent(data="x")]
    assert decoder.finish() == []


def test_sse_byte_order_mark_is_dropped() -> None:
    assert decode_sse("\ufeffdata: x\n\n") == [SSEEvent(data="x")]


def test_sse_one_character_at_a_time() -> None:
    text = 'event: e\r\ndata: {"k": 1}\r\n\r\n: c\rdata: 2\r\r'
    assert (
        decode_sse(*text)
        == decode_sse(text)
        == [
            SSEEvent(event="e", data='{"k": 1}'),
            SSEEvent(data="2"),
        ]
    )


def test_sse_long_line_in_tiny_chunks_stays_linear() -> None:
    # 1-char chunks of one 200k-char line: each piece is kept once and joined once.
    payload = "x" * 200_000
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for char in f"data: {payload}\n\n":
        events += decoder.feed(char)
    assert events == [SSEEvent(data=payload)]


def _event_blocks(text: str) -> list[str]:
    """The fixture cut after each blank line (each block is one whole event)."""
    blocks = []
    start = 0
    while (end := text.find("\n\n", start)) >= 0:
        blocks.append(text[start : end + 2])
        start = end + 2
    assert start == len(text), "fixture should end with a blank line"
    return blocks


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.name)
def test_sse_fixture_split_at_every_index(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    whole = decode_sse(text)
    assert whole[-1].data == "[DONE]"
    assert all(json.loads(e.data)["choices"] for e in whole[:-1])
    # No `id:` lines, so the decoder's state after each blank line is its initial
    # state: splitting the file at index k is the same as splitting the event block
    # holding k at the same place. That lets every index be tested in linear time.
    assert "\nid" not in text and not text.startswith("id")
    blocks = _event_blocks(text)
    assert len(blocks) == len(whole)
    for block, expected in zip(blocks, whole, strict=True):
        for k in range(len(block) + 1):
            assert decode_sse(block[:k], block[k:]) == [expected], (block, k)
    # And a spread of real whole-file splits, for good measure.
    for k in [*range(0, 600), *range(600, len(text) - 600, 97), *range(len(text) - 600, len(text))]:
        assert decode_sse(text[:k], text[k:]) == whole, k


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.name)
def test_sse_fixture_with_crlf_and_cr_line_ends(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    whole = decode_sse(text)
    assert decode_sse(text.replace("\n", "\r\n")) == whole
    assert decode_sse(text.replace("\n", "\r")) == whole
    assert decode_sse(*text.replace("\n", "\r\n")) == whole


# --- NDJSON ----------------------------------------------------------------------


def test_ndjson_complete_lines_only() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed('{"a":1}\n{"b"') == ['{"a":1}']
    assert decoder.feed(":2}\n") == ['{"b":2}']
    assert decoder.finish() == []


def test_ndjson_blank_lines_skipped_and_crlf_stripped() -> None:
    assert decode_ndjson('\n  \n{"a":1}\r\n\r\n\t\n{"b":2}\n') == ['{"a":1}', '{"b":2}']


def test_ndjson_last_line_without_newline_comes_from_finish() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed('{"a":1}\n{"done":true}') == ['{"a":1}']
    assert decoder.finish() == ['{"done":true}']
    assert decoder.finish() == []


def test_ndjson_does_not_split_on_other_line_breaks() -> None:
    line = json.dumps({"content": "a\u2028b\x85c\rd"}, ensure_ascii=False)
    assert decode_ndjson(line + "\n") == [line]


def test_ndjson_split_at_every_index() -> None:
    lines = [json.dumps({"message": {"content": c}, "done": False}) for c in ["[{", '"a\\n"', "}]"]]
    text = "\n".join(lines) + "\r\n" + '{"done":true}\n'
    expected = [*lines, '{"done":true}']
    assert decode_ndjson(text) == expected
    for k in range(len(text) + 1):
        assert decode_ndjson(text[:k], text[k:]) == expected, k
    assert decode_ndjson(*text) == expected


# --------------------------------------------------------------------------- where they live

ROOT = Path(__file__).resolve().parents[3]


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_framing_decoders_are_pure() -> None:
    """Like the plan parser they replaced a part of: no I/O, no clock, no planner state."""
    imported = _imported_modules(ROOT / "planner" / "backends" / "framing.py")
    assert imported <= {"__future__", "re", "dataclasses"}, imported


def test_the_framing_decoders_have_one_home_and_only_backends_use_them() -> None:
    assert not hasattr(planner.stream, "SSEDecoder")
    assert not hasattr(planner.stream, "NDJSONDecoder")
    assert not hasattr(planner.stream, "SSEEvent")
    users = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "planner").rglob("*.py")
        if "planner.backends.framing" in _imported_modules(path)
    )
    assert users == ["planner/backends/ollama.py", "planner/backends/openai.py"]
