"""JSON from clients (and from servers the gateway calls), refused when nested deeper than a
limit before it is decoded.

Python's json module decodes nested arrays and objects by recursion: a document nested a few
thousand levels deep raises RecursionError (an unexpected exception, a traceback in the log) and
anything that walks the decoded value recurses again. The depth is therefore measured first, by a
scan that cannot recurse: strings (whose brackets do not count) are stepped over, and the depth
is the highest running sum of the brackets that remain.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

DEFAULT_MAX_DEPTH = 64

# JSON strings (quotes, and anything escaped inside them: the "unrolled loop" form, which the
# regex engine runs without backtracking), whose brackets do not count; then everything else but
# brackets.
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTooDeep(ValueError):
    """The JSON nests arrays and objects deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def loads_bounded(text: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads(text)``, after checking that arrays and objects nest at most ``max_depth``
    deep (JsonTooDeep otherwise). Invalid JSON raises json.JSONDecodeError as usual, and so do
    bytes that are not valid UTF-8, -16 or -32 and numbers too long for Python to read."""
    if isinstance(text, bytes | bytearray):
        # As json.loads reads bytes: UTF-8, -16 or -32, told apart by the first bytes.
        try:
            text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
        except UnicodeDecodeError:
            raise json.JSONDecodeError("the JSON is not valid UTF-8, -16 or -32", "", 0) from None
    if _deeper_than(text, max_depth):
        raise JsonTooDeep(max_depth)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # Valid JSON that Python will not read: an integer of more digits than
        # sys.get_int_max_str_digits() allows. The client's mistake, like any invalid JSON.
        raise json.JSONDecodeError("a number in the JSON is too long", text, 0) from None


def _deeper_than(text: str, max_depth: int) -> bool:
    if text.count("[") + text.count("{") <= max_depth:
        return False  # too few brackets to nest that deep, wherever they are: no scan needed
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    # Every step runs in C (regular expressions, map, accumulate, max): no Python loop per
    # character and no recursion.
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth
