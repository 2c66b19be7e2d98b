"""The embedded database: the nx-27017 MongoDB wire-protocol server (SQLite underneath), run as a
child process on a free loopback port, with its data, log and pid file in the data dir.

The server asks no credentials of its clients, and its files are the database: the data dir is
private to the gateway's user (0700, files 0600), so other local users can neither read them nor
rewrite history behind the gateway's back. (A process of the same user can still reach the
port: history and the audit log are chained by a MAC so that such writes show. Production runs
on a MongoDB with authentication and TLS.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

PID_FILE = "nx-27017.pid"
LOG_FILE = "nx-27017.log"
DATABASE_DIR = "db"

_LAUNCH = "from nx_27017.nx_27017 import main; main()"
# What the server creates (databases, their journals, the log) is for the gateway's user only.
_PRIVATE_UMASK = 0o077


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedMongo:
    """Starts nx-27017 over ``data_dir`` and stops it. Data survives restarts."""

    def __init__(self, data_dir: Path, *, port: int = 0, startup_timeout: float = 20.0) -> None:
        self.data_dir = data_dir
        self.startup_timeout = startup_timeout
        self.port = port  # 0: a free one, chosen at start
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> str:
        make_private(self.data_dir)
        pid_file = self.data_dir / PID_FILE
        if pid_file.exists():
            stale = int(pid_file.read_text().strip() or 0)
            if stale and _alive(stale) and stale != os.getpid():
                raise EmbeddedDatabaseError(
                    f"the data dir {self.data_dir} is in use by another embedded database "
                    f"(pid {stale}); stop it or choose another EHRGW_DATA_DIR"
                )
        (self.data_dir / DATABASE_DIR).mkdir(mode=0o700, exist_ok=True)
        self.port = self.port or free_port()
        log = os.fdopen(
            os.open(self.data_dir / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab"
        )
        command = [
            sys.executable, "-c", _LAUNCH,
            "--data-dir", str(self.data_dir / DATABASE_DIR),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--log-file", str(self.data_dir / LOG_FILE),
            "--pid-file", str(pid_file),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            umask=_PRIVATE_UMASK,
        )
        log.close()  # the child holds its own descriptor; nx-27017 writes the pid file itself
        self._wait_until_ready()
        return self.url

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        client: MongoClient[dict[str, object]] = MongoClient(
            self.url, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedDatabaseError(
                        f"the embedded database exited with code {self._process.returncode}; "
                        f"see {self.data_dir / LOG_FILE}"
                    )
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise EmbeddedDatabaseError(
                            f"the embedded database did not answer within "
                            f"{self.startup_timeout:.0f}s; see {self.data_dir / LOG_FILE}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        (self.data_dir / PID_FILE).unlink(missing_ok=True)

    def kill(self) -> None:
        """End the server with SIGKILL, as a crash would: no shutdown, and its pid file stays
        behind for the next start to find stale."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

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
