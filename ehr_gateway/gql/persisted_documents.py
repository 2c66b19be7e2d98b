"""Persisted documents: automatic persisted queries (Apollo's protocol) and trusted documents (a
manifest of allowed operations, run by ``documentId``).

A request names its document by hash in one of two ways:

- ``extensions.persistedQuery {version: 1, sha256Hash}`` (Apollo's persisted-query link): a
  hash this process does not know is answered ``PERSISTED_QUERY_NOT_FOUND`` (HTTP 200, as
  Apollo Server answers, which is what makes the link send the query with its hash); a query
  sent with its hash registers it, once the hash is checked and the document has passed
  validation and the limits.
- ``documentId`` (the GraphQL-over-HTTP persisted-documents proposal: ``sha256:<hex>``, or the
  bare hash GraphQL Code Generator's client preset sends): only the manifest's documents.

Registered documents live in this process only, in an LRU bounded by bytes: every replica, and
every worker, learns a hash on its own (the link re-registers on a miss, one round trip).

Trusted documents come from manifests loaded at startup (Apollo's
``persisted-query-manifest.json`` and Code Generator's ``persisted-documents.json``). Each is
parsed and validated once, then and with the rules of requests; a request for one skips parsing
and validation. Permissions are not part of that: resolvers check them on every request.
With ``only`` set, nothing else runs: a free-form document, over HTTP or WebSocket, is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData

from ehr_gateway.gql.documents import ENTRY_BYTES
from ehr_gateway.gql.selection_limits import SelectionLimits
from ehr_gateway.gql.validation_cache import validate_bounded

DEFAULT_APQ_MAX_BYTES = 4 * 1024 * 1024
APOLLO_FORMAT = "apollo-persisted-query-manifest"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DOCUMENT_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
# Apollo Server's answer headers for a miss: a cached miss would keep the link retrying.
NO_CACHE = "private, no-cache, must-revalidate"


class ManifestError(ValueError):
    """A trusted-documents manifest that cannot be used; the message is one line."""


class PersistedDocumentRefused(Exception):
    """A request naming a persisted document that is not answered with a result: raised out of
    the view for the request gate to answer as JSON with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        return {"cache-control": NO_CACHE}


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    text: str
    document: DocumentNode
    source: str  # the manifest and operation, for startup errors


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifests(paths: Iterable[Path]) -> dict[str, tuple[str, str]]:
    """Each manifest's documents by id: ``{id: (text, where)}``. Apollo's format lists
    operations with ``id`` and ``body``; Code Generator's maps each hash to its document."""
    documents: dict[str, tuple[str, str]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ManifestError(f"{path}: cannot read it: {error.strerror or error}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ManifestError(f"{path}: not JSON: {error}") from None
        for key, text in _entries(path, data):
            if not isinstance(key, str) or not isinstance(text, str) or not key:
                raise ManifestError(f"{path}: {key!r}: an id and a document must be strings")
            earlier = documents.get(key)
            if earlier is not None and earlier[0] != text:
                raise ManifestError(f"{path}: id {key} names two different documents")
            documents[key] = (text, f"{path}: {key}")
    return documents


def _entries(path: Path, data: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(data, dict) and data.get("format") == APOLLO_FORMAT:
        if data.get("version") != 1 or not isinstance(data.get("operations"), list):
            raise ManifestError(f"{path}: an {APOLLO_FORMAT} of version 1 lists its operations")
        for operation in data["operations"]:
            if not isinstance(operation, dict):
                raise ManifestError(f"{path}: an operation must be an object")
            yield operation.get("id"), operation.get("body")
    elif isinstance(data, dict) and "format" not in data:
        yield from data.items()
    else:
        raise ManifestError(
            f"{path}: neither an {APOLLO_FORMAT} nor a map of hash to document "
            "(GraphQL Code Generator's persisted-documents.json)"
        )


class PersistedDocuments:
    """The trusted documents of a schema and the queries clients registered with it."""

    def __init__(
        self,
        trusted: Mapping[str, TrustedDocument] | None = None,
        *,
        only: bool = False,
        automatic: bool = True,
        max_bytes: int = DEFAULT_APQ_MAX_BYTES,
    ) -> None:
        self._by_id: dict[str, TrustedDocument] = {}
        for key, trusted_document in (trusted or {}).items():
            match = _DOCUMENT_ID.fullmatch(key)  # Codegen's ids carry the "sha256:" prefix
            self._by_id[match.group(1) if match else key] = trusted_document
            # Apollo's link hashes the text it sends: that hash finds the document too.
            self._by_id.setdefault(sha256_hex(trusted_document.text), trusted_document)
        self._by_text = {d.text: d.document for d in self._by_id.values()}
        self.only = only
        self.automatic = automatic and not only
        self._registered: LRUCache[str, str] = LRUCache(max_bytes, getsizeof=_entry_bytes)
        self.hits = 0  # requests by hash that found their document
        self.misses = 0  # requests by hash that did not

    def __len__(self) -> int:
        return len(self._registered) + len(self._by_text)

    @property
    def registered_bytes(self) -> int:
        return int(self._registered.currsize)

    def trusted(self, text: str | None) -> DocumentNode | None:
        return None if text is None else self._by_text.get(text)

    def resolve(self, request: GraphQLRequestData, document_id: object) -> GraphQLRequestData:
        """``request`` with the text of the document it names by hash; refused
        (PersistedDocumentRefused) when there is none, or when it may not run."""
        if document_id is not None:
            return replace(request, query=self._by_document_id(request, document_id))
        persisted = (request.extensions or {}).get("persistedQuery")
        if persisted is not None:
            sha = _apq_hash(persisted)
            if request.query is None:
                return replace(request, query=self._by_hash(sha))
            if sha256_hex(request.query) != sha:
                # Nothing is stored: a hash must never come to name another document.
                raise PersistedDocumentRefused(
                    400, "PERSISTED_QUERY_HASH_MISMATCH",
                    "extensions.persistedQuery.sha256Hash is not the SHA-256 of query",
                )  # fmt: skip
        if self.only and request.query is not None and request.query not in self._by_text:
            raise PersistedDocumentRefused(403, "DOCUMENT_NOT_TRUSTED", NOT_TRUSTED)
        return request

    def _by_document_id(self, request: GraphQLRequestData, document_id: object) -> str:
        if request.query is not None:
            raise PersistedDocumentRefused(
                400, "BAD_REQUEST", "documentId: send a documentId or a query, not both"
            )
        match = _DOCUMENT_ID.fullmatch(document_id) if isinstance(document_id, str) else None
        trusted = self._by_id.get(match.group(1) if match else str(document_id))
        if trusted is None:
            self.misses += 1
            raise PersistedDocumentRefused(
                404, "PERSISTED_DOCUMENT_NOT_FOUND",
                "documentId: no trusted document has this id",
            )  # fmt: skip
        self.hits += 1
        return trusted.text

    def _by_hash(self, sha: str) -> str:
        trusted = self._by_id.get(sha)
        text = trusted.text if trusted is not None else self._registered.get(sha)
        if text is not None:
            self.hits += 1
            return text
        self.misses += 1
        if not self.automatic and not self.only:
            # The link then stops sending hashes to this server.
            raise PersistedDocumentRefused(
                200, "PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported"
            )
        # Apollo's link retries a miss with the query (which, with ``only``, is then refused
        # by name unless the manifest lists it).
        raise PersistedDocumentRefused(200, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")

    def register(self, sha: str, text: str) -> None:
        """Keeps ``text`` under ``sha``, its SHA-256 (checked again: a WebSocket operation
        does not pass ``resolve``)."""
        if self.automatic and sha not in self._registered and sha256_hex(text) == sha:
            with suppress(ValueError):  # larger than the whole store: served, not kept
                self._registered[sha] = text


NOT_TRUSTED = (
    "query: this gateway runs only trusted documents (EHRGW_TRUSTED_DOCUMENTS_ONLY); send the "
    "documentId of a document its manifests list"
)


def _entry_bytes(text: str) -> int:
    return ENTRY_BYTES + sys.getsizeof(text)


def _apq_hash(persisted: object) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise PersistedDocumentRefused(
            400, "PERSISTED_QUERY_NOT_SUPPORTED",
            "extensions.persistedQuery.version: only version 1 is supported",
        )  # fmt: skip
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise PersistedDocumentRefused(
            400, "BAD_REQUEST",
            "extensions.persistedQuery.sha256Hash: 64 lowercase hexadecimal digits expected",
        )  # fmt: skip
    return sha


def trusted_documents(
    manifest: Mapping[str, tuple[str, str]],
    schema: GraphQLSchema,
    rules: Iterable[type[ASTValidationRule]],
    limits: SelectionLimits,
    *,
    max_tokens: int,
    hide_suggestions: bool,
) -> dict[str, TrustedDocument]:
    """Each document of ``manifest`` parsed and validated, as a request's would be; the first
    that fails is a ManifestError naming it."""
    all_rules = (*specified_rules, *rules)
    trusted: dict[str, TrustedDocument] = {}
    for key, (text, where) in manifest.items():
        try:
            document = parse(text, max_tokens=max_tokens)
        except GraphQLSyntaxError as error:
            raise ManifestError(f"{where}: {error.message}") from None
        errors = validate_bounded(
            schema, document, all_rules, limits, hide_suggestions=hide_suggestions
        )
        if errors:
            raise ManifestError(f"{where}: {errors[0].message}")
        if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
            raise ManifestError(f"{where}: the document has no operation")
        trusted[key] = TrustedDocument(text, document, where)
    return trusted


class PersistedDocumentsExtension(SchemaExtension):
    """Trusted documents skip parsing and validation; with ``only``, any other document is
    refused before validation (WebSocket operations included); a registration is kept once
    its document passed validation."""

    def __init__(self, documents: PersistedDocuments) -> None:
        self._documents = documents

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        document = self._documents.trusted(execution.query)
        if document is not None:
            execution.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        documents = self._documents
        if documents.trusted(execution.query) is not None:
            execution.pre_execution_errors = []  # validated at startup
        elif documents.only:
            execution.pre_execution_errors = [
                GraphQLError(NOT_TRUSTED, extensions={"code": "DOCUMENT_NOT_TRUSTED"})
            ]
        yield
        persisted = (execution.operation_extensions or {}).get("persistedQuery")
        if (
            isinstance(persisted, dict)
            and isinstance(persisted.get("sha256Hash"), str)
            and execution.query is not None
            and execution.pre_execution_errors == []
        ):
            documents.register(persisted["sha256Hash"], execution.query)


@dataclass(frozen=True)
class PersistedDocumentsSetup:
    """What the configuration asks for (EHRGW_TRUSTED_DOCUMENTS, EHRGW_TRUSTED_DOCUMENTS_ONLY,
    EHRGW_PERSISTED_QUERIES, EHRGW_PERSISTED_QUERIES_MAX_BYTES); built with the schema."""

    manifest: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    only: bool = False
    automatic: bool = True
    max_bytes: int = DEFAULT_APQ_MAX_BYTES

    def build(
        self,
        schema: GraphQLSchema,
        rules: Iterable[type[ASTValidationRule]],
        limits: SelectionLimits,
        max_tokens: int,
        *,
        hide_suggestions: bool,
    ) -> PersistedDocuments:
        if self.only and not self.manifest:
            raise ManifestError("only trusted documents may run, and no manifest lists any")
        trusted = trusted_documents(
            self.manifest, schema, rules, limits,
            max_tokens=max_tokens, hide_suggestions=hide_suggestions,
        )  # fmt: skip
        return PersistedDocuments(
            trusted, only=self.only, automatic=self.automatic, max_bytes=self.max_bytes
        )
