"""The ehr-gateway command: serve, token, rotate-secrets, verify-audit, chain-legacy-history,
export-schema, export-possible-types, export-console-schema."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import uvicorn

from ehr_gateway.server.config import ConfigError, GatewayConfig, is_loopback_host, load_config
from ehr_gateway.server.http_protocol import set_limits
from ehr_gateway.server.logs import escape_controls

if TYPE_CHECKING:
    from ehr_gateway.storage.secrets import SecretBox

Done = TypeVar("Done")


def _fail(message: str) -> int:
    print(f"ehr-gateway: {message}", file=sys.stderr)
    return 2


class _CannotRun(Exception):
    """Why a command cannot run at all (said by ``_fail``, exit status 2)."""


def _deployment_box(config: GatewayConfig) -> SecretBox:
    """The deployment's existing key, never a new one: entries MACed with another key would
    verify under none, and entries signed with a new one under no gateway's."""
    from ehr_gateway.storage.secrets import KEY_FILE, SecretBox, SecretBoxError

    try:
        if config.encryption_key:
            return SecretBox.from_base64(config.encryption_key, config.previous_encryption_keys)
        if (config.data_dir / KEY_FILE).exists():
            return SecretBox.from_data_dir(config.data_dir)
    except SecretBoxError as error:
        raise _CannotRun(str(error)) from error
    raise _CannotRun(f"no EHRGW_ENCRYPTION_KEY and no key file {KEY_FILE} in {config.data_dir}")


def _on_database(
    config: GatewayConfig, work: Callable[[str], Coroutine[Any, Any, Done]], failing: str
) -> Done:
    """``work(url)`` on the configured database, or on the embedded one started for it (run
    while no gateway serves it) and stopped after; ``failing`` says what a database error
    kept the command from doing."""
    import asyncio

    from pymongo.errors import PyMongoError

    from ehr_gateway.storage.client import reason
    from ehr_gateway.storage.embedded import EmbeddedDatabaseError, EmbeddedMongo

    embedded = None
    url = config.mongodb_url
    if url is None:
        embedded = EmbeddedMongo(config.data_dir)
        try:
            url = embedded.start()
        except EmbeddedDatabaseError as error:
            raise _CannotRun(str(error)) from error
    try:
        return asyncio.run(work(url))
    except PyMongoError as error:
        raise _CannotRun(f"{failing}: {reason(error)}") from error
    finally:
        if embedded is not None:
            embedded.stop()


