"""Parsed GraphQL documents, kept by their text within a memory budget, for every path that
parses: HTTP requests, WebSocket operations and the subscription multiplexer.

Clients send a handful of fixed documents, so each text is parsed once. A parsed document is much
larger than its text: graphql-core keeps every lexical token (a linked list) and AST nodes with
their locations, about 190 to 620 bytes per token (measured with tracemalloc on graphql-core 3.3:
a 5,000-token selection of plain fields takes 3 MB). A cache bounded by its number of entries
would let 512 such documents pin 1.5 GB, so this one is bounded by bytes. Parsing is itself
bounded by the token limit (graphql-core stops at the first token past it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError, GraphQLSyntaxError, parse
from strawberry.extensions import SchemaExtension

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
BYTES_PER_TOKEN = 640  # the largest measured share of a token, rounded up
ENTRY_BYTES = 512  # the entry itself, its key and the document node

# graphql-core's wording when a document has more tokens than allowed.
_TOKEN_LIMIT = re.compile(r"Document contains more than \d+ tokens")


def document_bytes(document: DocumentNode, text: str) -> int:
    """What ``document``, parsed from ``text``, holds in memory, estimated from its tokens."""
    tokens = 0
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        tokens += 1
        token = token.next
    return ENTRY_BYTES + sys.getsizeof(text) + BYTES_PER_TOKEN * tokens


def is_token_limit(error: GraphQLError) -> bool:
    """Whether ``error`` refuses a document for having more tokens than the limit."""
    return isinstance(error, GraphQLSyntaxError) and bool(_TOKEN_LIMIT.search(error.message))


@dataclass(frozen=True, slots=True)
class _Parsed:
    document: DocumentNode | GraphQLSyntaxError  # the error, for a text that is not a document
    size: int


def _size(parsed: _Parsed) -> int:
    return parsed.size


class DocumentCache:
    """Documents by text and token limit, least recently used dropped first past ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._parsed: LRUCache[tuple[str, int | None], _Parsed] = LRUCache(
            max_bytes, getsizeof=_size
        )

    def parse(self, text: str, max_tokens: int | None) -> DocumentNode:
        """The document ``text`` holds; GraphQLSyntaxError when it is not one, or has more than
        ``max_tokens`` tokens (found before parsing goes further)."""
        key = (text, max_tokens)
        parsed = self._parsed.get(key)
        if parsed is None:
            try:
                document = parse(text, max_tokens=max_tokens)
                parsed = _Parsed(document, document_bytes(document, text))
            except GraphQLSyntaxError as error:
                # Kept too: the multiplexer and the schema both ask for the same text.
                parsed = _Parsed(error, ENTRY_BYTES + sys.getsizeof(text))
            with suppress(ValueError):  # larger than the whole budget: used once, not kept
                self._parsed[key] = parsed
        if isinstance(parsed.document, GraphQLSyntaxError):
            # A new error each time: the request's error handling rewrites its message (without
            # the text it quotes), which must not reach the next request for this text.
            kept = parsed.document
            assert kept.source is not None and kept.positions
            raise GraphQLSyntaxError(
                kept.source, next(iter(kept.positions)), kept.message.removeprefix("Syntax Error: ")
            )
        return parsed.document

    @property
    def bytes(self) -> int:
        return int(self._parsed.currsize)

    def __len__(self) -> int:
        return len(self._parsed)


class ParseByText(SchemaExtension):
    """Strawberry's parse step through a DocumentCache, with the token limit that
    MaxTokensLimiter put in the parse options."""

    def __init__(self, documents: DocumentCache) -> None:
        self._documents = documents

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.query and execution.graphql_document is None:  # else: a trusted one
            # A document that does not parse is left to Strawberry, which parses it again
            # (with the same options, so within the same limit) and reports the error in the
            # operation's result. An exception raised here would escape a subscription's result
            # stream instead: a traceback and a bare `complete`.
            with suppress(GraphQLError):
                execution.graphql_document = self._documents.parse(
                    execution.query, execution.parse_options.get("max_tokens")
                )
        yield
