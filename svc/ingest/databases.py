"""KAZOO's databases, as far as counting goes.

Billable documents count only from account databases (``account%2Fxx%2Fxx%2F<rest>``, not
the monthly ``-YYYYMM`` ones) and account documents only from ``accounts``. KAZOO writes a
copy of every number, dedicated IP and faxbox into the account database; the copies in
``numbers%2F…``, ``dedicated_ips`` and ``faxes`` would count twice.
"""

from __future__ import annotations

import re

ACCOUNTS_DB = "accounts"
_ACCOUNT_DB = re.compile(r"^account(?:%2F|/)([0-9a-f]{2})(?:%2F|/)([0-9a-f]{2})(?:%2F|/)"
                         r"([0-9a-f]+)$")


def account_of_database(database: str) -> str | None:
    """The account whose own database this is; ``None`` for any other database."""
    match = _ACCOUNT_DB.match(database)
    return "".join(match.groups()) if match else None


def account_database(account_id: str) -> str:
    """KAZOO's encoded name of an account's database."""
    return f"account%2F{account_id[:2]}%2F{account_id[2:4]}%2F{account_id[4:]}"

