"""Structured logs: one JSON object per line (or plain text), each carrying the id of the request
being served, and an access line per HTTP request.

The request id is held in a context variable set by the request gate, so every line logged while
a request runs (a refusal, an internal error's detail) names it without being passed it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
ACCESS_LOGGER = "ehr_gateway.access"
access_logger = logging.getLogger(ACCESS_LOGGER)

# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))

# Attributes a record may carry (``extra=``) that belong in the JSON object.
FIELDS = (
    "method", "path", "status", "durationMs", "operation", "cache",
    # A refused attempt (ehr_gateway.security).
    "subject", "tenants", "tenantId", "permission", "kind", "audited",
)  # fmt: skip


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the one passed in ``extra``, else the current
    request's, else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid and rid != "-":
            entry["requestId"] = rid
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.name == ACCESS_LOGGER:
            # The access line holds strings and numbers only, which orjson writes as the
            # standard encoder does while they are printable ASCII (the latter escapes DEL and
            # everything past ASCII); any other line goes to the latter.
            try:
                line = orjson.dumps(entry)
            except TypeError:
                pass
            else:
                if line.isascii() and b"\x7f" not in line:
                    return line.decode("ascii")
        return _ENCODER.encode(entry)

    def _time(self, created: float) -> str:
        """``isoformat(timespec="milliseconds")`` of the moment in UTC, its date and time of day
        formatted once a second."""
        moment = datetime.fromtimestamp(created, UTC)
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        if moment.second != second % 60:  # rounded up into the next second: rare
            return moment.isoformat(timespec="milliseconds")
        return f"{self._prefix}.{moment.microsecond // 1000:03d}+00:00"


# What would end a text line early, or make one look like several to a reader of the log (line
# and paragraph separators), or could not be written out at all (a lone surrogate).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    return _CONTROL.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """Plain text lines, one per record. Messages carry what clients sent (a tenant id, a field
    name), so their control characters are escaped: a newline in a tenant id must not start a
    line of its own that reads as another log entry. An exception's traceback keeps its lines,
    each indented and escaped, so none of them reads as an entry either."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in text.splitlines())


class BackgroundStreamHandler(logging.handlers.QueueHandler):
    """Writes records to a stream from a thread of its own: the thread that logs (the event loop,
    with an access line per request) only hands the record over, and the line is formatted and
    written (a system call and a flush each) while the loop serves the next request.

    Filters run where the record is made (the request id is a context variable of the request
    being served); the formatter runs in the writing thread. Lines keep their order. When the
    writer falls behind by ``capacity`` records (the stream blocks), loggers wait for it rather
    than drop lines or hold them without bound, as a blocking stream made them wait before."""

    def __init__(self, stream: Any = None, capacity: int = 10_000) -> None:
        # A SimpleQueue: a put is a C call with no lock or condition to notify (queue.Queue's
        # cost as much as the rest of handing a record over).
        self.records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        super().__init__(self.records)
        self.capacity = capacity
        self.target = logging.StreamHandler(stream)
        self.listener: logging.handlers.QueueListener | None = logging.handlers.QueueListener(
            self.records, self.target
        )
        self.listener.start()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        self.target.setFormatter(fmt)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The message is merged now: its arguments may change once the caller moves on. The
        # rest of the formatting is left to the writing thread, the record itself handed over
        # (the queue never leaves the process, so nothing needs copying or pickling).
        record.msg = record.getMessage()
        record.args = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        while self.records.qsize() >= self.capacity and self.listener is not None:
            time.sleep(0.001)
        self.records.put(record)

    def flush(self) -> None:
        self.target.flush()

    def close(self) -> None:
        # Writes what is queued before the process exits (logging.shutdown closes handlers).
        if self.listener is not None:
            listener, self.listener = self.listener, None
            listener.stop()
        self.target.close()
        super().close()


def lean_records() -> None:
    """Records without what no line of ours shows: the caller's source location (a walk up the
    stack for every line), thread and process names. The logging HOWTO's optimisations; the
    access line per request is most of what the gateway logs, on its hot path."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the gateway and uvicorn (which applies it in every
    worker process): everything to standard output, as ``log_format`` ("json" or "text")."""
    formatter: dict[str, Any] = {"()": JsonFormatter if log_format == "json" else TextFormatter}
    handler = {
        "()": BackgroundStreamHandler,
        "stream": "ext://sys.stdout",
        "formatter": "default",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own loggers propagate to the root; its access log is replaced by ours.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def log_request(
    method: str, path: str, status: int, duration_s: float, operation: str, cache: str | None
) -> None:
    duration_ms = round(duration_s * 1000, 2)
    access_logger.info(
        "%s %s %s %.2fms %s",
        method,
        path,
        status,
        duration_ms,
        operation,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "durationMs": duration_ms,
            "operation": operation,
            "cache": cache,
        },
    )
