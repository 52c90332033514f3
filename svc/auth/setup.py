"""The authenticator the settings describe."""

from __future__ import annotations

from ..settings import Settings
from ..sources import DocumentSource
from .authenticator import Authenticator
from .identity import IdentityCheck
from .keys import KazooKeys


def authenticator(settings: Settings, source: DocumentSource | None) -> Authenticator:
    """KAZOO tokens are accepted once a key is configured or crossbar can give one; their
    identity signature is checked wherever KAZOO's CouchDB is at hand."""
    keys = (KazooKeys(settings.kazoo_auth_keys, settings.crossbar_url)
            if settings.kazoo_auth_keys or settings.crossbar_url else None)
    return Authenticator(settings.api_tokens, keys,
                         IdentityCheck(source) if source is not None else None)
