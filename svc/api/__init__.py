"""The HTTP API: KAZOO's ``/v2/accounts/{account_id}/services…`` and
``/reseller`` routes, each running the RPC handler of the same request over the same model,
with token auth scoped to an account tree, and its OpenAPI 3.1 document."""

from __future__ import annotations

from .server import HttpApi

__all__ = ["HttpApi"]
