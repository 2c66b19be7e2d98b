"""Errors in reading a request (parsing, validation, variable coercion) without the submitted
values. graphql-core quotes offending values in these messages, and a value may be a secret (a
SOAP password sent with the wrong type, or under a misspelled field name). Rather than cut values
out, which cannot be done reliably when a value may contain any text, the message is rebuilt from
the parts that never carry a value: its opening up to the first value, the argument path, the type
and field names it mentions, and suggestions. What a client needs to mend its request comes from
the document's structure and the schema, never from the value: which argument or variable (and
where inside it), the type expected, and for an enum its values."""

from __future__ import annotations

import re
from collections.abc import Sequence

from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLSchema,
    Node,
    ObjectFieldNode,
    Visitor,
    parse,
    visit,
)
from graphql.language import VisitorAction

from ehr_gateway.gql.scalars import DATE_TIME_EXPECTED

_NAME = r"[_A-Za-z][_0-9A-Za-z]*"
# Where a quoted value begins, in graphql-core's wording.
_VALUE_STARTS = re.compile(
    rf" got invalid value |[,.;]? [Ff]ound:? |(?=(?:Enum ')?{_NAME}'? cannot represent )"
    rf"|Value (?=['\"{{\[\d-])"
)
# A variable's message, up to its value: the variable, the path inside it as graphql-core
# prints it (".epic.field[0]"), and what is wrong there.
_VARIABLE = re.compile(
    rf"(Variable '\${_NAME}') has invalid value(?: at ((?:\.{_NAME}|\[\d+\])+))?:? ?(.*)", re.S
)
_ENUM = re.compile(rf"does not exist in '({_NAME})' enum")
_SCALAR = re.compile(rf"(?:Enum ')?({_NAME})'? cannot represent [\w -]*?value")
_SUGGESTED = re.compile(rf"Did you mean (?:the enum value )?((?:'{_NAME}'(?:, | or |, or )?)+)\?")
_SAFE_PARTS = (
    re.compile(rf"((?:Enum ')?{_NAME}'? cannot represent [\w -]*?value)"),
    re.compile(rf"(Field '{_NAME}' is not defined by type '{_NAME}')"),
    re.compile(rf"(does not exist in '{_NAME}' enum)"),
    re.compile(rf"(Field '{_NAME}' of required type '[\w!\[\]]+' was not provided)"),
    re.compile(r"(must have exactly one non-null field|only one field must be non-null)"),
    re.compile(f"({re.escape(DATE_TIME_EXPECTED)})"),
)


def without_values(message: str, *, where: str | None = None) -> str:
    """``message`` with nothing the client submitted in it (names of fields and types stay).
    ``where``: the argument the value was written in, when the message does not say (a
    literal's; a variable's message names the variable)."""
    start = _VALUE_STARTS.search(message)
    if start is None:
        return message
    opening = message[: start.start()].rstrip(" ,.;:")
    rest = message[start.start() :]
    variable = _VARIABLE.match(opening)
    if variable is not None:
        name, at, detail = variable.groups()
        opening = f"{name} has an invalid value" + (f" at '{at.lstrip('.')}'" if at else "")
        opening += f": {detail}" if detail else ""
    elif where is not None:
        lead = f"{where[:1].upper()}{where[1:]} has an invalid value"
        opening = f"{lead}: {opening}" if opening else lead
    expected = _ENUM.search(rest) or _SCALAR.search(rest)
    parts = [f"expected {expected.group(1)}"] if expected else []
    for pattern in _SAFE_PARTS:
        for found in pattern.finditer(rest):
            text = found.group(1)
            parts.append(f"the value {text}" if text.startswith("does not exist") else text)
    described = "; ".join(dict.fromkeys(parts))  # in order, without repeats
    if not opening:  # a value graphql-core names no place for (an item of a list literal)
        described = described[:1].upper() + described[1:]
    message = f"{opening}: {described}" if described and opening else opening or described
    if (suggested := _SUGGESTED.search(rest)) is not None:
        message = f"{message.rstrip('.')}. Did you mean {suggested.group(1)}?"
    return message if message.endswith(("?", ".")) else message + "."


# graphql-core's wording that names what the schema has and the client did not write: the type a
# field was looked up on or returns, a required argument with its type, an input object's type.
# With the schema closed each is said with the client's own field, argument or value only.
_SCHEMA_NAMING = (
    (re.compile(r" Did you mean [^?]*\?"), ""),
    (
        re.compile(rf"(Field '{_NAME}') of type '[^']*' (must have a selection of subfields)"),
        r"\1 \2",
    ),
    (
        re.compile(
            rf"Argument '(?:{_NAME}\.)?({_NAME})\({_NAME}:\)' of type '[^']*' is required, "
            r"but it was not provided"
        ),
        r"Field '\1' is missing a required argument",
    ),
    (re.compile(rf"(Unknown argument '{_NAME}' on field ')(?:{_NAME}\.)({_NAME}')"), r"\1\2"),
    (re.compile(r" on type '[^']*'"), ""),
    (re.compile(r" since type '[^']*' has no subfields"), ": it has no subfields"),
    (re.compile(r"Expected value of type '[^']*', but encountered error '([^']*)'"), r"\1"),
    (re.compile(r"Expected value of type '[^']*' not to include (unknown field)"), r"\1"),
    (re.compile(r"Expected value of type '[^']*' to be"), "expected"),
    # An input field left out is one the client did not write: naming it would tell, one
    # error at a time, the input fields introspection keeps from it (as for an argument).
    (
        re.compile(
            rf"Expected value of type '[^']*' to include required field '{_NAME}'"
            rf"|Field '{_NAME}' of required type '[^']*' was not provided"
        ),
        "a required field is missing",
    ),
    (re.compile(rf"(Field '{_NAME}') of required type '[^']*'"), r"\1 (required)"),
)


