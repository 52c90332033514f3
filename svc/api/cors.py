"""CORS as crossbar answers it (``api_util.erl`` ``add_cors_headers``, ``get_cors_headers``):
a browser's preflight ``OPTIONS`` on any API path is answered without a token, with the
path's methods and the headers a KAZOO client sends; every answer exposes what crossbar
exposes. ``*`` is crossbar's default and safe here: auth is a header, never a cookie."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .routes import EDITABLE_PATH, PREFIX, ROUTES

ALLOW_HEADERS = ("content-type, depth, user-agent, x-http-method-override, x-file-size, "
                 "x-requested-with, if-modified-since, x-file-name, cache-control, "
                 "x-auth-token, x-kazoo-cluster-id, if-match, x-request-id, authorization")
EXPOSE_HEADERS = "content-type, x-auth-token, x-request-id, x-kazoo-cluster-id, location, etag"
MAX_AGE_S = 86400  # crossbar's ?SECONDS_IN_DAY

_PATHS = [(re.compile(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(PREFIX + route.path)) + "/?"),
           route.method) for route in ROUTES]
_PATHS.append((re.compile(re.escape(EDITABLE_PATH) + "/?"), "GET"))


def methods_of(path: str) -> list[str]:
    """The methods the API answers on ``path`` (none: no such route)."""
    return list(dict.fromkeys(method for pattern, method in _PATHS
                              if pattern.fullmatch(path)))


def cors_headers(origins: Iterable[str], request_origin: str | None) -> dict[str, str]:
    allowed = tuple(origins)
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers":
                EXPOSE_HEADERS}
    if request_origin and request_origin in allowed:
        return {"Access-Control-Allow-Origin": request_origin, "Vary": "Origin",
                "Access-Control-Expose-Headers": EXPOSE_HEADERS}
    return {"Vary": "Origin"}


def preflight_headers(origins: Iterable[str], headers: Mapping[str, str],
                      methods: list[str]) -> dict[str, str]:
    return {**cors_headers(origins, headers.get("Origin")),
            "Access-Control-Allow-Methods": ", ".join(["OPTIONS", *methods]),
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE_S)}
