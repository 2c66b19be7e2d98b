"""Patient restriction expressions in CEL (Common Expression Language): decided on a real parse,
compiled and checked when saved, evaluated by the runtime. Never Python eval.

What a rule may contain is decided on a CEL parse tree (cel-python's Lark grammar, parsed LALR:
an explicit stack, linear in the input, no recursion), walked against an allow-list of the shapes
a rule about a patient's age needs. The CEL runtime is then given not the submitted text but the
checked tree written back out, fully parenthesised and without comments, so it can only run what
the walk allowed: no difference between the two parsers (comments, line ends, string escapes) can
smuggle anything past it. Every allowed shape evaluates in time linear in its size, and the size
and depth are capped, which bounds the cost of checking, compiling and evaluating a rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final, cast

import cel
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

# The facts about a patient an expression may use, with a sample of values that covers the
# boundaries administrators write rules around (newborn, teen, adult, elderly).
PATIENT_FACTS: dict[str, type] = {"age": int}
_SAMPLES: tuple[dict[str, Any], ...] = tuple(
    {"age": age} for age in (0, 1, 12, 13, 15, 17, 18, 21, 26, 65, 120)
)

# A rule is a handful of comparisons. The limits leave room for an `in` list of ninety ages or
# a chain of fifty comparisons while bounding the work: the parser stops reading at MAX_TOKENS
# (its cost is per token, whatever the length cap; bench/restriction_cost.py measures it), which
# also bounds the tree (every node has a token of its own: a literal, a name, an operator, `?`,
# `[`), and MAX_DEPTH keeps the written-out program well inside the CEL runtime parser's own
# nesting limit (it refuses about 96 levels of parentheses).
MAX_TOKENS: Final = 200
MAX_DEPTH: Final = 64

# CEL's operator precedence, loosest first, to write the checked tree back out with only the
# parentheses it needs: each one costs the CEL runtime's parser a lookahead to its match.
_TERNARY, _OR, _AND, _RELATION, _ADDITION, _MULTIPLICATION, _UNARY, _PRIMARY = range(8)
_LEVELS: Final = {
    "||": _OR,
    "&&": _AND,
    **dict.fromkeys(("<", "<=", ">", ">=", "==", "!=", "in"), _RELATION),
    "+": _ADDITION,
    "-": _ADDITION,
    **dict.fromkeys("*/%", _MULTIPLICATION),
}

MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter", "has"})
_ALLOWED: Final = (
    "a rule may use age, number, true, false and null literals, comparisons, arithmetic, "
    "&&, ||, !, ?: and `in` over a list of literals"
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
        except Exception as error:  # the CEL runtime raises TypeError, ValueError, ZeroDivision
            raise RestrictionError("EVALUATION_ERROR", str(error)) from None
        if not isinstance(result, bool):
            raise RestrictionError("NOT_BOOLEAN", "the expression did not produce true or false")
        return result


@dataclass(frozen=True, slots=True)
class _Node:
    """A parsed sub-expression: its canonical CEL text and that text's precedence, its depth,
    and the reason (code, message) it may not be part of a rule, if any."""

    text: str
    depth: int
    refusal: tuple[str, str] | None = None
    level: int = _PRIMARY
    is_list: bool = False
    is_literal: bool = False
    is_number: bool = False


def _name(token: Token) -> str:
    # Names go back to the client and into logs: keep them short.
    name = str(token)
    return name if len(name) <= 32 else name[:32] + "…"


def _refused(code: str, what: str) -> tuple[str, str]:
    return code, f"{what} is not allowed; {_ALLOWED}"


_RANKS: Final = {"UNSUPPORTED_MACRO": 3, "UNSUPPORTED_EXPRESSION": 2, "INVALID_EXPRESSION": 1}


def _rank(refusal: tuple[str, str]) -> int:
    return _RANKS.get(refusal[0], 0)


def _within_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise RestrictionError("TOO_COMPLEX", f"the expression nests deeper than {MAX_DEPTH}")


def _node(
    text: str,
    children: tuple[_Node, ...],
    refusal: tuple[str, str] | None = None,
    *,
    outermost: bool = False,
    level: int = _PRIMARY,
) -> _Node:
    """A node over ``children`` and the reason it is refused, if any: the most telling one
    (a macro before another call, a call before an unknown name) so `[1].map(x, x)[0]` is
    reported for the macro, not for the indexing or the loop variable; between equals, a call's
    own (``outermost``) before its arguments'. Raises as soon as the depth limit is passed, so
    no later step (nor the CEL runtime) sees an expression beyond it."""
    depth = 1 + max((child.depth for child in children), default=0)
    _within_depth(depth)
    inner = [child.refusal for child in children]
    found = [refusal, *inner] if outermost else [*inner, refusal]
    ranked = [candidate for candidate in found if candidate]
    return _Node(text, depth, max(ranked, key=_rank) if ranked else None, level)


def _at(node: _Node, level: int) -> str:
    """``node``'s text where an operand of precedence ``level`` at least is expected."""
    return node.text if node.level >= level else f"({node.text})"


