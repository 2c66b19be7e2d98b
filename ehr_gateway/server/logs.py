"""Structured logs: one JSON object per line (or plain text), each carrying the id of the request
being served, and an access line per HTTP request.

The request id is held in a context variable set by the request gate, so every line logged while
a request runs (a refusal, an internal error's detail) names it without being passed it.

Lines go out through server.log_output (one ordered buffer, written once per event-loop turn).
The access line, one per request, is built there straight from its values by the formatter
(``access_line``), to the same text a LogRecord of it would have been formatted to, whenever
logging is configured as the gateway configures it; otherwise (another handler attached, a
filter on the access logger) it is logged as a record like any other line.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import unicodedata
from contextvars import ContextVar
from typing import Any

import orjson

from ehr_gateway.server.log_output import LineHandler

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
ACCESS_LOGGER = "ehr_gateway.access"
ACCESS_MESSAGE = "%s %s %s %.2fms %s"
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
        # The second last formatted and its date and time of day, as one value: lines are
        # formatted on whichever thread logs them.
        self._second: tuple[int, bytes] = (-1, b"")
        self._templates: dict[tuple[Any, ...], tuple[bytes, bytes] | None] = {}

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
            return _access_json(entry).decode("ascii")
        return _ENCODER.encode(entry)

    def access_line(
        self, created: float, rid: str, method: str, path: str, status: int,
        duration_ms: float, operation: str | None, cache: str | None,
    ) -> bytes:  # fmt: skip
        """What ``format`` makes of the access logger's record of these values, as bytes.

        Requests repeat the same method, path, status, operation and cache: for each such
        request whose strings need no escaping, the line is one bytes template, put together
        once and kept (as many as MAX_ACCESS_TEMPLATES), its time, duration and request id
        filled in by one ``%``. Anything else is formatted from its record."""
        key = (method, path, status, operation, cache)
        templates: tuple[bytes, bytes] | None = self._templates.get(key, _UNSET)
        if templates is _UNSET:
            templates = _access_templates(*key)
            if len(self._templates) < MAX_ACCESS_TEMPLATES:
                self._templates[key] = templates
        if templates is not None and _plain(rid):
            second, milliseconds = self._moment(created)
            if rid and rid != "-":
                return templates[0] % (second, milliseconds, duration_ms, rid.encode(), duration_ms)
            return templates[1] % (second, milliseconds, duration_ms, duration_ms)
        record = access_record(created, rid, method, path, status, duration_ms, operation, cache)
        return self.format(record).encode("ascii")

    def _moment(self, created: float) -> tuple[bytes, int]:
        """The date and time of day to the second, and the milliseconds, of ``created`` as
        ``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`` writes it,
        the former formatted once a second (a third of an access line's cost otherwise)."""
        fraction, whole = math.modf(created)
        micro = round(fraction * 1e6)  # as datetime rounds a timestamp: half to even
        second = int(whole)
        if micro >= 1_000_000:  # rounded up into the next second
            second += 1
            micro -= 1_000_000
        cached, prefix = self._second
        if second != cached:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
            self._second = (second, prefix)
        return prefix, micro // 1000

    def _time(self, created: float) -> str:
        """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``."""
        second, milliseconds = self._moment(created)
        return f"{second.decode()}.{milliseconds:03d}+00:00"


# Access line templates a formatter keeps: one per method, path, status, operation and cache
# that requests have had (the operation is one of the schema's root fields; a client can make
# up methods, and those past the limit are put together each time instead).
MAX_ACCESS_TEMPLATES = 512
_UNSET: Any = object()


def _plain(text: str) -> bool:
    """Text that JSON writes as it is: printable ASCII without quotes or backslashes."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _access_templates(
    method: str, path: str, status: int, operation: str | None, cache: str | None
) -> tuple[bytes, bytes] | None:
    """An access line as a bytes ``%`` template, with its request id and without one (for the
    time to the second, its milliseconds, the duration in the message, [the request id,] the
    duration field); None when a string in it would need escaping."""
    if not (
        _plain(method)
        and _plain(path)
        and type(status) is int
        and (operation is None or _plain(operation))
        and (cache is None or _plain(cache))
    ):
        return None
    literal = {
        name: value.replace("%", "%%")
        for name, value in (("method", method), ("path", path), ("operation", str(operation)))
    }
    opening = (
        '{"time":"%s.%03d+00:00","level":"info","logger":"' + ACCESS_LOGGER + '","message":"'
        f'{literal["method"]} {literal["path"]} {status} %.2fms {literal["operation"]}"'
    )
    closing = (
        f',"method":"{literal["method"]}","path":"{literal["path"]}","status":{status},'
        '"durationMs":%r'
        + (f',"operation":"{literal["operation"]}"' if operation is not None else "")
        + (f',"cache":"{cache.replace("%", "%%")}"' if cache is not None else "")
        + "}"
    )
    with_id = f'{opening},"requestId":"%s"{closing}'
    return with_id.encode(), (opening + closing).encode()


def _access_json(entry: dict[str, Any]) -> bytes:
    """The access line holds strings and numbers only, which orjson writes as the standard
    encoder does while they are printable ASCII (the latter escapes DEL and everything past
    ASCII); any other line goes to the latter."""
    try:
        line = orjson.dumps(entry)
    except TypeError:
        pass
    else:
        if line.isascii() and b"\x7f" not in line:
            return line
    return _ENCODER.encode(entry).encode("ascii")


def access_record(
    created: float, rid: str, method: str, path: str, status: int,
    duration_ms: float, operation: str | None, cache: str | None,
) -> logging.LogRecord:  # fmt: skip
    """The access logger's record of these values, as its filter leaves it."""
    values = {
        "method": method, "path": path, "status": status, "durationMs": duration_ms,
        "operation": operation, "cache": cache,
    }  # fmt: skip
    record = access_logger.makeRecord(
        ACCESS_LOGGER, logging.INFO, "", 0, ACCESS_MESSAGE,
        (method, path, status, duration_ms, operation), None, extra=values,
    )  # fmt: skip
    record.created = created
    record.request_id = rid or "-"
    return record


def _access_message(
    method: str, path: str, status: int, duration_ms: float, operation: str | None
) -> str:
    return ACCESS_MESSAGE % (method, path, status, duration_ms, operation)


# What would end a text line early, or make one look like several to a reader of the log (line
# and paragraph separators), or reorder what a terminal shows (bidirectional marks, embeddings,
# overrides and isolates, as in "Trojan Source"), or hide in it (zero-width spaces and joiners,
# invisible operators, tag characters), or could not be written out at all (a lone surrogate):
# every character of Unicode's categories Cc, Cf, Zl, Zp and Cs.
# The ones below U+10000 are spelt out (finding them in unicodedata at import takes a tenth of a
# second; tests/server/test_log_escapes.py checks the list against the running Python's tables).
# The few above (tag characters, musical and shorthand format controls) are told from emoji and
# letters by unicodedata, in _escape, and only in text that is not all ASCII: a class reaching
# past U+FFFF cannot be one table lookup in re, and would slow down every line.
_BMP_CONTROLS = (
    r"\x00-\x1f\x7f-\x9f"  # Cc
    r"\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"  # Cf
    r"\u2028\u2029"  # Zl, Zp
    r"\ud800-\udfff"  # Cs
)
_CONTROL = re.compile(f"[{_BMP_CONTROLS}]")
_CONTROL_OR_ASTRAL = re.compile(f"[{_BMP_CONTROLS}\\U00010000-\\U0010ffff]")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}" if unicodedata.category(char) == "Cf" else char  # not emoji, letters


