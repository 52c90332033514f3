"""KAZOO documents → quantity contributions, one document at a time (docs/rating.md,
"Quantities").

Where KAZOO's CouchDB view and its Erlang dry-run path disagree, the view's rule is kept;
the comments say which. Warnings carry a JSON path relative to the document (``$.billing.x``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..rating.coerce import CoercionError, round_half_away, to_decimal
from ..rating.objects import read_references
from ..rating.plan import key_path
from .counts import USER_APPS_ADMINS, USER_APPS_ALL, Counts, bump, entries, resolve_counts
from .numbers import DEFAULT_CLASSIFIERS, UNKNOWN, NumberClassifier, classify_number

Doc = Mapping[str, Any]
APPS_STORE_ID = "apps_store"


@dataclass(frozen=True)
class Contribution:
    counts: Counts
    warnings: tuple[str, ...] = ()
    # the plans the document names in service.plans (its readable entries), None if none
    object_plans: Mapping[str, Any] | None = None


class _Tally:
    """One document's counts (never zero or negative) and warnings, plus the number
    classifiers its rules need."""

    def __init__(self, classifiers: tuple[NumberClassifier, ...]) -> None:
        self.classifiers = classifiers
        self.counts: Counts = {}
        self.warnings: list[str] = []

    def add(self, category: str, item: str, count: int = 1) -> None:
        if count > 0:
            bump(self.counts, category, item, count)

    def warn(self, path: str, rule: str) -> None:
        self.warnings.append(f"{path}: {rule}")


Rule = Callable[[Doc, _Tally], None]


# --- value readers ---------------------------------------------------------------------


def _is_true(value: object) -> bool:
    return value is True or value == "true"


def _is_false(value: object) -> bool:
    return value is False or value == "false"


def _truthy(value: object) -> bool:
    # JavaScript truthiness, as the quantify view tests it: KAZOO stores the local feature
    # as `"local": {}`, which must count as set; "false" is false as elsewhere.
    return not (value is None or value is False or value == 0 or value in ("", "false"))


def _name(obj: Mapping[str, Any], key: str, default: str, tally: _Tally, path: str = "$") -> str:
    """A non-empty string field naming an item, else ``default``."""
    value = obj.get(key)
    if isinstance(value, str) and value:
        return value
    if value not in (None, ""):
        tally.warn(key_path(path, key), f"not a string; counted as {default!r}")
    return default


def _count(value: object, path: str, tally: _Tally) -> int | None:
    """A number or plain numeric string, fractions rounded half away from zero;
    anything else is ``None`` with a warning."""
    try:
        amount = to_decimal(value)
    except CoercionError:
        amount = None
    if amount is None or not amount.is_finite():
        tally.warn(path, "ignored: not a number")
        return None
    return round_half_away(amount)


def _app_name(app: Mapping[str, Any], app_id: str) -> str:
    name = app.get("name")
    return name if isinstance(name, str) and name else app_id


def _object(doc: Doc, key: str, tally: _Tally) -> Mapping[str, Any]:
    """``doc[key]`` when it is an object; missing is empty, anything else warns."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        tally.warn(key_path("$", key), "not an object; ignored")
        return {}
    return value


# --- rules per document type -----------------------------------------------------------


def _one(category: str, item: str) -> Rule:
    def rule(doc: Doc, tally: _Tally) -> None:
        tally.add(category, item)

    return rule


def _user(doc: Doc, tally: _Tally) -> None:
    tally.add("users", _name(doc, "priv_level", "user", tally))  # KAZOO's rule
    qubicle = doc.get("qubicle")
    if not isinstance(qubicle, dict) or not _is_true(qubicle.get("enabled")):
        return
    recipient = qubicle.get("recipient")
    if isinstance(recipient, dict):  # KAZOO's rule enabled *and* a recipient object
        offering = _name(recipient, "offering", "basic", tally, "$.qubicle.recipient")
        tally.add("qubicle", f"{offering}_recipient")


def _device(doc: Doc, tally: _Tally) -> None:
    tally.add("devices", _name(doc, "device_type", "sip_device", tally))


def _qubicle_queue(doc: Doc, tally: _Tally) -> None:
    tally.add("qubicle", f"{_name(doc, 'pvt_offering', 'basic', tally)}_queue")