def _check_port(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use; set --port or EHRGW_PORT"
            return f"cannot listen on {host}:{port}: {error.strerror}"
    return None


def _raise_open_files_limit() -> None:
    """Every connection holds a descriptor, and a soft limit of 1024 (a common default) runs out
    long before memory or CPU do: raise it to what the system allows this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _check_database(config: GatewayConfig) -> str | None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    assert config.mongodb_url is not None
    client: MongoClient[dict[str, object]] = MongoClient(
        config.mongodb_url, serverSelectionTimeoutMS=config.db_timeout_ms
    )
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        reason = str(error).split(",")[0].split("\n")[0]
        return f"cannot reach the database at EHRGW_MONGODB_URL ({reason})"
    finally:
        client.close()
    return None


# How long a shutdown past its timeout waits for the embedded database to stop, and for the
# log's last lines to be written, before exiting (the two at once).
_LAST_STEPS_S = 0.5


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down, which would end the process by the
    signal before any ``finally`` runs. A stop asked for is a clean exit: ``on_exit`` runs (the
    embedded database stops) and the process exits with status 0.

    A stop takes at most ``shutdown_timeout`` seconds (EHRGW_SHUTDOWN_TIMEOUT_S), whatever holds
    it: open connections are given most of it, closing the database the rest, and a database
    that is stalled or gone can hold the driver, or a task that does not take its cancellation,
    past both. An orchestrator that waits that long and then kills the process would lose the
    embedded database's clean stop: past the timeout the process ends itself."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_exit: Callable[[], None] | None,
        shutdown_timeout: float | None = None,
    ) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._shutdown_timeout = shutdown_timeout
        self._watchdog: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._watchdog is None and self._shutdown_timeout is not None:
            # Ending takes up to _LAST_STEPS_S of its own: started that much earlier.
            self._watchdog = threading.Timer(
                max(0.0, self._shutdown_timeout - _LAST_STEPS_S), self._end_now
            )
            self._watchdog.daemon = True
            self._watchdog.start()

    def _end_now(self) -> None:
        deadline = time.monotonic() + _LAST_STEPS_S
        # Written by a thread of their own: standard error or output that does not drain (a log
        # shipper that stopped reading, the very thing that may be holding the stop) would hold
        # this one too, and the process past its timeout.
        last_words = threading.Thread(target=self._last_words, daemon=True)
        last_words.start()
        if self._on_exit:
            # The embedded database is stopped if it will stop at once; it is not waited for.
            stopping = threading.Thread(target=self._on_exit, daemon=True)
            stopping.start()
            stopping.join(max(0.0, deadline - time.monotonic()))
        last_words.join(max(0.0, deadline - time.monotonic()))
        os._exit(0)

    def _last_words(self) -> None:
        """The watchdog's message, then what the log still holds, flushed as logging's own exit
        handler would (os._exit runs none): lines the event loop logged in a turn it has not
        finished, and, when standard output drains in time, the write the loop is stuck in,
        which this waits for."""
        with contextlib.suppress(Exception):
            print(
                f"ehr-gateway: the shutdown did not finish within {self._shutdown_timeout:g}s "
                "(EHRGW_SHUTDOWN_TIMEOUT_S); exiting",
                file=sys.stderr,
                flush=True,
            )
        with contextlib.suppress(Exception):
            logging.shutdown()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self._on_exit:
                    self._on_exit()
                self._captured_signals.clear()


def _serve_workers(config: GatewayConfig, uvicorn_config: uvicorn.Config) -> None:
    """``workers`` processes on one listening socket, each a whole gateway (its own change feed
    and caches, as replicas are). They read their configuration from the environment."""
    from uvicorn.supervisors import Multiprocess

    from ehr_gateway.runtime import dev_tokens
    from ehr_gateway.storage.secrets import SecretBox

    assert config.mongodb_url is not None
    os.environ["EHRGW_MONGODB_URL"] = config.mongodb_url  # the embedded server's, when started
    # Keys the workers would otherwise race to create in the data dir.
    if config.encryption_key is None:
        SecretBox.from_data_dir(config.data_dir)
    if config.development:
        dev_tokens.signing_key(config.data_dir)
    Multiprocess(uvicorn_config, sockets=[uvicorn_config.bind_socket()]).run()


def serve(config: GatewayConfig) -> int:
    from ehr_gateway.server.app import create_app, freeze_startup_heap, schema_for
    from ehr_gateway.server.logs import log_config
    from ehr_gateway.storage.embedded import EmbeddedDatabaseError, EmbeddedMongo

    if config.development and not is_loopback_host(config.host):
        return _fail(
            f"development mode (no EHRGW_AUTH_ISSUER) listens on loopback only, not on "
            f"{config.host}; set EHRGW_AUTH_ISSUER to serve other hosts"
        )
    problem = _check_port(config.host, config.port)
    if problem:
        return _fail(problem)
    try:
        schema_for(config)  # a manifest that cannot be used stops here, before the database
    except ConfigError as error:
        return _fail(str(error))
    embedded = None
    if config.mongodb_url is None:
        embedded = EmbeddedMongo(config.data_dir)
        try:
            config = config.model_copy(update={"mongodb_url": embedded.start()})
        except EmbeddedDatabaseError as error:
            return _fail(str(error))
        embedded.supervise()  # restarted whenever it dies, until the gateway stops it
        print(f"ehr-gateway: embedded database in {config.data_dir}", file=sys.stderr)
    try:
        problem = _check_database(config)
        if problem:
            return _fail(problem)
        where = f"http://{config.host}:{config.port}/graphql"
        print(
            f"ehr-gateway: GraphQL at {where}"
            + (" (GraphiQL in a browser)" if config.introspection_enabled else ""),
            file=sys.stderr,
        )
        if config.development:
            print(
                "ehr-gateway: development mode: only tokens minted here are accepted; get one "
                "with: ehr-gateway token --tenant TENANT --role integrator "
                "(send it as 'Authorization: Bearer <token>')",
                file=sys.stderr,
            )
        _raise_open_files_limit()
        uvicorn_config = uvicorn.Config(
            "ehr_gateway.server.app:app_from_environment"
            if config.workers > 1
            else create_app(config),
            factory=config.workers > 1,
            host=config.host,
            port=config.port,
            workers=config.workers,
            # Open connections get the shutdown timeout less what closing the database needs.
            timeout_graceful_shutdown=max(
                0, int(config.shutdown_timeout_s - config.shutdown_close_s)
            ),
            log_config=log_config(config.log_format, config.log_level),
            access_log=False,  # the gateway logs each request itself, with its request id
            # A WebSocket message is capped like a request body; uvicorn refuses a larger one
            # from its frame header (close 1009) before reading it.
            ws_max_size=config.max_body_bytes,
            # uvicorn gives a request as long as it likes to arrive; a slow client must not.
            http=set_limits(config.request_read_timeout_s, config.max_body_bytes),
            # A new worker answers the supervisor's health check only once it has imported the
            # app and built its schema; on a loaded machine that takes longer than uvicorn's 5 s,
            # and a worker declared dead is killed and replaced by another that is as slow.
            timeout_worker_healthcheck=30,
            # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise (or from
            # FORWARDED_ALLOW_IPS): a same-host client would choose its own address.
            proxy_headers=bool(config.forwarded_allow_ips.strip()),
            forwarded_allow_ips=config.forwarded_allow_ips.strip() or [],
        )
        if config.workers > 1:
            _serve_workers(config, uvicorn_config)
        else:
            freeze_startup_heap()
            _Server(
                uvicorn_config,
                on_exit=embedded.stop if embedded else None,
                shutdown_timeout=config.shutdown_timeout_s,
            ).run()
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _answers(host: str, port: int) -> bool:
    """Whether a server accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def token(config: GatewayConfig, args: argparse.Namespace) -> int:
    """A token for the development gateway that uses this data dir. The key is the gateway's:
    minting with a key made here, in a directory no gateway uses, gives a token every running
    gateway refuses ("signed by an unknown key"), so a key is made only when asked for (--init)
    and never while a server listens on the configured port (a gateway that keeps its key
    elsewhere)."""
    from ehr_gateway.runtime import dev_tokens
    from ehr_gateway.runtime.access import Role

    if not config.development:
        return _fail("tokens are minted only in development mode (EHRGW_AUTH_ISSUER is set)")
    known = {role.value for role in Role}
    unknown = [role for role in args.role if role not in known]
    if unknown:
        return _fail(f"unknown role {unknown[0]!r}; roles: {', '.join(sorted(known))}")
    key_file = (config.data_dir / dev_tokens.KEY_FILE).absolute()
    if not key_file.exists():
        if _answers(config.host, config.port):
            return _fail(
                f"no signing key {key_file}, and a server listens on {config.host}:{config.port}: "
                "a gateway started elsewhere keeps its key in its own data dir and would refuse "
                "a token signed here; run this where the gateway was started, or set "
                "--data-dir (EHRGW_DATA_DIR) to its data dir"
            )
        if not args.init:
            return _fail(
                f"no signing key {key_file}: a gateway makes it when it starts with this data "
                "dir; run this where the gateway was started, set --data-dir (EHRGW_DATA_DIR) "
                "to its data dir, or pass --init to make a key here"
            )
    made = not key_file.exists()
    minted = dev_tokens.mint(
        config.data_dir, tenants=args.tenant, roles=args.role, subject=args.subject, ttl_s=args.ttl
    )
    print(
        f"ehr-gateway: {'made and signed with' if made else 'signed with'} {key_file}; only a "
        "gateway using this data dir accepts the token",
        file=sys.stderr,
    )
    print(minted)
    return 0


def rotate_secrets(config: GatewayConfig) -> int:
    import asyncio

    from ehr_gateway.storage.rotation import RotationError, rotate

    try:
        counts = asyncio.run(
            rotate(
                mongodb_url=config.mongodb_url,
                database=config.database,
                data_dir=config.data_dir,
                encryption_key=config.encryption_key,
                previous_keys=config.previous_encryption_keys,
            )
        )
    except RotationError as error:
        return _fail(str(error))
    print(
        f"ehr-gateway: re-encrypted {counts.secrets} secrets in {counts.documents} documents "
        f"under key {counts.key_id}; re-MACed {counts.remaced} history and audit entries"
    )
    if counts.unverified:
        print(
            f"ehr-gateway: {counts.unverified} history or audit entries failed verification and "
            "keep the MAC they had; see ehr-gateway verify-audit",
            file=sys.stderr,
        )
    for secret in counts.unreadable:
        # Where a secret sits is read from the database (a provider's key, a version), which a
        # database writer may have filled with line breaks or terminal escapes: printed escaped.
        where = "settings" if secret.version is None else f"history version {secret.version}"
        print(
            f"ehr-gateway: tenant {secret.tenant_id!r}, {escape_controls(where)}: "
            f"{escape_controls(secret.path)} was left as it was: "
            f"{escape_controls(secret.reason)}",
            file=sys.stderr,
        )
    if counts.unreadable:
        kept = "" if config.encryption_key else "; the key file keeps its previous keys"
        # 1, not 2: the rotation ran through; what it could not do is listed above.
        print(f"ehr-gateway: {len(counts.unreadable)} secrets were not re-encrypted{kept}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def verify_audit(config: GatewayConfig, tenant: str | None) -> int:
    """Verify history and audit log chains; exit status 1 when any link is broken."""
    from ehr_gateway.storage.integrity import describe, verify_database

    try:
        box = _deployment_box(config)
        verified = _on_database(
            config,
            lambda url: verify_database(url, config.database, box.chain, tenant),
            "cannot read the database",
        )
    except _CannotRun as why:
        return _fail(str(why))
    # Tenant ids and what is described come from the database, which the command checks
    # because it may have been edited: a line break or terminal escape in them must not print
    # a line of its own ("tenant x: intact") or erase the one naming a broken chain.
    for result in verified:
        tenant_id = escape_controls(result.tenant_id)
        print(f"tenant {tenant_id}: {'intact' if result.intact else 'BROKEN'}")
        print(f"  {escape_controls(describe(result.history))}")
        print(f"  {escape_controls(describe(result.audit))}")
    broken = [escape_controls(result.tenant_id) for result in verified if not result.intact]
    if broken:
        print(f"ehr-gateway: broken chains in {len(broken)} of {len(verified)} tenants: "
              f"{', '.join(broken)}", file=sys.stderr)  # fmt: skip
        return 1
    print(f"ehr-gateway: {len(verified)} tenants verified, every chain intact", file=sys.stderr)
    return 0


def chain_legacy_history(config: GatewayConfig, tenant: str) -> int:
    """Sign one tenant's history from before the chain into it, once an operator has checked
    it; exit status 1 when it was left as it was."""
    from ehr_gateway.storage.client import connect
    from ehr_gateway.storage.legacy import Adopted, adopt_legacy_history
    from ehr_gateway.storage.migrations import seal_stored_secrets

    async def adopt(url: str) -> Adopted:
        client = connect(url)
        try:
            db = client[config.database]
            # Signed as today's gateways store them: secrets sealed, fingerprints bound (the
            # migration leaves chained entries alone).
            await seal_stored_secrets(db, box)
            return await adopt_legacy_history(db, box.chain, tenant)
        finally:
            await client.close()

    try:
        box = _deployment_box(config)
        result = _on_database(config, adopt, "cannot use the database")
    except _CannotRun as why:
        return _fail(str(why))
    tenant_id = escape_controls(result.tenant_id)
    if result.refused is not None:
        print(f"tenant {tenant_id}: LEFT AS IT WAS: {escape_controls(result.refused)}")
        print(f"ehr-gateway: tenant {tenant_id} left as it was", file=sys.stderr)
        return 1
    if result.signed:
        print(
            f"tenant {tenant_id}: signed {result.signed} entries from before the chain "
            f"(versions 1 to {result.signed}); history verified up to version {result.signed}"
        )
    else:
        print(f"tenant {tenant_id}: nothing to adopt")
    return 0


def export_schema() -> int:
    from ehr_gateway.gql.schema import schema

    sys.stdout.write(schema.as_str() + "\n")
    return 0


def export_console_schema() -> int:
    from ehr_gateway.gql.console_forms import console_forms_json

    sys.stdout.write(console_forms_json())
    return 0


def export_possible_types() -> int:
    from ehr_gateway.gql.possible_types import possible_types_json

    sys.stdout.write(possible_types_json())
    return 0


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one (not "None" for those without)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or action.required:
            return action.help
        return super()._get_help_string(action)


def _default(setting: str) -> object:
    """A setting's default, as the configuration model has it (so --help cannot drift)."""
    return GatewayConfig.model_fields[setting].default


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ehr-gateway", description="EHR configuration gateway (GraphQL)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the gateway", formatter_class=_HelpWithDefaults
    )
    serve_parser.add_argument(
        "--host", help=f"address to listen on (EHRGW_HOST; default: {_default('host')})"
    )
    serve_parser.add_argument(
        "--port", type=int, help=f"port to listen on (EHRGW_PORT; default: {_default('port')})"
    )
    serve_parser.add_argument(
        "--workers", type=int,
        help=f"worker processes on the one port (EHRGW_WORKERS; default: {_default('workers')})",
    )  # fmt: skip
    token_parser = commands.add_parser(
        "token",
        help="mint a short-lived token for the development gateway",
        description="Mint a token with the signing key of the development gateway that uses "
        "the data dir; the key file used is named on stderr.",
        formatter_class=_HelpWithDefaults,
    )
    token_parser.add_argument(
        "--tenant", action="append", required=True, help='a tenant id, repeatable; "*" for all'
    )
    token_parser.add_argument(
        "--role", action="append", required=True,
        help="viewer, editor, integrator or service; repeatable",
    )  # fmt: skip
    token_parser.add_argument("--subject", default="developer", help="the token's subject")
    token_parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token_parser.add_argument(
        "--data-dir", type=Path,
        help="the data dir of the gateway the token is for "
        f"(EHRGW_DATA_DIR; default: {_default('data_dir')})",
    )  # fmt: skip
    token_parser.add_argument(
        "--init", action="store_true",
        help="make a signing key in the data dir when it has none (a gateway started with this "
        "data dir later accepts the token); refused while a server listens on EHRGW_PORT",
    )  # fmt: skip
    commands.add_parser(
        "rotate-secrets",
        help="re-encrypt every stored secret under EHRGW_ENCRYPTION_KEY (old keys in "
        "EHRGW_PREVIOUS_ENCRYPTION_KEYS)",
    )
    verify_parser = commands.add_parser(
        "verify-audit",
        help="verify that history and the audit log are as the gateway wrote them; prints each "
        "tenant's first broken link, exit status 1 if there is one",
    )
    verify_parser.add_argument("--tenant", help="only this tenant (default: every tenant)")
    adopt_parser = commands.add_parser(
        "chain-legacy-history",
        help="sign one tenant's history, written before the chain existed, into it once you "
        "have checked it (until then no rollback, read or subscriber takes it); run while no "
        "gateway writes",
    )
    adopt_parser.add_argument(
        "--tenant", required=True,
        help="the tenant to adopt, one at a time; refused when anything shows it was ever "
        "chained (its history was then stripped of its links: restore it from a backup)",
    )  # fmt: skip
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    commands.add_parser(
        "export-possible-types",
        help="print each union and interface with its member types (JSON), the possibleTypes "
        "of Apollo Client's and urql's normalised caches",
    )
    commands.add_parser(
        "export-console-schema",
        help="print the admin console's description of the settings page (JSON): "
        "console/schema.json",
    )
    args = parser.parse_args(argv)
    if args.command == "export-console-schema":
        return export_console_schema()
    if args.command == "export-schema":
        return export_schema()
    if args.command == "export-possible-types":
        return export_possible_types()
    overrides = {
        key: getattr(args, key, None)
        for key in ("host", "port", "workers", "data_dir")
        if getattr(args, key, None)
    }
    try:
        config = load_config(**overrides)
    except ConfigError as error:
        return _fail(str(error))
    try:
        if args.command == "token":
            if not 1 <= args.ttl <= 86_400:
                return _fail("--ttl must be 1 to 86400 seconds")
            return token(config, args)
        if args.command == "rotate-secrets":
            return rotate_secrets(config)
        if args.command == "verify-audit":
            return verify_audit(config, args.tenant)
        if args.command == "chain-legacy-history":
            return chain_legacy_history(config, args.tenant)
        return serve(config)
    except OSError as error:
        # Every command keeps its keys (and the embedded database) in the data dir: one it may
        # not use is a startup error for the operator, not a traceback.
        if not _about_data_dir(error, config.data_dir):
            raise
        return _fail(f"cannot use the data dir {config.data_dir}: {error.strerror or error}")


def _about_data_dir(error: OSError, data_dir: Path) -> bool:
    """Whether ``error`` is about the data dir, a path in it or one of its parents."""
    if error.filename is None:
        return False
    path, data_dir = Path(os.fsdecode(error.filename)).absolute(), data_dir.absolute()
    return path == data_dir or data_dir in path.parents or path in data_dir.parents


if __name__ == "__main__":
    sys.exit(main())
