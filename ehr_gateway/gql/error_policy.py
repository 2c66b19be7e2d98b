"""How errors leave the gateway: a request refused before it ran names no submitted value,
an expected refusal keeps its code, the database being away or full is a clear answer the
client can act on, and anything else is an internal error with an id to quote (the detail
stays in the log)."""

from __future__ import annotations

import logging
import traceback
import uuid

from graphql import GraphQLError, GraphQLSchema
from pymongo.errors import PyMongoError
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from ehr_gateway.gql.errors import request_error_message
from ehr_gateway.storage.audit import AuditEntryTampered
from ehr_gateway.storage.client import (
    error_summary,
    is_storage_full,
    is_unavailable,
    reason,
)
from ehr_gateway.storage.health import DatabaseHealth
from ehr_gateway.storage.repair import HistoryTampered, StorageFull

logger = logging.getLogger("ehr_gateway.graphql")
STORAGE_FULL_MESSAGE = (
    "the database has no space left: a write this operation needed was refused. An operator "
    "must free space on the database's disk; until then writes are refused, and retrying will "
    "not help"
)


class ErrorPolicy:
    """The error handling of GatewaySchema (gql.execution), which it is mixed into."""

    _schema: GraphQLSchema
    database_errors = 0  # requests that found the database unreachable
    health: DatabaseHealth | None = None  # told when a request finds the database unreachable
    # Whether errors may name schema elements the client did not (suggestions, an enum's
    # values): only where the schema is open anyway (gateway_schema).
    suggestions = True

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors in reading a request quote the submitted values; they leave here, for the
        response and the log, without them. Errors raised while executing are logged in full."""
        for error in errors:
            if error.path is None:
                # The document was refused before it ran (syntax, validation, a limit).
                error.message = request_error_message(
                    error, self._schema, open_schema=self.suggestions
                )
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED", **(error.extensions or {})}
                logger.info("request refused: %s", error.message)
            elif (error.extensions or {}).get("code"):  # an expected refusal, raised as such
                logger.info("operation refused: %s", error.message)
            elif isinstance(error.original_error, (HistoryTampered, AuditEntryTampered)):
                # Logged and counted where it was found (ehr_gateway.security); the client is
                # told which tenant, not what the forged entry holds.
                error.message = error.original_error.client_message
                error.extensions = {"code": "HISTORY_TAMPERED"}
            elif is_storage_full(error.original_error):
                # Not a fault of the gateway's, and not one a retry mends: an operator must
                # free space. The repository logged which write failed (never its document).
                full = error.original_error
                logger.warning("%s refused: the database has no space left", _field(error))
                if isinstance(full, StorageFull):
                    error.message, stored = full.client_message, full.stored
                else:  # a write outside the settings path (an audited refusal, say)
                    error.message, stored = STORAGE_FULL_MESSAGE, None
                error.extensions = {"code": "STORAGE_FULL", "stored": stored}
            elif is_unavailable(error.original_error):
                # Expected while the database is away: a clear answer the client can retry.
                logger.warning("database unavailable: %s", error.original_error)
                self.database_errors += 1
                if self.health is not None:
                    self.health.note_unreachable(reason(error.original_error))
                error.message = _unavailable_message(execution_context)
                error.extensions = {"code": "SERVICE_UNAVAILABLE"}
            else:
                # Unexpected: the client gets an id to quote, the log has the id and the detail.
                error_id = uuid.uuid4().hex[:12]
                original = error.original_error
                if isinstance(original, PyMongoError):
                    # A driver error's text holds the command it failed on: for a write, the
                    # document with its settings. The log gets the server's code and message
                    # and where it was raised, not the text.
                    logger.error(
                        "internal error %s in %s: %s\n%s", error_id, _field(error),
                        error_summary(original),
                        "".join(traceback.format_tb(original.__traceback__)).rstrip(),
                    )  # fmt: skip
                else:
                    logger.error("internal error %s", error_id, exc_info=original or error)
                error.message = f"internal error (error id {error_id})"
                error.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}


def _unavailable_message(execution_context: ExecutionContext | None) -> str:
    """A write cut short by the database may still have been stored (its commit point reached
    the database, its answer did not): the client is told, and how to find out."""
    if execution_context is not None and execution_context.operation_type == OperationType.MUTATION:
        return (
            "the database is unavailable; the write may have been stored. Retry with the same "
            "idempotencyKey (it returns the stored version, or stores it once), or read "
            "settingsHistory, to find out"
        )
    return "the database is unavailable; retry shortly"


def _field(error: GraphQLError) -> str:
    """The root field an error was raised under (the operation, for a mutation)."""
    return str(error.path[0]) if error.path else "request"
