"""JSON from clients, refused before it is parsed when it nests too deep.

Python's json parser recurses once per nested array or object: a body of a few kilobytes of
brackets raises RecursionError, and code that walks the parsed value (coercing GraphQL variables)
recurses again. So the depth is found first, by a pass that cannot recurse and runs in C but for
one addition per bracket: escapes and strings are cut out (brackets inside strings do not nest),
every other byte but the brackets is dropped, and the deepest point is the largest running sum
of +1 per opening and -1 per closing bracket.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

_KEEP = b"[]{}"
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_STEPS = bytes.maketrans(_KEEP, b"\x01\xff\x01\xff")  # +1 and -1 as signed bytes


class JsonTooDeep(ValueError):
    """The JSON nests arrays and objects deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def loads_bounded(text: str | bytes, *, max_depth: int = 64) -> Any:
    """``json.loads(text)``, unless arrays and objects nest deeper than ``max_depth``: then
    JsonTooDeep. Malformed JSON raises json.JSONDecodeError, as json.loads does."""
    if isinstance(text, bytes):
        # Decoded as json.loads decodes bytes (UTF-8, -16 or -32), so that the scan sees the
        # brackets the parser will see.
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if _depth(text.encode("utf-8", "surrogatepass")) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(text)


def _depth(raw: bytes) -> int:
    # Outside strings a backslash is a syntax error, so every backslash pair is an escape: with
    # escaped backslashes gone first, a backslash left before a quote escapes it.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Between quotes alternate outside and inside; an unterminated string's tail is dropped
    # with the other insides, as the parser reads no bracket in it either.
    outside = b"".join(unescaped.split(b'"')[::2])
    steps = outside.translate(None, _DROP).translate(_STEPS)
    # The parser fails at the first closing bracket too many, so nothing after it matters;
    # a maximum over the whole is at least as deep as any prefix before it.
    return max(accumulate(memoryview(steps).cast("b")), default=0)
