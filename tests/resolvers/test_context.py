"""A request's context is the service's context with the request's own values: every other
field is carried over as it is (Context.for_request names each field rather than calling
dataclasses.replace, so a field added later must be named there too)."""

from __future__ import annotations

import dataclasses

from ehr_gateway.resolvers.context import Context, RequestRecord
from ehr_gateway.runtime.access import Principal

# What for_request sets from the request, or afresh for it.
PER_REQUEST = {
    "principal",
    "request_id",
    "connection_params",
    "record",
    "history_slots",
    "followed_tenants",
}


def test_a_request_context_carries_every_other_field_over() -> None:
    # A distinct object in every field, so that a field left out shows as its default.
    values = {field.name: object() for field in dataclasses.fields(Context)}
    service = Context(**values)  # type: ignore[arg-type]
    principal = Principal(
        subject="someone", roles=frozenset(), tenants=frozenset({"t"}), expires_at=0
    )
    record = RequestRecord()

    request = service.for_request("request-1", principal, record)

    for field in dataclasses.fields(Context):
        if field.name not in PER_REQUEST:
            assert getattr(request, field.name) is values[field.name], field.name
    assert (request.principal, request.request_id, request.record) == (
        principal,
        "request-1",
        record,
    )
    assert request.connection_params is None
    assert request.history_slots is not values["history_slots"]
    assert request.followed_tenants is not values["followed_tenants"]
