"""The log's way out: every line, access lines and other loggers' alike, appended to one ordered
buffer that is written with one system call per event-loop turn.

A line is formatted where it is logged. On the event loop it joins the buffer and a write of the
whole buffer is scheduled for the end of the loop's turn, so the requests served in one turn
share one system call and no other thread takes part (handing each line to a writer thread cost
the loop more than formatting it: a wake-up and a GIL hand-over per line, on cores the load
generator and the database share). Anywhere else (another thread, no loop running) the buffer is
written at once, after the lines the loop logged before it, so lines keep the order they were
logged in.

The write blocks, as a stream handler's does: when standard output does not drain (a reader that
stopped), the loop waits in it and requests wait with it, rather than the process holding lines
without bound. The buffer never holds more than ``limit`` bytes (a loop turn that logs more
writes them at once), and whatever it holds is written when logging shuts down.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
import traceback
from typing import IO

# About 250 access lines: past this a loop turn writes at once instead of at its end.
DEFAULT_LIMIT = 64 * 1024


class LineWriter:
    """Lines (each ending in a newline) to ``stream``, in order, batched per event-loop turn."""

    def __init__(self, stream: IO[str], limit: int = DEFAULT_LIMIT) -> None:
        self._stream = stream
        self._limit = limit
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._size = 0
        # The loop a write of the buffer is scheduled on (None: none is), and its thread. A loop
        # closed before it ran the write leaves it here; a line logged on another thread's loop,
        # or on a new loop of this thread, schedules its own. (A loop that stopped without
        # closing and another run on its thread meanwhile: their lines wait for its next turn,
        # a write from elsewhere, the limit or shutdown.)
        self._scheduled: asyncio.AbstractEventLoop | None = None
        self._scheduled_thread = 0
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self.errors = getattr(stream, "errors", None) or "strict"
        buffer = getattr(stream, "buffer", None)
        self._binary: io.BufferedIOBase | None = (
            buffer if isinstance(buffer, io.BufferedIOBase) else None
        )

    def write(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            if self._size < self._limit:
                scheduled = self._scheduled
                if (
                    scheduled is not None
                    and self._scheduled_thread == threading.get_ident()
                    and not scheduled.is_closed()
                ):
                    # Logged on the loop that will write it: the usual case, told apart without
                    # asking for the running loop (in Python 3.11 a getpid system call each).
                    return
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    self._scheduled = loop
                    self._scheduled_thread = threading.get_ident()
                    loop.call_soon(self._scheduled_write, loop)
                    return
            self._write_out()

    def flush(self) -> None:
        with self._lock:
            self._write_out()

    def _scheduled_write(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self._scheduled is loop:
                self._scheduled = None
            try:
                self._write_out()
            except Exception:
                # As logging.Handler.handleError reports a line it could not write: not through
                # the log (that is what failed), nor to the loop's exception handler (which logs).
                if logging.raiseExceptions and sys.stderr:
                    traceback.print_exc(file=sys.stderr)

    def _write_out(self) -> None:
        """Writes the buffer (the lock held: other threads' lines wait behind it)."""
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        self._size = 0
        stream = self._stream
        if self._binary is not None:
            stream.flush()  # anything printed to the stream goes first
            self._binary.write(data)
            self._binary.flush()
        else:
            stream.write(data.decode(self.encoding, self.errors))
            stream.flush()


class LineHandler(logging.Handler):
    """A handler that formats each record where it is logged and writes it through a
    LineWriter. The gateway's access line skips the record altogether (logs.log_request hands
    the formatter's bytes to ``write_line``)."""

    def __init__(self, stream: IO[str] | None = None, limit: int = DEFAULT_LIMIT) -> None:
        super().__init__()
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.writer = LineWriter(self.stream, limit)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str | bytes) -> None:
        """One formatted line (bytes: already encoded), its newline added here."""
        writer = self.writer
        if isinstance(line, bytes):
            writer.write(line + b"\n")
        else:
            writer.write((line + "\n").encode(writer.encoding, writer.errors))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        try:
            self.flush()
        except (OSError, ValueError):  # a stream closed or gone at exit: nothing to write to
            pass
        finally:
            super().close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} ({logging.getLevelName(self.level)})>"
