"""The embedded database: the nx-27017 MongoDB wire-protocol server (SQLite underneath), run as a
child process on a free loopback port, with its data, log and pid file in the data dir.

The server asks no credentials of its clients, and its files are the database: the data dir is
private to the gateway's user (0700, files 0600), so other local users can neither read them nor
rewrite history behind the gateway's back. (A process of the same user can still reach the
port: history and the audit log are chained by a MAC so that such writes show. Production runs
on a MongoDB with authentication and TLS.)

The server lives and dies with its gateway: it is started through ``storage.embedded_child``,
which ends it when the gateway goes; while the gateway serves, a supervisor thread restarts it
whenever it exits (a crash, a ``kill -9``) on the same data and port, so the gateway's clients,
which hold the URL, reconnect by themselves. The gateway, not the server, binds the port and
hands the listening socket to each server it starts: the port stays the gateway's while a server
is down, so no other process can take it and answer the gateway's clients in the database's
place (nothing on the wire tells one server from another), and clients that connect meanwhile
wait in the socket's queue for the next server instead of being refused.

Beside the pid file the gateway records who started the server, so that a later start can tell a
stale server of a dead gateway (which it stops) from one in use (which it leaves alone)."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

logger = logging.getLogger("ehr_gateway.embedded")

PID_FILE = "nx-27017.pid"
OWNER_FILE = "nx-27017.owner"  # who started the server: pids and start times of both
LOG_FILE = "nx-27017.log"
DATABASE_DIR = "db"

LAUNCHER = "ehr_gateway.storage.embedded_child"
# What the server creates (databases, their journals, the log) is for the gateway's user only.
_PRIVATE_UMASK = 0o077
# Restarts back off from the first to the last delay, doubling; a server that stayed up this long
# had recovered, and its next death starts from the first delay again.
RESTART_DELAY_S = (0.1, 5.0)
STABLE_AFTER_S = 30.0
# How long a stale server is given to end on SIGTERM before SIGKILL, and to go after that.
STALE_TERM_WAIT_S = 10.0
STALE_KILL_WAIT_S = 5.0
# Connections that may wait for a server to accept them (while one is restarted, say).
LISTEN_BACKLOG = 128


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` if need be and make it and everything in it the owner's only: 0700
    for directories, 0600 for files (symbolic links are left alone: not ours to change). Data
    dirs from earlier releases, whose files were created 0644, are tightened this way."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for root, directories, files in os.walk(data_dir):
        for name in directories:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o700)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o600)


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started; the message is one line for the operator."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ProcessInfo:
    state: str  # "Z": a zombie, gone but for its exit status
    started: str  # an opaque start time: with the pid, it names one process
    command: list[str]


_PROC = Path("/proc")


def process_info(pid: int) -> ProcessInfo | None:
    """What the system says of process ``pid``; None when there is none (or none we may see).
    /proc where there is one, ``ps`` elsewhere."""
    if (_PROC / "self" / "stat").exists():
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
            command = (_PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        # The name in parentheses may hold spaces and parentheses: fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        return ProcessInfo(
            state=fields[0],
            started=fields[19],
            command=[part.decode(errors="replace") for part in command.split(b"\0") if part],
        )
    values = []
    for field in ("stat=", "lstart=", "command="):
        try:
            answer = subprocess.run(
                ["ps", "-o", field, "-p", str(pid)],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        if answer.returncode != 0 or not answer.stdout.strip():
            return None
        values.append(answer.stdout.strip())
    return ProcessInfo(state=values[0][:1], started=values[1], command=values[2].split())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    info = process_info(pid)
    return info is None or info.state != "Z"


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class EmbeddedMongo:
    """Starts nx-27017 over ``data_dir`` and stops it. Data survives restarts. With
    ``supervise()`` it is restarted whenever it exits, until ``stop()``."""

    def __init__(self, data_dir: Path, *, port: int = 0, startup_timeout: float = 20.0) -> None:
        self.data_dir = data_dir
        self.startup_timeout = startup_timeout
        self.port = port  # 0: a free one, chosen at start
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self._started_at = 0.0
        # Held while a process is launched or taken away, so that stop() and a restart by the
        # supervisor never both think they own one.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def start(self) -> str:
        make_private(self.data_dir)
        self._stopping.clear()
        pid_file = self.data_dir / PID_FILE
        if pid_file.exists():
            stale = int(pid_file.read_text().strip() or 0)
            if stale and stale != os.getpid() and _alive(stale):
                self._stop_stale(stale)
            pid_file.unlink(missing_ok=True)  # names no live server: nx-27017 would refuse it
        (self.data_dir / DATABASE_DIR).mkdir(mode=0o700, exist_ok=True)
        self._listen()
        self._launch()
        return self.url

    def _listen(self) -> socket.socket:
        """The server's listening socket, bound once (on ``port``, or a free one) and kept until
        ``stop()``: every server started meanwhile serves on it."""
        if self._listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A port whose last connections linger in TIME_WAIT is free (as servers bind).
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(("127.0.0.1", self.port))
                listener.listen(LISTEN_BACKLOG)
            except OSError as error:
                listener.close()
                if error.errno == errno.EADDRINUSE:
                    raise EmbeddedDatabaseError(
                        f"port {self.port} of the embedded database is in use by another process"
                    ) from None
                raise
            self._listener = listener
            self.port = int(listener.getsockname()[1])
        return self._listener

    def command(self, gateway_pid: int, listener_fd: int) -> list[str]:
        """The command line of the server (its launcher) for the gateway ``gateway_pid``, serving
        on the inherited socket ``listener_fd``."""
        data_dir = self.data_dir.absolute()
        return [
            sys.executable, "-m", LAUNCHER, "--gateway-pid", str(gateway_pid),
            "--listen-fd", str(listener_fd),
            "--data-dir", str(data_dir / DATABASE_DIR),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--log-file", str(data_dir / LOG_FILE),
            "--pid-file", str(data_dir / PID_FILE),
        ]  # fmt: skip

    def _launch(self) -> None:
        """Start the server on the listening socket and wait until it answers."""
        listener = self._listen()
        log = os.fdopen(
            os.open(self.data_dir / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab"
        )
        with log, self._lock:
            if self._stopping.is_set():
                raise EmbeddedDatabaseError("the embedded database is being stopped")
            # The child holds its own descriptor of the log; nx-27017 writes the pid file itself.
            process = subprocess.Popen(
                self.command(os.getpid(), listener.fileno()),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                umask=_PRIVATE_UMASK,
                pass_fds=(listener.fileno(),),
            )
            self._process = process
            self._started_at = time.monotonic()
            self._write_owner(process.pid)
        self._wait_until_ready(process)

    def _write_owner(self, server_pid: int) -> None:
        gateway, server = process_info(os.getpid()), process_info(server_pid)
        record = {
            "gatewayPid": os.getpid(),
            "gatewayStarted": gateway.started if gateway else None,
            "serverPid": server_pid,
            # Set at fork, kept through exec: with the pid, it names this one process.
            "serverStarted": server.started if server else None,
        }
        path = self.data_dir / OWNER_FILE
        partial = path.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(record, file)
        partial.replace(path)

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client: MongoClient[dict[str, object]] = MongoClient(
            self.url, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        try:
            while True:
                if process.poll() is not None:
                    raise EmbeddedDatabaseError(
                        f"the embedded database {_exit_reason(process.returncode)}; "
                        f"see {self.data_dir / LOG_FILE}"
                    )
                if self._stopping.is_set():
                    raise EmbeddedDatabaseError("the embedded database is being stopped")
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        _end(process)
                        (self.data_dir / PID_FILE).unlink(missing_ok=True)
                        raise EmbeddedDatabaseError(
                            f"the embedded database did not answer within "
                            f"{self.startup_timeout:.0f}s; see {self.data_dir / LOG_FILE}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def _stop_stale(self, pid: int) -> None:
        """Stop server ``pid``, named by the pid file, if it provably is a stale server of this
        data dir: started by a gateway that is gone, and still our launcher on this data dir
        (the pid was not reused). Anything else is refused: it may be in use."""
        refusal = EmbeddedDatabaseError(
            f"the data dir {self.data_dir} is in use by another embedded database "
            f"(pid {pid}); stop it or choose another EHRGW_DATA_DIR"
        )
        try:
            record = json.loads((self.data_dir / OWNER_FILE).read_text())
            gateway_pid, gateway_started = int(record["gatewayPid"]), record["gatewayStarted"]
            server_pid, server_started = int(record["serverPid"]), record["serverStarted"]
        except (OSError, ValueError, KeyError, TypeError):
            raise refusal from None
        if server_pid != pid or gateway_pid == os.getpid():
            raise refusal
        gateway = process_info(gateway_pid)
        gateway_lives = gateway is not None and gateway.state != "Z"
        if gateway_lives and gateway_started in (None, gateway.started if gateway else None):
            raise refusal  # its gateway lives on (or we cannot tell it from another process)
        server = process_info(pid)
        if (
            server is None
            or server_started is None
            or server.started != server_started
            or not self._is_our_server(server.command, gateway_pid)
        ):
            raise refusal  # not the process the record names, or not our launcher
        logger.warning(
            "stopping the embedded database (pid %d) left on %s by gateway %d, which is gone",
            pid, self.data_dir, gateway_pid,
        )  # fmt: skip
        for sent, wait in (
            (signal.SIGTERM, STALE_TERM_WAIT_S),
            (signal.SIGKILL, STALE_KILL_WAIT_S),
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sent)
                if sent == signal.SIGTERM:
                    os.kill(pid, signal.SIGCONT)  # a stopped (frozen) server would only hold it
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _alive(pid):
                return
        raise refusal

    def _is_our_server(self, command: list[str], gateway_pid: int) -> bool:
        """Whether ``command`` is the launcher (as the interpreter's module, not text somewhere
        in its arguments) started by gateway ``gateway_pid`` on this data dir."""
        database_dir = str(self.data_dir.absolute() / DATABASE_DIR)
        launched = command[1:5] == ["-m", LAUNCHER, "--gateway-pid", str(gateway_pid)]
        on_this_dir = any(
            command[index : index + 2] == ["--data-dir", database_dir]
            for index in range(len(command))
        )
        return launched and on_this_dir

    def supervise(self) -> None:
        """Restart the server whenever it exits, on the same data and port, until ``stop()``.
        The supervisor thread blocks in ``wait()``, which reaps a dead server at once. It also
        forks the restarted servers, whose parent-death signal is tied to it: it lives until
        ``stop()``, which ends the server first (see storage.embedded_child)."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(
                target=self._supervise, name="embedded database supervisor", daemon=True
            )
            self._supervisor.start()

    def _supervise(self) -> None:
        delay = RESTART_DELAY_S[0]
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            up = time.monotonic() - self._started_at
            if up >= STABLE_AFTER_S:
                delay = RESTART_DELAY_S[0]
            logger.error(
                "the embedded database (pid %d) %s after %.1f s up; restarting it on port %d",
                process.pid, _exit_reason(code), up, self.port,
            )  # fmt: skip
            pid_file = self.data_dir / PID_FILE
            with contextlib.suppress(OSError, ValueError):
                if int(pid_file.read_text().strip() or 0) == process.pid:
                    pid_file.unlink()  # nx-27017 could not remove it: it was killed
            while not self._stopping.wait(delay):
                try:
                    self._launch()
                except (EmbeddedDatabaseError, OSError) as error:
                    delay = min(delay * 2, RESTART_DELAY_S[1])
                    if not self._stopping.is_set():
                        logger.error(
                            "the embedded database did not start again (%s); retrying in %.1f s",
                            error, delay,
                        )  # fmt: skip
                    continue
                delay = min(delay * 2, RESTART_DELAY_S[1])
                self.restarts += 1
                logger.warning(
                    "the embedded database is back (pid %d) on port %d",
                    self._process.pid if self._process else 0, self.port,
                )  # fmt: skip
                break

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _end(process)
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(self.startup_timeout + 5)
        self._close_listener()
        (self.data_dir / PID_FILE).unlink(missing_ok=True)
        (self.data_dir / OWNER_FILE).unlink(missing_ok=True)

    def kill(self) -> None:
        """End the server with SIGKILL, as a crash would: no shutdown, and its pid file stays
        behind for the next start to find stale. Nothing restarts it."""
        self._stopping.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._close_listener()  # as the crash of the process holding it would

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 10 s; reaped either way. A server that
    is stopped (SIGSTOP) holds SIGTERM until it continues: it is continued, so that it ends now
    rather than at the SIGKILL."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
