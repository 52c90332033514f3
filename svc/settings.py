"""Configuration from ``SVC_*`` environment variables (SPEC §3), validated at start-up."""

from __future__ import annotations

import json
import socket
import typing
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .quantities import DEFAULT_CLASSIFIERS, NumberClassifier, parse_classifiers


class BookkeeperSetting(BaseModel):
    adapter: Literal["local", "http", "kazoo"]
    url: str | None = None
    # one secret, or several while rotating: the first signs, receivers accept any (§14)
    secret: SecretStr | list[SecretStr] | None = None
    timeout_s: float | None = Field(None, gt=0)

    @property
    def secrets(self) -> list[SecretStr]:
        if self.secret is None:
            return []
        return self.secret if isinstance(self.secret, list) else [self.secret]

    @model_validator(mode="after")
    def _http_needs_url(self) -> BookkeeperSetting:
        if self.adapter == "http" and not (self.url and self.secrets):
            raise ValueError("an http bookkeeper needs a url and a secret")
        return self


class ApiToken(BaseModel):
    """One HTTP API token: it acts on its account and that account's descendants, as its
    role allows (read: GET only; reseller: as the account's own KAZOO login; superduper: as
    KAZOO's super-duper admin)."""

    token: SecretStr = Field(min_length=1)  # a secret: never logged, never echoed
    account_id: str = Field(min_length=1)
    role: Literal["read", "reseller", "superduper"] = "read"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore")

    # one broker URL, or the nodes of a cluster separated by commas (tried in order)
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    store_url: str = "sqlite:///./svc-data/svc.db"
    http_host: str = "0.0.0.0"
    http_port: int = Field(9102, ge=0, le=65535)
    master_account_id: str | None = None
    sync_interval_s: float = Field(20, gt=0)
    sync_buffer_s: float = Field(0, ge=0)
    sync_batch: int = Field(100, ge=1)
    rpc_prefetch: int = Field(200, ge=1)
    max_message_bytes: int = Field(1024 * 1024, ge=1024)
    delivery_limit: int = Field(5, ge=1)
    sync_lease_s: float = Field(60, gt=0)
    sync_concurrency: int = Field(32, ge=1)  # syncs in flight per replica (its sync slots)
    # at stop, requests being answered and syncs in flight get this long (SPEC §9, §14)
    drain_timeout_s: float = Field(20, gt=0)
    bookkeeper_timeout_s: float = Field(20, gt=0)
    sync_retry_base_s: float = Field(5, gt=0)
    sync_retry_max_s: float = Field(3600, gt=0)
    delinquent_recheck_s: float = Field(3600, gt=0)
    # a delivery unsettled this long is stuck: counted by a metric and shown on /readyz
    stuck_delivery_s: float = Field(3600, gt=0)
    # the cluster's CouchDB, where notices without Doc are completed (SPEC §13); it holds
    # credentials (http://user:pass@couch:5984), so it is a secret
    couch_url: SecretStr | None = None
    couch_timeout_s: float = Field(10, gt=0)
    # a document CouchDB still has at an older revision than its notice (a lagging replica)
    # is read again for couch_lag_budget_s; then the notice is acked and the document
    # recorded, to be read again after couch_reread_s, the interval doubling up to the max
    couch_lag_budget_s: float = Field(10, gt=0)
    couch_reread_s: float = Field(5, gt=0)
    couch_reread_max_s: float = Field(300, gt=0)
    # {"<bookkeeper id>": {"adapter": "local"|"http"|"kazoo", "url", "secret", "timeout_s"}}
    bookkeepers: Annotated[dict[str, BookkeeperSetting], NoDecode] = Field(default_factory=dict)
    # {"<name>": {"token": "<secret>", "account_id": "<account>"}}: the HTTP API's callers
    api_tokens: Annotated[dict[str, ApiToken], NoDecode] = Field(default_factory=dict)
    # KAZOO's login tokens: {"<kid>": "<PEM public key>"}; and/or crossbar's base URL
    # (http://crossbar:8000), from which a key not configured is fetched once
    kazoo_auth_keys: dict[str, str] = Field(default_factory=dict)
    crossbar_url: str | None = None
    # the browser origins allowed to call the HTTP API (comma-separated); "*" as crossbar
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ("*",)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    node: str = Field(default_factory=lambda: f"services@{socket.gethostname()}")
    # a JSON list of {"name", "regex"} in match order (SPEC §12); decoded by parse_classifiers
    number_classifiers: Annotated[tuple[NumberClassifier, ...], NoDecode] = DEFAULT_CLASSIFIERS

    @field_validator("bookkeepers", "api_tokens", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        """Decoded here rather than by pydantic-settings, whose JSON error names no variable
        (and escapes as a traceback)."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as error:
            raise ValueError(f"not valid JSON: {error}") from None

    @field_validator("store_url")
    @classmethod
    def _known_store(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "mongodb://", "mongodb+srv://")):
            raise ValueError("must start with sqlite:///, mongodb:// or mongodb+srv://")
        return url

    @field_validator("number_classifiers", mode="before")
    @classmethod
    def _parse_classifiers(cls, value: Any) -> tuple[NumberClassifier, ...]:
        if isinstance(value, tuple) and all(isinstance(c, NumberClassifier) for c in value):
            return value
        return parse_classifiers(value)

    @field_validator("amqp_url")
    @classmethod
    def _broker_urls(cls, value: str) -> str:
        urls = [url.strip() for url in value.split(",")]
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                # the URL itself is not repeated: it may hold a password
                raise ValueError(f"entry {urls.index(url) + 1} is not an amqp:// or amqps:// "
                                 "URL with a host (several brokers: separate them by commas)")
        return ",".join(urls)

    @property
    def amqp_urls(self) -> list[str]:
        return self.amqp_url.split(",")

    @field_validator("kazoo_auth_keys")
    @classmethod
    def _rsa_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        from .auth.keys import rsa_public_key  # the auth package reads these settings

        for kid, pem in keys.items():
            try:
                rsa_public_key(pem)
            except ValueError as error:
                raise ValueError(f"the key {kid!r} is not an RSA public key in PEM: "
                                 f"{error}") from None
        return keys

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        return tuple(value)

    @field_validator("api_tokens")
    @classmethod
    def _distinct_tokens(cls, tokens: dict[str, ApiToken]) -> dict[str, ApiToken]:
        # a secret shared by two names would act for whichever is compared first
        secrets = [entry.token.get_secret_value() for entry in tokens.values()]
        if len(set(secrets)) != len(secrets):
            raise ValueError("two tokens share one secret")
        return tokens


class SettingsError(ValueError):
    """A bad ``SVC_*`` value: the message names the variable and the rule."""


def setting_path(loc: tuple[int | str, ...]) -> str:
    """Where in which variable: ``SVC_API_TOKENS[ops].account_id`` (a key of a JSON object
    setting in brackets, a field of its entry after a dot)."""
    name, *inside = loc
    path = f"SVC_{str(name).upper()}"
    keyed = typing.get_origin(Settings.model_fields[str(name)].annotation) is dict
    for n, part in enumerate(inside):
        path += f"[{part}]" if isinstance(part, int) or (keyed and n == 0) else f".{part}"
    return path


def _rule(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def load_settings() -> Settings:
    """One line naming each bad variable, the field inside it and the rule it breaks."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(f"{setting_path(e['loc'])}: {_rule(e['msg'])}"
                             for e in error.errors())
        raise SettingsError(problems) from None
