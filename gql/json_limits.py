"""JSON from clients, refused when nested deeper than a limit before it is decoded: the loader
lives in resolvers.json_limits, where the resolvers (which may not import gql) read JSON from
servers they call with it too."""

from __future__ import annotations

from resolvers.json_limits import DEFAULT_MAX_DEPTH, JsonTooDeep, loads_bounded

__all__ = ["DEFAULT_MAX_DEPTH", "JsonTooDeep", "loads_bounded"]
