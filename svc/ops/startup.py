"""The start-up line: what this svc serves, with no secret in it (store and broker URLs
carry passwords, so only their paths and hosts are shown)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from .. import __version__


@dataclass(frozen=True)
class Serving:
    version: str
    http: str
    store: str
    brokers: list[str]
    node: str

    def line(self) -> str:
        return (f"svc {self.version} serving HTTP on {self.http}, store {self.store}, "
                f"broker {', '.join(self.brokers)}, node {self.node}")

    def fields(self) -> dict[str, object]:
        return asdict(self)


def serving(http_host: str, http_port: int, store_url: str, amqp_url: str,
            node: str) -> Serving:
    return Serving(__version__, f"http://{http_host}:{http_port}", store_location(store_url),
                   broker_hosts(amqp_url), node)


def _hosts(netloc: str) -> str:
    """``user:password@h1:27017,h2`` -> ``h1:27017,h2``."""
    return netloc.rpartition("@")[2]


def store_location(url: str) -> str:
    """``sqlite <path>``, or ``mongodb <hosts>/<database>``."""
    if url.startswith("sqlite:///"):
        return f"sqlite {url.removeprefix('sqlite:///')}"
    scheme, rest = url.split("://", 1)
    netloc, _, path = rest.partition("/")
    database = path.partition("?")[0]
    return f"{scheme} {_hosts(netloc)}/{database}"


def broker_hosts(amqp_url: str) -> list[str]:
    """Each broker of ``SVC_AMQP_URL`` (one URL, or several separated by commas) as
    ``host:port/vhost``."""
    hosts = []
    for url in filter(None, (part.strip() for part in amqp_url.split(","))):
        parts = urlsplit(url)
        secure = parts.scheme == "amqps"
        port = parts.port or (5671 if secure else 5672)
        vhost = parts.path.removeprefix("/") or "/"
        hosts.append(f"{parts.hostname}:{port}{'' if vhost == '/' else '/' + vhost}")
    return hosts
