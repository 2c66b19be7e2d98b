"""How log lines leave the process (server.log_output): the access line built straight from its
values reads exactly as its record would have been formatted, in both formats; lines logged in one
event-loop turn go out in one write, in the order they were logged, whichever logger (or thread)
logged them; and a turn that logs more than the buffer's limit writes as it goes rather than
holding it all."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from ehr_gateway.server import logs
from ehr_gateway.server.log_output import LineHandler

# What clients can put in a path or operation name: past ASCII, DEL, controls, a line separator,
# a lone surrogate, quotes and backslashes.
AWKWARD = ["/graphql", "/p\u20ac", "/a\nb", "/\u2028x", "/\ud800", '/x"y\\z', "/\x7f\x1f\x9b"]
METHODS = ["POST", 'G"T', "P\\T"]
STATUSES = [200, 0]
REQUEST_IDS = ["req-1", "-", None, "", 'a"b', "\u00e9\n"]
OPERATIONS = [("query:x", "hit"), ("\u00d6\n", None), (None, "miss"), ("q%s", "a\\b")]
DURATIONS = [12.35, 0.0, 1234.5, 0.1]
OTHER_LOGGER = "ehr_gateway.http"


class CountedWrites(io.StringIO):
    """Standard output as the log sees it, counting the writes made to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def configured(stream: io.StringIO, formatter: logging.Formatter, limit: int) -> LineHandler:
    handler = LineHandler(stream, limit=limit)
    handler.setFormatter(formatter)
    handler.addFilter(logs.RequestIdFilter())
    return handler


@pytest.fixture
def log_to() -> Iterator[list[LineHandler]]:
    """Attach a handler with ``log_to.append(handler)``: the access logger and one other logger
    then write to it alone, as the gateway's logging configuration has them (the root's handlers,
    a test capture among them, are left out)."""
    attached: list[LineHandler] = []
    loggers = [logs.access_logger, logging.getLogger(OTHER_LOGGER)]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    yield attached
    for handler in attached:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
    for logger, (propagate, level) in zip(loggers, saved, strict=True):
        logger.propagate = propagate
        logger.setLevel(level)


def attach(log_to: list[LineHandler], handler: LineHandler) -> None:
    log_to.append(handler)
    for name in (logs.ACCESS_LOGGER, OTHER_LOGGER):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)


@pytest.mark.parametrize("formatter", [logs.JsonFormatter, logs.TextFormatter])
def test_the_access_line_reads_as_its_record_would(formatter: type[logging.Formatter]) -> None:
    format_ = formatter()
    built = format_.access_line  # type: ignore[attr-defined]
    for path, method, status, rid, (operation, cache), duration in itertools.product(
        AWKWARD, METHODS, STATUSES, REQUEST_IDS, OPERATIONS, DURATIONS
    ):
        record = logs.access_logger.makeRecord(
            logs.ACCESS_LOGGER, logging.INFO, "", 0, logs.ACCESS_MESSAGE,
            (method, path, status, duration, operation), None,
            extra={
                "method": method, "path": path, "status": status, "durationMs": duration,
                "operation": operation, "cache": cache,
            },
        )  # fmt: skip
        if rid is not None:
            record.request_id = rid
        logs.RequestIdFilter().filter(record)  # as the handler's filter does (None: "-")
        expected = format_.format(record)
        # Twice: the first puts the line's template together, the second reuses it.
        for _ in range(2):
            line = built(
                record.created, record.request_id, method, path, status, duration,
                operation, cache,
            )  # fmt: skip
            assert (line.decode("ascii") if isinstance(line, bytes) else line) == expected


def test_the_access_line_times_each_moment_as_the_standard_library_does() -> None:
    """Milliseconds in UTC as ``datetime.isoformat`` writes them, also for a moment that rounds
    up into the next second."""
    format_ = logs.JsonFormatter()
    start = float(int(time.time()))
    moments = [start + n / 1000 + nudge for n in range(1000) for nudge in (0, 4.9e-7, 5e-7, 6e-7)]
    moments += [start + 0.9999995, start + 0.99999949, start + 59.9999996]
    for moment in moments:
        record = logs.access_logger.makeRecord(
            logs.ACCESS_LOGGER, logging.INFO, "", 0, "x", (), None
        )
        record.created = moment
        expected = json.loads(format_.format(record))["time"]
        line = format_.access_line(moment, "-", "GET", "/", 200, 0.0, "q", None)
        assert json.loads(line)["time"] == expected


async def test_lines_logged_in_one_loop_turn_go_out_in_one_write_in_order(
    log_to: list[LineHandler],
) -> None:
    stream = CountedWrites()
    attach(log_to, configured(stream, logs.JsonFormatter(), limit=1 << 20))
    other = logging.getLogger(OTHER_LOGGER)

    for n in range(100):
        logs.request_id.set(f"request-{n}")
        other.info("refused %d", n)
        logs.log_request("POST", f"/graphql/{n}", 401, 0.001, "refused", None)
    assert stream.writes == []  # until the loop's turn ends
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert len(stream.writes) == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["requestId"]) for line in lines] == [
        (logger, f"request-{n}")
        for n in range(100)
        for logger in (OTHER_LOGGER, "ehr_gateway.access")
    ]


async def test_a_line_from_another_thread_follows_the_lines_the_loop_logged_before_it(
    log_to: list[LineHandler],
) -> None:
    stream = CountedWrites()
    attach(log_to, configured(stream, logs.TextFormatter(), limit=1 << 20))
    other = logging.getLogger(OTHER_LOGGER)

    logs.log_request("POST", "/first", 200, 0.001, "query:a", "hit")
    other.info("second, on the loop")
    thread = threading.Thread(target=other.info, args=("third, on another thread",))
    thread.start()
    thread.join()
    logs.log_request("POST", "/fourth", 200, 0.001, "query:b", "miss")
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    messages = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert messages == [
        "POST /first 200 1.00ms query:a",
        "second, on the loop",
        "third, on another thread",
        "POST /fourth 200 1.00ms query:b",
    ]


async def test_a_loop_turn_that_logs_past_the_limit_writes_as_it_goes(
    log_to: list[LineHandler],
) -> None:
    limit = 4096
    stream = CountedWrites()
    attach(log_to, configured(stream, logs.JsonFormatter(), limit=limit))

    for n in range(1000):
        logs.log_request("POST", f"/graphql/{n}", 200, 0.001, "query:x", "hit")
    before_the_turn_ends = len(stream.writes)
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    longest = max(len(line) + 1 for line in stream.getvalue().splitlines())
    assert before_the_turn_ends >= len(stream.getvalue()) // (limit + longest)
    assert all(len(written) < limit + longest for written in stream.writes)
    paths = [json.loads(line)["path"] for line in stream.getvalue().splitlines()]
    assert paths == [f"/graphql/{n}" for n in range(1000)]


def test_lines_logged_with_no_loop_running_are_written_at_once(
    log_to: list[LineHandler],
) -> None:
    stream = CountedWrites()
    attach(log_to, configured(stream, logs.JsonFormatter(), limit=1 << 20))

    logs.log_request("GET", "/graphql", 200, 0.001, "query:x", None)

    assert len(stream.writes) == 1
    assert json.loads(stream.getvalue())["path"] == "/graphql"
