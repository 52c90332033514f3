"""Who is calling the HTTP API and what they may do: static tokens with a role, KAZOO's own
login tokens (RS256 JWTs, with their identity signature), and KAZOO 4.3's permission rules
over the account tree (pure functions in ``permissions``)."""

from .authenticator import Authenticator
from .principal import Principal, Unauthenticated

__all__ = ["Authenticator", "Principal", "Unauthenticated"]
