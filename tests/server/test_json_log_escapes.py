"""With ``EHRGW_LOG_FORMAT=json`` (the default) a log line is written in ASCII: text a client sent
or the database held reaches the line with every character past ASCII as a ``\\uXXXX`` escape,
bidirectional overrides, isolates and marks among them, so a log viewer shows the line in the
order it was written, not reordered by a right-to-left override in a tenant id; and the line
parses back to exactly the text that was logged. The access line, built from its values rather
than from a record, is held to the same."""

from __future__ import annotations

import json
import logging
import time

import pytest

from ehr_gateway.server.logs import JsonFormatter

# Right-to-left override, the isolates, the Arabic letter mark, the left-to-right and
# right-to-left marks.
REORDERING = "\u202e\u2066\u2067\u2068\u2069\u061c\u200e\u200f"
TENANT_ID = f"clinic-{REORDERING}-\u00e9"
SUBJECT = f"mallory{REORDERING}gnp.exe"


def test_a_record_carrying_reordering_text_is_one_ascii_line_that_parses_back() -> None:
    record = logging.LogRecord(
        "ehr_gateway.repair", logging.WARNING, __file__, 1,
        "tenant %s: stored entry %s left as it was", (TENANT_ID, SUBJECT), None,
    )  # fmt: skip
    record.tenantId = TENANT_ID
    record.request_id = "-"

    line = JsonFormatter().format(record)

    assert line.isascii()
    assert "\\u202e" in line and "\\u2066" in line and "\\u061c" in line
    entry = json.loads(line)
    assert entry["message"] == f"tenant {TENANT_ID}: stored entry {SUBJECT} left as it was"
    assert entry["tenantId"] == TENANT_ID


@pytest.mark.parametrize("request_id", ["req-1", "-"])
@pytest.mark.parametrize(
    ("path", "operation", "cache"),
    [
        (f"/graphql{REORDERING}", "query:integrationSettings", None),
        ("/graphql", f"query:{REORDERING}", "hit"),
        ("/graphql", "query:integrationSettings", REORDERING),
    ],
)
def test_an_access_line_carrying_reordering_text_is_ascii_and_parses_back(
    path: str, operation: str, cache: str | None, request_id: str
) -> None:
    formatter = JsonFormatter()
    # Twice: the first line may put a template together, the second reuses what was kept.
    for _ in range(2):
        line = formatter.access_line(
            time.time(), request_id, "POST", path, 200, 1.25, operation, cache
        )

        assert line.isascii()
        entry = json.loads(line)
        assert (entry["path"], entry["operation"], entry.get("cache")) == (path, operation, cache)
        assert entry["message"] == f"POST {path} 200 1.25ms {operation}"
