"""The published schema documents itself: graphql-schema-linter's description rules find nothing
in what `ehr-gateway export-schema` prints, so every type, field, argument, input field and enum
value a frontend's generated code or GraphiQL shows has a description, and a new one without
gets caught here. DateTime names the RFC it follows with @specifiedBy.

Only the description rules run. The linter's other rules are about naming and ordering
(alphabetical fields and enum values, where the schema keeps the page's order; Relay
connections, which the schema's pages are not), not about documentation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql import GraphQLScalarType, build_schema

from tests.node_clients import run_node
from tests.processes import environment

DESCRIPTION_RULES = (
    "types-have-descriptions",
    "fields-have-descriptions",
    "arguments-have-descriptions",
    "input-object-values-have-descriptions",
    "enum-values-have-descriptions",
    "descriptions-are-capitalized",
)


def _exported_schema(tmp_path: Path) -> Path:
    exported = subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", "export-schema"],
        env=environment(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    schema_file = tmp_path / "schema.graphql"
    schema_file.write_text(exported.stdout)
    return schema_file


def test_the_description_rules_find_nothing(tmp_path: Path) -> None:
    report = run_node(
        "schema_lint.mjs", str(_exported_schema(tmp_path)), ",".join(DESCRIPTION_RULES), env={}
    )
    assert report == {"findings": []}


def test_the_linter_finds_what_lacks_a_description(tmp_path: Path) -> None:
    """The check is live: an undocumented field, argument and enum value are each found."""
    schema_file = tmp_path / "undocumented.graphql"
    schema_file.write_text(
        '"""The root."""\ntype Query {\n  """Documented."""\n  documented(tenantId: ID): Kind\n'
        "  undocumented: String\n}\n\n"
        '"""A kind."""\nenum Kind {\n  """Documented."""\n  ONE\n  TWO\n}\n'
    )
    report = run_node("schema_lint.mjs", str(schema_file), ",".join(DESCRIPTION_RULES), env={})
    assert sorted(finding["rule"] for finding in report["findings"]) == [
        "arguments-have-descriptions",
        "enum-values-have-descriptions",
        "fields-have-descriptions",
    ]


def test_date_time_is_specified_by_rfc_3339(tmp_path: Path) -> None:
    schema = build_schema(_exported_schema(tmp_path).read_text())
    date_time = schema.get_type("DateTime")
    assert isinstance(date_time, GraphQLScalarType)
    assert date_time.specified_by_url == "https://www.rfc-editor.org/rfc/rfc3339"
