"""KAZOO 4.3's login tokens, verified as ``kz_auth_jwt`` verifies them: a JWT whose header
names its algorithm and key (``{alg, typ: "JWT", kid}``), signed with the cluster's RSA key
(RS256, RS384 or RS512 only: never ``none``, never an HMAC, which would take the public key
as its secret), not expired. PyJWT does the cryptography."""

from __future__ import annotations

from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .principal import Unauthenticated

ALGORITHMS = ("RS256", "RS384", "RS512")  # kz_auth_jwt's ?ALGORITHMS
ISSUER = "kazoo"  # kz_auth adds iss "kazoo" to the tokens crossbar issues


class PublicKeys(Protocol):
    async def key(self, kid: str, token: str) -> RSAPublicKey:
        """The public key of ``kid``; ``Unauthenticated`` when there is none."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def header_of(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise Unauthenticated(f"the token is not a valid JWT: {error}") from None
    if header.get("alg") not in ALGORITHMS:
        raise Unauthenticated(f"the token's algorithm must be one of {', '.join(ALGORITHMS)}")
    if header.get("typ", "JWT") != "JWT":
        raise Unauthenticated("the token's typ must be JWT")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise Unauthenticated("the token's header names no key (kid)")
    return header


def claims_of(token: str, key: RSAPublicKey, alg: str) -> dict[str, Any]:
    """The verified claims; ``alg`` is the header's, already one of ``ALGORITHMS``, and the
    only one accepted for this token."""
    try:
        claims = jwt.decode(token, key, algorithms=[alg], issuer=ISSUER,
                            options={"require": ["exp", "iss", "account_id"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.PyJWTError as error:
        raise Unauthenticated(f"the token is not valid: {error}") from None
    if not isinstance(claims["account_id"], str) or not claims["account_id"]:
        raise Unauthenticated("the token's account_id must be an account id")
    return claims


async def verified_claims(token: str, keys: PublicKeys) -> dict[str, Any]:
    header = header_of(token)
    return claims_of(token, await keys.key(header["kid"], token), header["alg"])