def _operand(node: _Node) -> tuple[str, str] | None:
    return _refused("UNSUPPORTED_EXPRESSION", "a list outside `in`") if node.is_list else None


def _binary(op: str, left: _Node, right: _Node) -> _Node:
    refusal = _operand(left) or _operand(right)
    if op == "in":
        refusal = _operand(left) or (
            None
            if right.is_list
            else _refused("UNSUPPORTED_EXPRESSION", "`in` over anything but a list of literals")
        )
    level = _LEVELS[op]
    # Left-associative: a right operand at the same level needs its parentheses.
    text = f"{_at(left, level)} {op} {_at(right, level + 1)}"
    return _node(text, (left, right), refusal, level=level)


def _literal(token: Token) -> _Node:
    text = str(token)
    kind = token.type
    refusal: tuple[str, str] | None = None
    number = kind in ("INT_LIT", "FLOAT_LIT")
    if kind == "INT_LIT":
        text = str(int(text, 16) if "x" in text else int(text, 10))
    elif kind == "FLOAT_LIT":
        value = float(text)
        if not math.isfinite(value):
            return _Node(text, 1, ("INVALID_EXPRESSION", "a number is out of range"))
        text = repr(value)
    elif kind not in ("BOOL_LIT", "NULL_LIT"):
        what = {"UINT_LIT": "an unsigned integer literal", "BYTES_LIT": "a bytes literal"}
        refusal = _refused("UNSUPPORTED_EXPRESSION", what.get(kind, "a string literal"))
    return _Node(text, 1, refusal, is_literal=True, is_number=number)


def _args(children: list[Any], start: int) -> tuple[_Node, ...]:
    return tuple(children[start]) if len(children) > start else ()


def _pending(op: str) -> Callable[[Any, list[Any]], tuple[str, _Node]]:
    """The left operand and the operator of a binary rule, which the grammar reduces before
    the right operand is read."""
    return lambda self, c: (op, c[0])


