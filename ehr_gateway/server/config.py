"""Configuration from the environment (prefix EHRGW_)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ehr_gateway.ehr.fields import IdentifierSystem
from ehr_gateway.ehr.identifiers import US_SSN_OID, IdentifierDefaults
from ehr_gateway.ehr.jwks import LEEWAY_S
from ehr_gateway.gql.selection_limits import DEFAULT_MAX_REPEATS, DEFAULT_MAX_SELECTIONS

# What browser clients of a GraphQL API send beside the request itself: refusing one fails the
# preflight, and so every request of that app (EHRGW_CORS_ALLOW_HEADERS replaces the list).
DEFAULT_CORS_ALLOW_HEADERS = (
    # the gateway's own
    "authorization",
    "content-type",
    "x-request-id",
    "idempotency-key",
    # tracing: W3C trace context and baggage, Sentry
    "traceparent",
    "tracestate",
    "baggage",
    "sentry-trace",
    # client identification and CSRF prevention headers of Apollo Client and others
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-client-name",
    "graphql-client-version",
)


class GatewayConfig(BaseSettings):
    """Every setting of a gateway process. Names are the environment variables without the
    EHRGW_ prefix."""

    model_config = SettingsConfigDict(env_prefix="EHRGW_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on.")
    mongodb_url: str | None = Field(
        default=None,
        description="MongoDB connection string. When unset, the embedded database is started.",
    )
    database: str = Field(default="ehr_gateway", description="MongoDB database name.")
    data_dir: Path = Field(
        default=Path(".ehrgw-data"),
        description="Where the embedded database and the local encryption key are kept.",
    )
    db_timeout_ms: int = Field(
        default=5000, ge=100, description="How long a database operation may wait for a server."
    )
    change_feed_stall_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a poll of the change stream may stay unanswered before the feed is "
        "declared down (the read caches stop serving) and reopened. Default: the database "
        "deadline plus 5 s (a poll waits at most 1 s for a change, then must answer within the "
        "deadline).",
    )
    public_base_url: str | None = Field(
        default=None,
        description="This deployment's public base URL, used in external gateway base path URLs. "
        "Default http://HOST:PORT.",
    )
    encryption_key: str | None = Field(
        default=None,
        description="Base64 of a 32-byte AES key for secrets at rest. When unset, a key file is "
        "created (mode 0600) in the data dir.",
    )
    allow_insecure_http: bool = Field(
        default=False, description="Accept plain http:// URLs where https is required (testing)."
    )
    outbound_allow_private: bool = Field(
        default=False,
        description="Allow outbound calls to loopback, link-local and private addresses "
        "(testing against local servers only).",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Comma-separated addresses (or networks) of the proxies whose "
        'X-Forwarded-For and X-Forwarded-Proto are believed; "*" believes any. Empty: the '
        "client address is the socket's, whatever a header says (a client could otherwise "
        "name a new address per request and escape per-address rate limits).",
    )
    outbound_timeout_s: float = Field(
        default=5.0, gt=0, description="Connect and read timeout of outbound calls, in seconds."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes serving the one port; each is a whole gateway with its "
        "own change feed and caches.",
    )
    ws_init_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a WebSocket client has to send connection_init before it is closed.",
    )
    ws_max_subscriptions: int = Field(
        default=100, ge=1, description="Most operations one WebSocket connection may run at once."
    )
    request_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a whole request (headers and body), from its "
        "first byte, or from connecting: a connection that sends it slower is closed. Also how "
        "long an answer may wait for the client to take more of it (the connection's write "
        "buffer over its high-water mark) before the connection is dropped.",
    )
    clock_skew_s: int = Field(
        default=LEEWAY_S,
        ge=0,
        le=300,
        description="Seconds a JWT's expiry (exp) may be past, and its not-before (nbf) ahead, "
        "of this machine's clock and still be accepted: callers' bearer tokens and Epic's JWTs "
        "(verifyEpicJwt). Issuers' clocks and ours drift apart; more leeway keeps an expired "
        "token usable that much longer.",
    )
    shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a stopping gateway (SIGTERM) takes at most: open connections get "
        "all but the last two (or half of it, when shorter), which are for closing the "
        "database; past it the process exits anyway.",
    )
    auth_issuer: str | None = Field(
        default=None,
        description="The OpenID issuer whose bearer JWTs the gateway accepts (its discovery "
        "document names the keys): an absolute https URL (http only on a loopback address) with "
        "a plain host and no query or fragment. When unset, the gateway runs in development "
        "mode: loopback only, tokens from `ehr-gateway token`.",
    )
    auth_audience: str = Field(
        default="ehr-gateway", description="The audience (aud) tokens must be issued for."
    )
    auth_tenants_claim: str = Field(
        default="tenants",
        description='Claim listing the tenants the caller may act on ("*" for all).',
    )
    auth_roles_claim: str = Field(
        default="roles",
        description="Claim listing the caller's roles (viewer, editor, integrator, service).",
    )
    console_client_id: str = Field(
        default="ehr-gateway-console",
        min_length=1,
        description="The OpenID client id the console signs in with (a public client: "
        "authorization code with PKCE, no secret), when EHRGW_AUTH_ISSUER is set.",
    )
    console_scopes: str = Field(
        default="openid offline_access",
        min_length=1,
        description="The scopes the console asks the issuer for, separated by spaces "
        "(offline_access: a refresh token, so the console renews its token before it expires).",
    )
    previous_encryption_keys: str | None = Field(
        default=None,
        description="Comma-separated base64 keys that older secrets may still be encrypted with, "
        "while `ehr-gateway rotate-secrets` re-encrypts them under EHRGW_ENCRYPTION_KEY.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins of admin frontends allowed to call the API from a "
        "browser (CORS). Empty: none.",
    )
    trusted_documents: str = Field(
        default="",
        description="Comma-separated paths of trusted-document manifests (Apollo's "
        "persisted-query-manifest.json, GraphQL Code Generator's persisted-documents.json), "
        "validated at startup and run by documentId or hash without parsing or validation.",
    )
    trusted_documents_only: bool = Field(
        default=False,
        description="Run only the documents of EHRGW_TRUSTED_DOCUMENTS: any other document "
        "(introspection and GraphiQL's included) is refused with DOCUMENT_NOT_TRUSTED, and no "
        "query is registered by hash.",
    )
    persisted_queries: bool = Field(
        default=True,
        description="Automatic persisted queries (Apollo's protocol): a query sent with its "
        "SHA-256 is kept, and later requests may send the hash alone.",
    )
    persisted_queries_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=0,
        description="Memory for automatic persisted queries, per process (least recently used "
        "dropped first).",
    )
    cors_allow_headers: str = Field(
        default=",".join(DEFAULT_CORS_ALLOW_HEADERS),
        description="Comma-separated request headers a page on an allowed origin may send "
        "(named in a CORS preflight); the default covers the gateway's own headers, W3C trace "
        "context and Sentry tracing, and Apollo's and other clients' identification headers.",
    )
    introspection: bool | None = Field(
        default=None,
        description="Serve introspection and GraphiQL. Default: on in development mode only.",
    )
    max_query_depth: int = Field(default=12, ge=2, description="Deepest selection allowed.")
    max_aliases: int = Field(default=30, ge=0, description="Most aliases in one document.")
    max_tokens: int = Field(default=800, ge=100, description="Most tokens in one document.")
    max_selections: int = Field(
        default=DEFAULT_MAX_SELECTIONS,
        ge=10,
        description="Most selections (fields, fragments, and operations counted as four) in "
        "one document, a fragment counted at each of its spreads.",
    )
    max_repeated_selections: int = Field(
        default=DEFAULT_MAX_REPEATS,
        ge=1,
        description="Most times one field (one response name) may be selected at one place of "
        "a document, fragments included, and most fragment spreads at one place.",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest request body, and largest WebSocket message, accepted, in bytes.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Bearer token a scraper must send to read /metrics. Unset: /metrics is open "
        "in development mode (loopback only) and refused (401) otherwise.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines as JSON objects or as plain text."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    access_log: bool = Field(default=True, description="Log a line per HTTP request.")
    response_cache: bool = Field(
        default=True,
        description="Keep responses to settings reads until the settings change (per caller "
        "access); off: every request is executed.",
    )
    compiled_reads: bool = Field(
        default=True,
        description="Write settings reads and write payloads by plans compiled once per "
        "document (plain data straight from the stored models), and answer settings reads and "
        "block updates already accepted by the whole-request fast paths; off: every field runs "
        "through graphql-core.",
    )
    default_ssn_identifier: IdentifierSystem | None = Field(default=US_SSN_OID)
    default_mrn_identifier: IdentifierSystem | None = None
    default_practitioner_external_urn: IdentifierSystem | None = None
    default_location_external_urn: IdentifierSystem | None = None
    default_self_service_identifier: IdentifierSystem | None = None

    @field_validator("auth_issuer")
    @classmethod
    def _plain_issuer_url(cls, value: str | None) -> str | None:
        if value is not None:
            url_origin(value)
        return value

    @property
    def development(self) -> bool:
        """No issuer: local tokens, loopback only."""
        return self.auth_issuer is None

    @property
    def introspection_enabled(self) -> bool:
        return self.development if self.introspection is None else self.introspection

    @property
    def suggestions_enabled(self) -> bool:
        """Errors may suggest schema names ("Did you mean ...?") only where the schema is open
        anyway: in development mode with introspection on."""
        return self.development and self.introspection_enabled

    @property
    def feed_stall_s(self) -> float:
        if self.change_feed_stall_s is not None:
            return self.change_feed_stall_s
        return self.db_timeout_ms / 1000 + 5

    @property
    def shutdown_close_s(self) -> float:
        """Of the shutdown timeout, the seconds kept for closing the database (the rest is for
        open connections)."""
        return min(2.0, self.shutdown_timeout_s / 2)

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def trusted_document_paths(self) -> list[Path]:
        return [Path(path.strip()) for path in self.trusted_documents.split(",") if path.strip()]

    @property
    def cors_allow_header_list(self) -> list[str]:
        headers = (header.strip().lower() for header in self.cors_allow_headers.split(","))
        return [header for header in headers if header]

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"

    @property
    def identifier_defaults(self) -> IdentifierDefaults:
        return IdentifierDefaults(
            ssn_identifier=self.default_ssn_identifier,
            mrn_identifier=self.default_mrn_identifier,
            practitioner_external_urn=self.default_practitioner_external_urn,
            location_external_urn=self.default_location_external_urn,
            self_service_identifier=self.default_self_service_identifier,
        )


# A DNS name or an IPv4 address, or an IPv6 address in brackets: nothing a Content-Security-Policy
# reads as a wildcard, a list or a directive of its own.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


def url_origin(url: str) -> str:
    """The origin of ``url``, an absolute https URL with a plain host (http on loopback, for a
    local issuer), written from its parts: the issuer's origin joins the console's
    Content-Security-Policy, where a space, a ``;``, a ``,`` or a ``*`` would let the page
    connect anywhere or add a directive. Raises ValueError naming what is wrong."""
    if any(ch.isspace() or ch in ";,*'\"\\" for ch in url):
        raise ValueError("must be a URL without spaces, quotes, ';', ',' or '*'")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("must be a URL with a numeric port") from None
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if not parts.hostname or not _PLAIN_HOST.fullmatch(host):
        raise ValueError("must be an absolute URL with a plain host name or address")
    if parts.query or parts.fragment:
        raise ValueError("must be a URL without a query or fragment (OpenID Connect Discovery)")
    plain_http_allowed = parts.scheme == "http" and is_loopback_host(parts.hostname)
    if parts.scheme != "https" and not plain_http_allowed:
        raise ValueError("must be an https URL (http only on a loopback address)")
    return f"{parts.scheme}://{host.lower()}" + (f":{port}" if port is not None else "")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(ValueError):
    """The configuration is invalid; the message is one line naming the variable."""


def load_config(**overrides: object) -> GatewayConfig:
    try:
        return GatewayConfig(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        name = "EHRGW_" + str(first["loc"][0]).upper() if first["loc"] else "EHRGW_*"
        raise ConfigError(f"invalid configuration: {name}: {first['msg']}") from None
