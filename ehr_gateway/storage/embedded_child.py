"""The embedded database's launcher: nx-27017, bound to the life of the gateway that started it.

Run as ``python -m storage.embedded_child --gateway-pid PID --listen-fd FD <nx-27017 arguments>``.

The server serves on the listening socket FD, bound by the gateway and inherited: the gateway
keeps the port between servers (see storage.embedded). nx-27017 binds its own socket with
``asyncio.start_server(handler, host, port)``; here that call is given the inherited socket
instead.

A database
left running by a gateway that died keeps its pid file and port and blocks the next start on the
same data dir, so the server ends when its gateway does:

- on Linux the kernel sends SIGTERM when the parent goes (``PR_SET_PDEATHSIG``); the signal is
  tied to the *thread* that forked the child, which is why the gateway starts and restarts its
  database only from threads that live as long as it does (the main thread, and the supervisor
  thread that runs until the database is stopped);
- everywhere (and as a second guard on Linux) a daemon thread watches ``os.getppid()`` and ends
  the server when the parent changes (the child was re-parented: its gateway is gone).

nx-27017 ends on SIGTERM by exiting cleanly, which removes its pid file.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# How often the watcher looks at its parent: the next start on the data dir waits at most this
# long (plus the server's shutdown) when the parent-death signal is not available.
WATCH_INTERVAL_S = 0.5


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watcher thread still ends the server


def _watch_parent(gateway_pid: int) -> None:
    while os.getppid() == gateway_pid:
        time.sleep(WATCH_INTERVAL_S)
    # The server's own SIGTERM handler shuts it down cleanly, in its main thread.
    os.kill(os.getpid(), signal.SIGTERM)


def _serve_on(listener: socket.socket) -> None:
    """Make the server's ``asyncio.start_server`` serve on ``listener`` rather than bind one."""
    start_server: Callable[..., Any] = asyncio.start_server

    async def on_listener(
        client_connected_cb: Callable[..., Any],
        host: object = None,
        port: object = None,
        **options: Any,
    ) -> asyncio.Server:
        server: asyncio.Server = await start_server(client_connected_cb, sock=listener, **options)
        return server

    asyncio.start_server = on_listener


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if (
        len(arguments) < 4
        or arguments[0] != "--gateway-pid"
        or not arguments[1].isdigit()
        or arguments[2] != "--listen-fd"
        or not arguments[3].isdigit()
    ):
        print(
            "usage: python -m storage.embedded_child --gateway-pid PID --listen-fd FD "
            "[nx-27017 arguments]",
            file=sys.stderr,
        )
        return 2
    gateway_pid = int(arguments[1])
    _serve_on(socket.socket(fileno=int(arguments[3])))
    # A Ctrl-C at a terminal reaches the whole process group, the server too; but the gateway
    # stops its database itself, once it no longer needs it (and its supervisor would take an
    # early exit for a crash). Blocked here, SIGINT stays blocked in every thread of the server.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    _set_parent_death_signal()
    # The gateway may have died before the signal was asked for: then it will never come.
    if os.getppid() != gateway_pid:
        return 0
    threading.Thread(
        target=_watch_parent, args=(gateway_pid,), name="parent watcher", daemon=True
    ).start()
    from nx_27017.nx_27017 import main as serve

    sys.argv = ["nx_27017", *arguments[4:]]
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