class _Rules:
    """The allow-list: one method per rule of the CEL grammar, called by the LALR parser as it
    reduces (bottom-up, no recursion), returning a _Node."""

    def expr(self, c: list[Any]) -> _Node:
        if len(c) == 1:
            return c[0]  # type: ignore[no-any-return]
        test, then, otherwise = c
        refusal = _operand(test) or _operand(then) or _operand(otherwise)
        text = f"{_at(test, _OR)} ? {_at(then, _OR)} : {otherwise.text}"
        return _node(text, tuple(c), refusal, level=_TERNARY)

    def conditionalor(self, c: list[Any]) -> _Node:
        return c[0] if len(c) == 1 else _binary("||", c[0], c[1])

    def conditionaland(self, c: list[Any]) -> _Node:
        return c[0] if len(c) == 1 else _binary("&&", c[0], c[1])

    def _chain(self, c: list[Any]) -> _Node:
        if len(c) == 1:
            return c[0]  # type: ignore[no-any-return]
        (op, left), right = c
        return _binary(op, left, right)

    relation = addition = multiplication = _chain

    relation_lt = _pending("<")
    relation_le = _pending("<=")
    relation_gt = _pending(">")
    relation_ge = _pending(">=")
    relation_eq = _pending("==")
    relation_ne = _pending("!=")
    relation_in = _pending("in")
    addition_add = _pending("+")
    addition_sub = _pending("-")
    multiplication_mul = _pending("*")
    multiplication_div = _pending("/")
    multiplication_mod = _pending("%")

    def unary(self, c: list[Any]) -> _Node:
        if len(c) == 1:
            return c[0]  # type: ignore[no-any-return]
        op, operand = c
        inner = _at(operand, _UNARY)
        # `- -1` is not `--1`; a space keeps the operator and a negative literal apart.
        node = _node(f"{op} {inner}", (operand,), _operand(operand), level=_UNARY)
        if op == "-" and operand.is_number:  # `- 1` is a number as much as `-1` is
            return replace(node, is_literal=True, is_number=True)
        return node

    def unary_not(self, c: list[Any]) -> str:
        return "!"

    def unary_neg(self, c: list[Any]) -> str:
        return "-"

    def member(self, c: list[Any]) -> _Node:
        return c[0]  # type: ignore[no-any-return]

    primary = member

    def member_dot(self, c: list[Any]) -> _Node:
        what = f"member access .{_name(c[1])}"
        return _node("", (c[0],), _refused("UNSUPPORTED_EXPRESSION", what), outermost=True)

    def member_dot_arg(self, c: list[Any]) -> _Node:
        return self._call(c[1], (c[0], *_args(c, 2)), method=True)

    def member_index(self, c: list[Any]) -> _Node:
        refusal = _refused("UNSUPPORTED_EXPRESSION", "indexing")
        return _node("", tuple(c), refusal, outermost=True)

    def member_object(self, c: list[Any]) -> _Node:
        what = "message construction"
        refusal = _refused("UNSUPPORTED_EXPRESSION", what)
        return _node("", (c[0], *_args(c, 1)), refusal, outermost=True)

    def dot_ident_arg(self, c: list[Any]) -> _Node:
        return self._call(c[0], _args(c, 1))

    def ident_arg(self, c: list[Any]) -> _Node:
        return self._call(c[0], _args(c, 1))

    def _call(self, name: Token, args: tuple[_Node, ...], *, method: bool = False) -> _Node:
        spelled = f".{_name(name)}()" if method else f"{_name(name)}()"
        refusal = (
            _refused("UNSUPPORTED_MACRO", f"the macro {spelled}")
            if str(name) in MACROS
            else _refused(
                "UNSUPPORTED_EXPRESSION", f"a {'method' if method else 'function'} call {spelled}"
            )
        )
        return _node("", args, refusal, outermost=True)

    def dot_ident(self, c: list[Any]) -> _Node:
        return _Node("", 1, _refused("UNSUPPORTED_EXPRESSION", f"the name .{_name(c[0])}"))

    def ident(self, c: list[Any]) -> _Node:
        name = str(c[0])
        if name in PATIENT_FACTS:
            return _Node(name, 1)
        facts = ", ".join(f"{fact}: {kind.__name__}" for fact, kind in PATIENT_FACTS.items())
        message = f"unknown name {_name(c[0])}; the patient facts are {facts}"
        return _Node("", 1, ("UNKNOWN_VARIABLE", message))

    def paren_expr(self, c: list[Any]) -> _Node:
        # Parentheses add nothing to the program but do count toward the nesting limit.
        inner: _Node = c[0]
        _within_depth(inner.depth + 1)
        return replace(inner, depth=inner.depth + 1)

    def list_lit(self, c: list[Any]) -> _Node:
        items = _args(c, 0)
        refusal = next(
            (
                _refused("UNSUPPORTED_EXPRESSION", "a list item other than a literal")
                for item in items
                if not item.is_literal
            ),
            None,
        )
        node = _node("[" + ", ".join(item.text for item in items) + "]", items, refusal)
        return replace(node, is_list=True)

    def map_lit(self, c: list[Any]) -> _Node:
        refusal = _refused("UNSUPPORTED_EXPRESSION", "a map")
        return _node("", _args(c, 0), refusal, outermost=True)

    def exprlist(self, c: list[Any]) -> tuple[_Node, ...]:
        return tuple(c)

    def fieldinits(self, c: list[Any]) -> tuple[_Node, ...]:
        return tuple(item for item in c if isinstance(item, _Node))

    mapinits = exprlist

    def literal(self, c: list[Any]) -> _Node:
        return _literal(c[0])


