"""What text log lines and the commands' output escape: every character that ends a line, makes
one read as several, reorders what a terminal shows or hides in it (Unicode's categories Cc, Cf,
Zl, Zp and Cs), so that text from a client or the database shows as what it is. Everything else,
accents and emoji included, is written as it is."""

from __future__ import annotations

import logging
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_gateway.server.logs import TextFormatter, escape_controls

UNTIMED = settings(deadline=None)
ESCAPED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
EVERY_ESCAPED = [
    chr(code)
    for code in range(sys.maxunicode + 1)
    if unicodedata.category(chr(code)) in ESCAPED_CATEGORIES
]


def _escape_of(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@pytest.mark.parametrize(
    "char",
    [
        pytest.param("\n", id="newline"),
        pytest.param("\u0085", id="next line"),
        pytest.param("\u2028", id="line separator"),
        pytest.param("\u061c", id="arabic letter mark"),
        pytest.param("\u200f", id="right-to-left mark"),
        pytest.param("\u202e", id="right-to-left override"),
        pytest.param("\u2067", id="right-to-left isolate"),
        pytest.param("\u200b", id="zero-width space"),
        pytest.param("\ufeff", id="byte order mark"),
        pytest.param("\U000e0041", id="tag latin capital a"),
        pytest.param("\ud800", id="lone surrogate"),
    ],
)
def test_a_character_that_reorders_breaks_or_hides_text_is_escaped(char: str) -> None:
    printed = escape_controls(f"tenant clinic-a{char}: intact")

    assert printed == f"tenant clinic-a{_escape_of(char)}: intact"


def test_every_character_of_the_escaped_categories_is_escaped_in_this_unicode_version() -> None:
    """The characters below U+10000 are listed in the pattern: a newer Unicode's (a newer Python's)
    format characters fail here until they are listed."""
    text = "".join(EVERY_ESCAPED)

    assert escape_controls(text) == "".join(_escape_of(char) for char in EVERY_ESCAPED)


@UNTIMED
@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs"))))
def test_any_other_text_is_written_as_it_is(text: str) -> None:
    assert escape_controls(text) == text


def test_a_text_log_line_escapes_what_the_message_carried() -> None:
    record = logging.LogRecord(
        "ehr_gateway.security", logging.WARNING, __file__, 1,
        "tenant %s has no chain link", ("clinic-a\u061c\u202e\nforged",), None,
    )  # fmt: skip
    record.request_id = "-"

    line = TextFormatter().format(record)

    assert "tenant clinic-a\\u061c\\u202e\\x0aforged has no chain link" in line
    assert "\n" not in line
