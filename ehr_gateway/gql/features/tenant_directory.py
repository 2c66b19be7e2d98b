"""The tenant directory: the tenants a caller may read, a page at a time, for the console and
dashboards."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError

from ehr_gateway.gql.arguments import ContextInfo
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.directory_types import PageInfo, TenantPage, TenantSummary
from ehr_gateway.gql.enums import EhrProvider
from ehr_gateway.gql.list_budget import MAX_DIRECTORY_ROWS, charge_rows
from ehr_gateway.resolvers import tenant_directory
from ehr_gateway.runtime.access import Permission

BAD_USER_INPUT = "BAD_USER_INPUT"


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ),
        description="The tenants the caller may read (every tenant for staff), with their EHR, "
        "version, readiness and last change: by tenant id, or, with `changedSince`, by last "
        "change, oldest first (a tenant that changes while a client pages moves to the end, "
        "where the client meets it again). Keyset pages: a deep page costs what the first "
        "does. A bad `first` or `after` is an error with code BAD_USER_INPUT naming the "
        f"argument. One operation may ask for {MAX_DIRECTORY_ROWS} rows in all (COST_LIMIT past "
        "that).",
    )
    async def tenants(
        self,
        info: ContextInfo,
        first: Annotated[
            int | None,
            strawberry.argument(
                description=f"Page size, 1 to {tenant_directory.PAGE_MAX} (null: the "
                "default); anything else is refused."
            ),
        ] = tenant_directory.DEFAULT_PAGE,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="The `pageInfo.endCursor` of the previous page, with the same "
                "`changedSince` given or not."
            ),
        ] = None,
        provider: Annotated[
            EhrProvider | None,
            strawberry.argument(description="Only tenants whose active EHR this is."),
        ] = None,
        ready: Annotated[
            bool | None,
            strawberry.argument(description="Only tenants that are (true) or are not ready."),
        ] = None,
        changed_since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Only tenants whose current version was stored at or after this "
                "time; orders by last change (`changedAt`). To follow changes, poll with the "
                f"last row's changedAt minus {tenant_directory.OVERLAP_S} seconds, and drop rows "
                "whose (tenantId, version) you already have: a version becomes visible up to "
                "a write's database deadline (5 s by default) after its changedAt, so it can "
                "appear behind rows already read; the overlap covers that and replicas' clock "
                "differences, and nothing is missed."
            ),
        ] = None,
    ) -> TenantPage:
        size = tenant_directory.DEFAULT_PAGE if first is None else first
        try:
            tenant_directory.check_page_size(size)
            charge_rows("tenants", size)
            page = await tenant_directory.tenant_page(
                info.context,
                first=size,
                after=after,
                provider=provider,
                ready=ready,
                changed_since=changed_since,
            )
        except tenant_directory.BadArgument as error:
            raise GraphQLError(
                str(error), extensions={"code": BAD_USER_INPUT, "argument": error.argument}
            ) from None
        return TenantPage(
            items=[TenantSummary.of(row) for row in page.rows],
            page_info=PageInfo(end_cursor=page.end_cursor, has_next_page=page.has_next_page),
        )
