"""The ehr-gateway command: serve, export-schema."""

from __future__ import annotations

import argparse
import contextlib
import errno
import socket
import sys
from collections.abc import Callable, Iterator, Sequence

import uvicorn

from gql.config import ConfigError, GatewayConfig, load_config


def _fail(message: str) -> int:
    print(f"ehr-gateway: {message}", file=sys.stderr)
    return 2


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


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down, which would end the process by the
    signal before any ``finally`` runs. A stop asked for is a clean exit: ``on_exit`` runs (the
    embedded database stops) and the process exits with status 0."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self._on_exit:
                    self._on_exit()
                self._captured_signals.clear()


def serve(config: GatewayConfig) -> int:
    from gql.app import create_app
    from storage.embedded import EmbeddedDatabaseError, EmbeddedMongo

    problem = _check_port(config.host, config.port)
    if problem:
        return _fail(problem)
    embedded = None
    if config.mongodb_url is None:
        embedded = EmbeddedMongo(config.data_dir)
        try:
            config = config.model_copy(update={"mongodb_url": embedded.start()})
        except EmbeddedDatabaseError as error:
            return _fail(str(error))
        print(f"ehr-gateway: embedded database in {config.data_dir}", file=sys.stderr)
    try:
        problem = _check_database(config)
        if problem:
            return _fail(problem)
        print(
            f"ehr-gateway: GraphQL (and GraphiQL) at http://{config.host}:{config.port}/graphql",
            file=sys.stderr,
        )
        server = _Server(
            uvicorn.Config(
                create_app(config),
                host=config.host,
                port=config.port,
                timeout_graceful_shutdown=int(config.shutdown_timeout_s),
            ),
            on_exit=embedded.stop if embedded else None,
        )
        server.run()
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def export_schema() -> int:
    from gql.schema import schema

    sys.stdout.write(schema.as_str() + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ehr-gateway", description="EHR configuration gateway (GraphQL)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the gateway")
    serve_parser.add_argument("--host", help="address to listen on (EHRGW_HOST)")
    serve_parser.add_argument("--port", type=int, help="port to listen on (EHRGW_PORT)")
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    args = parser.parse_args(argv)
    if args.command == "export-schema":
        return export_schema()
    overrides = {key: getattr(args, key) for key in ("host", "port") if getattr(args, key)}
    try:
        config = load_config(**overrides)
    except ConfigError as error:
        return _fail(str(error))
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