def _grammar() -> str:
    """cel-python's CEL grammar, with its string terminals replaced: as shipped they are
    ambiguous regular expressions (an escape can also match as two single characters), and a
    string of 18 backslash pairs with no closing quote takes seconds to fail to match.
    The replacements match each character one way only, so they succeed or fail in linear time;
    string literals are refused by the walk in any case."""
    spec = find_spec("celpy")  # locates the package without importing its evaluator
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cel-python is not installed")
    shipped = (Path(spec.submodule_search_locations[0]) / "cel.lark").read_text(encoding="utf-8")
    return (
        shipped
        + r"""
%override STRING_LIT: /[rR]?"(?:[^"\\\n\r]|\\.)*"/ | /[rR]?'(?:[^'\\\n\r]|\\.)*'/
%override MLSTRING_LIT: /[rR]?"""
        + '"""'
        + r"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""
        + '"""'
        + r"""/
    | /[rR]?'''(?:[^'\\]|\\[\s\S]|'(?!''))*'''/
"""
    )


def _ambiguous_literals(token: Token) -> Token:
    # As cel-python does: true and false lex as identifiers first.
    return Token("BOOL_LIT", token.value) if token.value in ("true", "false") else token


# Built once, when the module is imported (well under a second), never on a request.
_PARSER: Final = Lark(
    _grammar(),
    parser="lalr",
    start="expr",
    g_regex_flags=re.M,
    lexer_callbacks={"IDENT": _ambiguous_literals},
    maybe_placeholders=False,
    priority="invert",
    transformer=_Rules(),
)


def _syntax_message(error: UnexpectedInput) -> str:
    """Where the parse stopped and on what kind of input, without quoting the source: the
    messages go back to the client and into logs."""
    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        return "Syntax error: unexpected end of input"
    what = "character" if isinstance(error, UnexpectedCharacters) else "token"
    return f"Syntax error at line {error.line}, column {error.column}: unexpected {what}"


def check(source: str) -> str:
    """Parse ``source`` and walk it against the allow-list; return the CEL program to run (the
    checked tree written out). Raises RestrictionError."""
    try:
        parsing = _PARSER.parse_interactive(source)
        for count, _token in enumerate(parsing.iter_parse(), 1):
            if count > MAX_TOKENS:
                raise RestrictionError(
                    "TOO_COMPLEX", f"the expression has more than {MAX_TOKENS} tokens"
                )
        node = cast(_Node, parsing.resume_parse())  # type: ignore[no-untyped-call]
    except UnexpectedInput as error:
        raise RestrictionError("INVALID_EXPRESSION", _syntax_message(error)) from None
    refusal = node.refusal or _operand(node)
    if refusal:
        raise RestrictionError(*refusal)
    return node.text


@lru_cache(maxsize=1024)
def compile_restriction(source: str) -> Restriction:
    """Check ``source`` on its parse, compile the checked program and check it over the patient
    facts.

    The CEL implementation used here has no static type checker. Types are checked by
    evaluating the expression over a sample of every fact's domain: one that applies an operator
    to the wrong types, or yields anything but a boolean for a sample, is refused. That cannot
    prove every age works (``age / (age - 42) > 0`` fails only at 42), so evaluation reports such
    failures as data too. Raises RestrictionError.
    """
    program_text = check(source)
    try:
        program = cel.compile(program_text)
    except ValueError as error:
        # Out-of-range integer literals are the runtime parser's to find.
        found = re.findall(r"<input>:\d+:\d+: ([^\n']*)", str(error))
        detail = f": {found[0].strip()}" if found else ""
        raise RestrictionError("INVALID_EXPRESSION", f"Invalid expression{detail}") from None
    restriction = Restriction(program)
    for sample in _SAMPLES:
        try:
            restriction.is_restricted(**sample)
        except RestrictionError as error:
            if error.code == "EVALUATION_ERROR":  # at save time, a type error is the likely cause
                raise RestrictionError("TYPE_ERROR", error.message) from None
            raise
    return restriction
