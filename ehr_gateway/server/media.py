"""Which media type a GraphQL HTTP response has, and the status that goes with it
(GraphQL over HTTP, https://graphql.github.io/graphql-over-http/draft/).

``application/graphql-response+json`` says what happened in its status: a request that was
refused before it ran (unparsable, invalid, variables that do not fit) is a 4xx without a
``data`` entry, so a client such as Apollo Client reads it as GraphQL errors rather than a
bare failed status. ``application/json`` is the legacy type: 200 for anything that reached
GraphQL, as before. A client that states no preference (no ``Accept``, or ``*/*``) gets the
legacy type: clients written before the spec read errors only out of 200 responses."""

from __future__ import annotations

from typing import Final

from starlette.types import Scope

GRAPHQL_RESPONSE: Final = "application/graphql-response+json"
JSON: Final = "application/json"
_LEGACY_WILDCARDS = ("*/*", "application/*")
# The Content-Type header of each response media type, as the request gate sends it.
CONTENT_TYPE_HEADERS = {t: (b"content-type", t.encode()) for t in (GRAPHQL_RESPONSE, JSON)}


def response_media_type(scope: Scope) -> str:
    """The media type to answer the request in ``scope`` with, from its ``Accept`` header:
    the supported type with the highest quality, the first listed on a tie. Nothing supported
    (say ``text/plain``): the legacy type, which the spec allows in place of a 406."""
    accept = b""
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            accept = value
            break
    best, best_quality = JSON, 0.0
    for entry in accept.decode("latin-1").split(","):
        media_type, *parameters = (part.strip() for part in entry.split(";"))
        media_type = media_type.lower()
        if media_type == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif media_type == JSON or media_type in _LEGACY_WILDCARDS:
            candidate = JSON
        else:
            continue
        quality = _quality(parameters)
        if quality > best_quality:
            best, best_quality = candidate, quality
    return best


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0
