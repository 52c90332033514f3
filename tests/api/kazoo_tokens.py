"""KAZOO-style login tokens minted by the tests from their own RSA keys, shaped as
``kz_auth_jwt:encode/1`` builds them (kazoo 4.3
core/kazoo_auth/src/kz_auth_jwt.erl:222-231:
header alg, typ JWT, kid) with the claims crossbar_auth.erl puts in a login token (account_id,
owner_id, method; kz_auth.erl adds iss "kazoo" and identity_sig), and the identity signature
as kz_auth_identity.erl:312-318 computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KID = "4d9b8f7c0e1a2b3c4d5e6f708192a3b4"
SYSTEM_SECRET = "0123456789abcdef0123456789abcdef"


@cache
def private_key(name: str = "cluster") -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(name: str = "cluster") -> str:
    return private_key(name).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def identity_sig(identity_secret: str, identity: str) -> str:
    digest = hmac.new((identity_secret + SYSTEM_SECRET).encode(), identity.encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def claims(account_id: str, owner_id: str | None = "user0", ttl_s: int = 3600,
           identity_secret: str = "usersecret", **extra: Any) -> dict[str, Any]:
    found = {"account_id": account_id, "method": "cb_user_auth", "iss": "kazoo",
             "exp": int(time.time()) + ttl_s}
    if owner_id is not None:
        found["owner_id"] = owner_id
    found["identity_sig"] = identity_sig(identity_secret, owner_id or account_id)
    return {**found, **extra}


def kazoo_token(account_id: str, *, key: str = "cluster", kid: str = KID, alg: str = "RS256",
                **claim_args: Any) -> str:
    return jwt.encode(claims(account_id, **claim_args), private_key(key), algorithm=alg,
                      headers={"kid": kid, "typ": "JWT"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(account_id: str) -> str:
    """``alg: none``, no signature."""
    header = _b64(b'{"alg":"none","typ":"JWT","kid":"' + KID.encode() + b'"}')
    payload = _b64(jwt.utils.force_bytes(jwt.api_jws.json.dumps(claims(account_id))))
    return f"{header}.{payload}."


def hmac_with_public_key(account_id: str) -> str:
    """HS256 with the public key's PEM as the secret: the classic algorithm confusion."""
    header = _b64(jwt.api_jws.json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID},
                                         separators=(",", ":")).encode())
    payload = _b64(jwt.api_jws.json.dumps(claims(account_id), separators=(",", ":")).encode())
    signature = hmac.new(public_pem().encode(), f"{header}.{payload}".encode(),
                         hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"
