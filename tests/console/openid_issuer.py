"""A real OpenID issuer on loopback for the console's sign-in: oauth2-mock-server, run by
``tests/js/openid_issuer.mjs`` in a child process. It answers discovery, authorization (at once,
as a signed-in user would be sent back), the token endpoint (PKCE checked) and refresh; the
requests it answered are read back, as the test's evidence of what the browser sent."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.node_clients import SCRIPTS
from tests.processes import environment

Event = dict[str, Any]


class OpenIdIssuer:
    """The issuer; its access tokens carry ``audience``, ``tenants`` and ``roles`` for
    ``subject`` and live ``lifetime`` seconds."""

    def __init__(
        self,
        *,
        client_id: str,
        subject: str,
        tenants: list[str],
        roles: list[str],
        lifetime: int = 300,
        audience: str = "ehr-gateway",
    ) -> None:
        assert (SCRIPTS / "node_modules").is_dir(), (
            "the Node packages are not installed: run scripts/test"
        )
        options = {
            "clientId": client_id, "subject": subject, "tenants": tenants, "roles": roles,
            "lifetime": lifetime, "audience": audience,
        }  # fmt: skip
        self.process = subprocess.Popen(
            ["node", str(SCRIPTS / "openid_issuer.mjs"), json.dumps(options)],
            cwd=SCRIPTS,
            env=environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url: str = self.wait_for(lambda event: "url" in event, within=60)["url"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"printed": line}
            with self._lock:
                self.events.append(event)

    def wait_for(self, matches: Callable[[Event], bool], within: float = 120) -> Event:
        """The first event that ``matches``, waiting for it (a wait, not a timed assertion: a
        slow machine only makes it take longer)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                found = [event for event in self.events if matches(event)]
            if found:
                return found[0]
            assert self.process.poll() is None, f"the issuer exited: {self.events}"
            time.sleep(0.1)
        raise AssertionError(f"no such event within {within} s: {self.events}")

    def requests(self, kind: str) -> list[Event]:
        """What the browser sent: ``authorize`` queries, ``token`` forms."""
        with self._lock:
            return [event[kind] for event in self.events if kind in event]

    def tell(self, **change: Any) -> None:
        """Change what it does next (``refuseRefresh``, ``lifetime``)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(change) + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
