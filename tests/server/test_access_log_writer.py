"""The log is written through one ordered buffer (server.log_output.LineHandler), once per
event-loop turn. Lines keep their order, none is lost when the process shuts logging down, each
names the request that was being served when it was logged (not whichever is served when it is
written), and the access line reads exactly as the standard JSON encoder wrote it, whatever a
client put in the path."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from ehr_gateway.server import logs
from ehr_gateway.server.log_output import LineHandler

# What clients can put in a path or operation name: past ASCII, DEL, controls, a line separator,
# a lone surrogate, quotes and backslashes.
AWKWARD = ["/graphql", "/p\u20ac", "/a\nb", "/\u2028x", "/\ud800", '/x"y\\z', "/\x7f\x1f"]


def writer(stream: io.StringIO) -> tuple[logging.Logger, LineHandler]:
    handler = LineHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger(f"{logs.ACCESS_LOGGER}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, handler


def test_every_line_is_written_in_order_before_logging_shuts_down() -> None:
    stream = io.StringIO()
    logger, handler = writer(stream)
    try:
        for n in range(2000):
            logs.log_request("POST", f"/graphql/{n}", 200, 0.001, "Read", None)
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["path"] for line in lines] == [f"/graphql/{n}" for n in range(2000)]


async def test_a_line_names_the_request_it_was_logged_in() -> None:
    stream = io.StringIO()
    logger, handler = writer(stream)

    async def serve(rid: str) -> None:
        logs.request_id.set(rid)
        logs.log_request("POST", "/graphql", 200, 0.001, rid, "hit")
        await asyncio.sleep(0)

    try:
        await asyncio.gather(*(serve(f"request-{n}") for n in range(50)))
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 50
    assert all(line["requestId"] == line["operation"] for line in lines)


def test_the_access_line_reads_as_the_standard_encoder_writes_it() -> None:
    stream = io.StringIO()
    logger, handler = writer(stream)
    try:
        for path in AWKWARD:
            for operation in ("Read", "Ö", None):
                logs.log_request("POST", path, 200, 0.0123, operation or "-", operation)
    finally:
        logger.removeHandler(handler)
        handler.close()
    written = stream.getvalue().splitlines()
    assert len(written) == len(AWKWARD) * 3
    for line in written:
        entry = json.loads(line)
        assert line == json.dumps(entry, default=str, separators=(",", ":"))
        assert entry["time"].endswith("+00:00") and len(entry["time"]) == 29
    assert {json.loads(line)["path"] for line in written} == set(AWKWARD)
