"""Deployment-wide identifier defaults: the URNs the spec says the product provides "by default,
that can be changed". A tenant's own value wins; while it has none, the default applies."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, Field

from ehr_gateway.ehr.fields import IdentifierSystem

US_SSN_OID = "urn:oid:2.16.840.1.113883.4.1"


class IdentifierDefaults(BaseModel):
    """The defaults, configured per deployment."""

    ssn_identifier: IdentifierSystem | None = Field(default=US_SSN_OID)
    mrn_identifier: IdentifierSystem | None = None
    practitioner_external_urn: IdentifierSystem | None = None
    location_external_urn: IdentifierSystem | None = None
    self_service_identifier: IdentifierSystem | None = None


Block = TypeVar("Block", bound=BaseModel)


def defaulted_fields(block: BaseModel, defaults: IdentifierDefaults) -> dict[str, str]:
    """The identifier fields of ``block`` that are unset and have a deployment default."""
    filled: dict[str, str] = {}
    # Only the fields IdentifierDefaults has: getattr of any other name on a pydantic model goes
    # through its __getattr__ and an AttributeError, the most of this function's time (it runs
    # for every block of every version written, and every readiness assessed).
    known = type(defaults).model_fields
    for name in type(block).model_fields:
        if name in known:
            default = getattr(defaults, name)
            if default is not None and getattr(block, name) is None:
                filled[name] = default
    return filled


def with_identifier_defaults(block: Block, defaults: IdentifierDefaults) -> Block:
    """``block`` as it takes effect: unset identifiers replaced by the deployment defaults."""
    filled = defaulted_fields(block, defaults)
    return block.model_copy(update=filled) if filled else block