def _limits(doc: Doc, tally: _Tally) -> None:
    for key in ("twoway_trunks", "inbound_trunks", "outbound_trunks"):
        if doc.get(key) is not None:
            # KAZOO's rule positive values only; -1 is an ordinary "unlimited" setting, no warning
            tally.add("limits", key, _count(doc[key], key_path("$", key), tally) or 0)


def _number(doc: Doc, tally: _Tally) -> None:
    features = _object(doc, "pvt_features", tally)  # not an object ⇒ no features
    if not _truthy(features.get("local")):
        number = doc.get("_id")
        if isinstance(number, str):
            classification = classify_number(number, tally.classifiers)
        else:
            tally.warn("$._id", f"not a string; classified as {UNKNOWN!r}")
            classification = UNKNOWN
        tally.add("phone_numbers", classification)
    carrier = doc.get("pvt_module_name")
    if isinstance(carrier, str) and carrier:
        tally.add("number_carriers", carrier)
    for feature in features:  # every key, `local` included
        tally.add("number_services", feature)


def _vmbox(doc: Doc, tally: _Tally) -> None:
    tally.add("voicemails", "mailbox")
    if _is_true(doc.get("transcribe")):  # KAZOO's rule
        tally.add("voicemails", "transcription")


def _ui_app_in_use(app: Mapping[str, Any]) -> bool:
    # KAZOO's rule and the seed's table: all/admins/admin, or specific with users; a missing
    # (or null) allowed_users counts as specific.
    allowed = app.get("allowed_users")
    if allowed in ("all", "admins", "admin"):
        return True
    users = app.get("users")
    return allowed in (None, "specific") and isinstance(users, list) and len(users) > 0


def _account(doc: Doc, tally: _Tally) -> None:
    """The seed's ``ui_apps``: 1 per app in use, from the account doc's ``apps`` and/or
    ``ui_apps`` maps. An app is charged once (seed), so an id listed in both
    maps, or two ids with the same name, still give 1."""
    in_use: dict[str, None] = {}  # an ordered set: stable output
    for key in ("apps", "ui_apps"):
        for app_id, app in _object(doc, key, tally).items():
            if not isinstance(app, dict):
                tally.warn(key_path(key_path("$", key), app_id), "not an object; ignored")
            elif _ui_app_in_use(app):
                in_use[_app_name(app, app_id)] = None
    for name in in_use:
        tally.add("ui_apps", name)


# user_apps of these installs depend on the account's users: kept symbolic (counts.py).
_SYMBOLIC_USER_APPS = {"all": USER_APPS_ALL, "admins": USER_APPS_ADMINS, "admin": USER_APPS_ADMINS}


def _apps_store(doc: Doc, tally: _Tally) -> None:
    """4.3's ``account_apps``/``user_apps``."""
    blacklist = doc.get("blacklist")
    if blacklist is not None and not isinstance(blacklist, list):
        tally.warn("$.blacklist", "not a list; nothing blacklisted")
    blacklisted = blacklist if isinstance(blacklist, list) else []
    for app_id, app in _object(doc, "apps", tally).items():
        if app_id in blacklisted:
            continue
        if not isinstance(app, dict):
            tally.warn(key_path("$.apps", app_id), "not an object; ignored")
            continue
        name = _app_name(app, app_id)
        tally.add("account_apps", name)  # installed ⇔ 1, whatever allowed_users says
        allowed = app.get("allowed_users")
        users = app.get("users")
        if allowed == "specific" and isinstance(users, list):
            tally.add("user_apps", name, len(users))  # no check that the users exist
        elif isinstance(allowed, str) and allowed in _SYMBOLIC_USER_APPS:
            tally.add(_SYMBOLIC_USER_APPS[allowed], name)


def _billing(doc: Doc, tally: _Tally) -> None:
    """``billing.<key>`` on any document."""
    for key, value in _object(doc, "billing", tally).items():
        path = key_path("$.billing", key)
        count = _count(value, path, tally)
        if count is not None and count < 0:
            tally.warn(path, "ignored: negative")
        elif count is not None:
            tally.add("billing", key, count)


_RULES: dict[str, Rule] = {
    "user": _user,
    "device": _device,
    "qubicle_queue": _qubicle_queue,
    "limits": _limits,
    "number": _number,
    "vmbox": _vmbox,
    "account": _account,
    "whitelabel": _one("branding", "whitelabel"),
    "dedicated_ip": _one("ips", "dedicated"),
    "faxbox": _one("faxes", "mailbox"),
    "conference": _one("conferences", "conference"),
}

