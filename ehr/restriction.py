"""Patient restriction expressions in CEL (Common Expression Language): compiled and checked when
saved, evaluated by the runtime. Never Python eval."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

# The facts about a patient an expression may use, with a sample of values that covers the
# boundaries administrators write rules around (newborn, teen, adult, elderly).
PATIENT_FACTS: dict[str, type] = {"age": int}
_SAMPLES: tuple[dict[str, Any], ...] = tuple(
    {"age": age} for age in (0, 1, 12, 13, 15, 17, 18, 21, 26, 65, 120)
)


class RestrictionError(ValueError):
    """The expression is not a valid restriction rule; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Restriction:
    """A checked expression, ready to evaluate."""

    program: Any

    def is_restricted(self, **facts: Any) -> bool:
        """Evaluate for a patient; raises RestrictionError if the expression fails for these
        facts (division by zero, say) or yields something other than a boolean."""
        try:
            result = self.program.execute(facts)
        except Exception as error:  # the CEL runtime raises TypeError, RuntimeError, ValueError
            # Variables are checked at compile time, so an undefined name here is a function.
            code = (
                "UNKNOWN_FUNCTION"
                if "Undefined variable or function" in str(error)
                else ("EVALUATION_ERROR")
            )
            raise RestrictionError(code, str(error)) from None
        if not isinstance(result, bool):
            raise RestrictionError("NOT_BOOLEAN", "the expression did not produce true or false")
        return result


_MACRO = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")
_SYNTAX_ERROR = re.compile(r"<input>:(\d+):(\d+): Syntax error: (.*)")


def _syntax_message(parser_output: str) -> str:
    """The parser's findings (where, and what it expected) without the excerpts of the source it
    quotes: the messages go back to the client and into logs."""
    findings = []
    for match in _SYNTAX_ERROR.finditer(parser_output):
        line, column, detail = match.groups()
        what, _, expecting = detail.partition(" expecting ")
        what = what.split("'", 1)[0].rstrip(" :") or "unexpected input"
        finding = f"line {line}, column {column}: {what}"
        findings.append(f"{finding}, expecting {expecting}" if expecting else finding)
    return "Syntax error at " + "; ".join(findings) if findings else "Syntax error"


@lru_cache(maxsize=1024)
def compile_restriction(source: str) -> Restriction:
    """Compile ``source`` and check it over the patient facts.

    The CEL implementation used here has a parser but no static type checker. Names are checked
    statically; types are checked by evaluating the expression over a sample of every fact's
    domain: one that applies an operator to the wrong types, or yields anything but a boolean for
    a sample, is refused. That cannot prove every age works (``age / (age - 42) > 0`` fails only
    at 42), so evaluation reports such failures as data too. Raises RestrictionError.
    """
    if _MACRO.search(source):
        # Comprehensions loop; nested ones over literal lists can keep the process busy for
        # seconds. A rule about a patient's age needs none, and without them evaluation is
        # linear in the (capped) length of the expression.
        raise RestrictionError(
            "UNSUPPORTED_MACRO", "comprehension macros (all, exists, map, filter) are not allowed"
        )
    try:
        program = cel.compile(source)
    except ValueError as error:
        raise RestrictionError("INVALID_EXPRESSION", _syntax_message(str(error))) from None
    unknown = sorted(set(program.variables()) - set(PATIENT_FACTS))
    if unknown:
        raise RestrictionError(
            "UNKNOWN_VARIABLE",
            f"unknown name(s) {', '.join(unknown)}; the patient facts are "
            f"{', '.join(f'{name}: {kind.__name__}' for name, kind in PATIENT_FACTS.items())}",
        )
    restriction = Restriction(program)
    for sample in _SAMPLES:
        try:
            restriction.is_restricted(**sample)
        except RestrictionError as error:
            if error.code == "EVALUATION_ERROR":  # at save time, a type error is the likely cause
                raise RestrictionError("TYPE_ERROR", error.message) from None
            raise
    return restriction