def escape_controls(text: str) -> str:
    """``text`` with every control, format (bidirectional, zero-width, tag), line or paragraph
    separator and lone surrogate character written as its escape (``\\x0a``, ``\\u202e``)."""
    if text.isascii():  # most lines; costs nothing to ask
        return _CONTROL.sub(_escape, text)
    return _CONTROL_OR_ASTRAL.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """Plain text lines, one per record. Messages carry what clients sent (a tenant id, a field
    name), so their control characters are escaped: a newline in a tenant id must not start a
    line of its own that reads as another log entry. An exception's traceback keeps its lines,
    each indented and escaped, so none of them reads as an entry either."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        # The second last formatted and its local date and time of day (see JsonFormatter).
        self._second: tuple[int, str] = (-1, "")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def access_line(
        self, created: float, rid: str, method: str, path: str, status: int,
        duration_ms: float, operation: str | None, cache: str | None,
    ) -> str:  # fmt: skip
        """What ``format`` makes of the access logger's record of these values."""
        second = int(created)
        cached, prefix = self._second
        if second != cached:
            # formatTime's default: local time, and the milliseconds as a LogRecord counts them.
            prefix = time.strftime(self.default_time_format, self.converter(created))
            self._second = (second, prefix)
        msecs = int((created - second) * 1000)
        message = _access_message(method, path, status, duration_ms, operation)
        return escape_controls(
            f"{prefix},{msecs:03d} INFO {ACCESS_LOGGER} [{rid or '-'}] {message}"
        )

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in text.splitlines())


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
        "()": LineHandler,
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
    method: str, path: str, status: int, duration_s: float, operation: str, cache: str | None,
    rid: str | None = None,
) -> None:  # fmt: skip
    """The access line of a request; ``rid``: its id, when the caller has it at hand (else the
    current request's, as the record's filter would take it)."""
    duration_ms = round(duration_s * 1000, 2)
    args = (method, path, status, duration_ms, operation)
    handler = _access_handler()
    if handler is not None:
        # The line the record below would be formatted to, without the record: its bytes
        # straight into the ordered buffer.
        formatter: JsonFormatter | TextFormatter = handler.formatter  # type: ignore[assignment]
        try:
            handler.write_line(
                formatter.access_line(time.time(), rid or request_id.get() or "-", *args, cache)
            )
        except RecursionError:
            raise
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": ACCESS_MESSAGE, "args": args}))
        return
    access_logger.info(
        ACCESS_MESSAGE,
        *args,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "durationMs": duration_ms,
            "operation": operation,
            "cache": cache,
        },
    )


def _access_handler() -> LineHandler | None:
    """The one handler an access record would reach, when it is a LineHandler whose formatter
    builds access lines and whose filters are the request id's alone; else None (the record
    goes through logging, to whatever else is attached: a test's capture, say)."""
    if not access_logger.isEnabledFor(logging.INFO) or access_logger.filters:
        return None
    found: logging.Handler | None = None
    logger: logging.Logger | None = access_logger
    while logger is not None:
        for handler in logger.handlers:
            if found is not None:
                return None
            found = handler
        logger = logger.parent if logger.propagate else None
    if (
        not isinstance(found, LineHandler)
        or found.level > logging.INFO
        or not isinstance(found.formatter, (JsonFormatter, TextFormatter))
    ):
        return None
    for added in found.filters:
        if not isinstance(added, RequestIdFilter):
            return None
    return found