# The document types that can count toward quantities.
DOC_TYPES = frozenset(_RULES) | {APPS_STORE_ID}


def _object_plans(doc: Doc, tally: _Tally) -> Mapping[str, Any] | None:
    """The readable entries of ``service.plans`` (view ``services/object_plans``); an entry
    KAZOO could not read is left out with a warning, the rest of the document still counts."""
    service = doc.get("service")
    plans = service.get("plans") if isinstance(service, dict) else None
    if plans is None:
        return None
    references, unreadable = read_references(plans, "$.service.plans")
    for violation in unreadable:
        tally.warn(violation.path, f"{violation.rule}; this plan reference is ignored")
    readable = {r.plan_id for r in references}
    named = {plan_id: entry for plan_id, entry in plans.items() if plan_id in readable}
    return named or None


def document_contributions(
    doc: Doc, classifiers: Iterable[NumberClassifier] = DEFAULT_CLASSIFIERS
) -> Contribution:
    """What one document adds to its account's quantities, and the plans it names.
    ``user_apps`` of ``all`` and ``admins`` installs come out under the pseudo-categories of
    ``counts.py``."""
    if _is_true(doc.get("pvt_deleted")):  # KAZOO's rule
        return Contribution({})
    tally = _Tally(tuple(classifiers))
    # the object_plans view skips deleted documents only: a disabled user's plans still apply
    object_plans = _object_plans(doc, tally)
    if _is_false(doc.get("enabled")):  # KAZOO's rule
        return Contribution({}, tuple(tally.warnings), object_plans)
    doc_type = doc.get("pvt_type")
    if doc.get("_id") == APPS_STORE_ID:  # it has no pvt_type
        _apps_store(doc, tally)
    elif isinstance(doc_type, str) and doc_type in _RULES:
        _RULES[doc_type](doc, tally)
    _billing(doc, tally)
    return Contribution(tally.counts, tuple(tally.warnings), object_plans)


# --- one account's documents (`svc quantities`) ----------------------------------------


class QuantityInputError(ValueError):
    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path = path
        self.rule = rule


_ACCOUNT_DB = re.compile(r"^account(?:%2F|/)([^%/]{2})(?:%2F|/)([^%/]{2})(?:%2F|/)([^%/]+)$")


def account_of(doc: Doc) -> str | None:
    """The account a document belongs to: ``pvt_account_id``, else the id encoded in
    ``pvt_account_db``, else the ``_id`` of an account document; ``None`` if none says."""
    account_id = doc.get("pvt_account_id")
    if isinstance(account_id, str) and account_id:
        return account_id
    database = doc.get("pvt_account_db")
    if isinstance(database, str) and (parts := _ACCOUNT_DB.match(database)):
        return "".join(parts.groups())
    doc_id = doc.get("_id")
    if doc.get("pvt_type") == "account" and isinstance(doc_id, str) and doc_id:
        return doc_id
    return None


def account_quantities(
    docs: list[Any], classifiers: Iterable[NumberClassifier] = DEFAULT_CLASSIFIERS
) -> tuple[Counts, tuple[str, ...]]:
    """The resolved quantities of ONE account's documents, and the warnings (paths
    ``$[i]…``). Documents of several accounts are refused."""
    classifiers = tuple(classifiers)
    total: Counts = {}
    warnings: list[str] = []
    first: tuple[str, str] | None = None  # (account id, path of its first document)
    for index, doc in enumerate(docs):
        path = f"$[{index}]"
        if not isinstance(doc, dict):
            raise QuantityInputError(path, "must be a JSON object (a KAZOO document)")
        account = account_of(doc)
        if account is not None:
            first = first or (account, path)
            if account != first[0]:
                raise QuantityInputError(
                    path,
                    f"belongs to account {account} but {first[1]} to account {first[0]}: "
                    "documents of several accounts are refused",
                )
        contribution = document_contributions(doc, classifiers)
        for category, item, count in entries(contribution.counts):
            bump(total, category, item, count)
        warnings.extend(path + warning.removeprefix("$") for warning in contribution.warnings)
    return resolve_counts(total), tuple(warnings)