# Messages whose wording rests on a type the client may not have written: said without it.
_TYPE_NAMING = (
    # A fragment spread on a type the field cannot return names the field's own type.
    (
        re.compile(r" as objects of type '[^']*' can never be of type"),
        ": objects here can never be of type",
    ),
    # A variable in the wrong place names the argument's type.
    (
        re.compile(
            rf"(Variable '\${_NAME}' of type '[^']*') used in position expecting type '[^']*'"
        ),
        r"\1 is used where another type is expected",
    ),
)
# What a type is, said without its name: "expected an integer".
_KIND_OF_SCALAR = {
    "Int": "an integer",
    "Float": "a number",
    "String": "a string",
    "Boolean": "a boolean",
    "ID": "a string or an integer",
}


def without_schema_names(
    message: str,
    *,
    schema: GraphQLSchema | None = None,
    written: str = "",
    where: str | None = None,
) -> str:
    """``message`` naming no schema element the client did not name itself (its own fields,
    arguments and variables stay): for a schema closed to introspection. ``written``: the
    document; a type of ``schema`` it does not name is not named in the message either, whatever
    graphql-core's wording. ``where``: the argument a literal was written in."""
    for pattern, replacement in _SCHEMA_NAMING:
        message = pattern.sub(replacement, message)
    for pattern, replacement in _TYPE_NAMING:
        message = pattern.sub(replacement, message)
    subject = f"{where[:1].upper()}{where[1:]}" if where else "The value"
    message = re.sub(
        rf"OneOf Input Object '{_NAME}' must specify exactly one key",
        f"{subject} must specify exactly one key",
        message,
    )
    message = re.sub(
        r"Expected value of non-null type '[^']*' not to be None",
        f"{subject} must not be null",
        message,
    )
    if schema is None:
        return message
    own = set(re.findall(_NAME, written))
    hidden = [name for name in schema.type_map if name not in own and name in message]
    for name in hidden:
        message = _unnamed(message, name, schema)
    return message


def _unnamed(message: str, name: str, schema: GraphQLSchema) -> str:
    """``message`` with the type ``name`` said by what it is."""
    type_ = schema.type_map[name]
    kind = (
        "an enum value" if isinstance(type_, GraphQLEnumType)
        else "an input object" if isinstance(type_, GraphQLInputObjectType)
        else _KIND_OF_SCALAR.get(name, "a value of another type")
    )  # fmt: skip
    quoted = rf"(?:Enum |(?:non-null )?type )?'[\[]*{name}[!\]]*'"
    message = re.sub(rf"\b([Ee])xpected {name}\b", rf"\1xpected {kind}", message)
    message = re.sub(
        rf"(?:{quoted}|\b{name}\b) cannot represent (?:an? )?([\w -]*?) value",
        lambda found: f"{_article(found.group(1))} {found.group(1)} value is not allowed",
        message,
    )
    # A field named with its type ('EhrSettingsInput.epic'): the field alone.
    message = re.sub(rf"'{name}\.({_NAME})'", r"'\1'", message)
    message = re.sub(rf"does not exist in {quoted} enum", "does not exist in the enum", message)
    return re.sub(rf"{quoted}|\b{name}\b", "another type", message)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def request_error_message(error: GraphQLError, schema: GraphQLSchema, *, open_schema: bool) -> str:
    """The message of an error in reading a request, without the values submitted, naming
    where the value was (the argument path of a literal) and, for an enum and where the schema
    is open (``open_schema``: development mode), the values it allows. Where the schema is
    closed, the message names no schema element the client did not name."""
    where = _argument_of(error)
    message = without_values(error.message, where=where)
    if not open_schema:
        written = error.source.body if error.source is not None else ""
        return without_schema_names(message, schema=schema, written=written, where=where)
    enum = _ENUM.search(error.message) or _SCALAR.search(error.message)
    if enum is not None:
        allowed = schema.get_type(enum.group(1))
        if isinstance(allowed, GraphQLEnumType):
            values = ", ".join(allowed.values)
            message = message.replace(
                f"expected {enum.group(1)}", f"expected {enum.group(1)}, one of {values}", 1
            )
    return message


def _argument_of(error: GraphQLError) -> str | None:
    """Where a literal the error points at was written: "argument 'input.epic.x' of
    'updateEhrSettings'". None for an error about anything but a value in an argument."""
    if not error.nodes or error.source is None or error.nodes[0].loc is None:
        return None
    target = error.nodes[0]
    try:
        document = parse(error.source, no_location=False)
    except GraphQLError:
        return None
    finder = _ArgumentFinder(target)
    visit(document, finder)
    return finder.found


class _ArgumentFinder(Visitor):
    def __init__(self, target: Node) -> None:
        super().__init__()
        assert target.loc is not None
        self._span = (target.kind, target.loc.start, target.loc.end)
        self.found: str | None = None

    def enter(
        self, node: Node, key: object, parent: object, path: object, ancestors: Sequence[object]
    ) -> VisitorAction:
        if node.loc is None or (node.kind, node.loc.start, node.loc.end) != self._span:
            return None
        names: list[str] = []
        field: str | None = None
        for ancestor in [*ancestors, parent]:  # graphql-core's ancestors leave out the parent
            if isinstance(ancestor, ArgumentNode | ObjectFieldNode):
                names.append(ancestor.name.value)
            elif isinstance(ancestor, FieldNode):
                field, names = ancestor.name.value, []
        if names and field is not None:
            self.found = f"argument '{'.'.join(names)}' of '{field}'"
        return self.BREAK
