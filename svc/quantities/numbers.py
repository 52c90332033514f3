"""Phone-number classification for ``phone_numbers.<classification>``.

Classifiers are tried in their configured order and the first whose regex matches the
number's E.164 form wins; the order matters (Caribbean numbers also match ``did_us``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

UNKNOWN = "unknown"

# NANP: area code and exchange both start with 2-9.
_BARE_NANP = re.compile(r"^1?([2-9][0-9]{2}[2-9][0-9]{6})$")
_INTERNATIONAL_PREFIX = re.compile(r"^(?:011|00)")


@dataclass(frozen=True)
class NumberClassifier:
    name: str
    regex: re.Pattern[str]


def _classifier(name: str, pattern: str) -> NumberClassifier:
    return NumberClassifier(name, re.compile(pattern))


# In this order (KAZOO's defaults, knm_converters.erl).
DEFAULT_CLASSIFIERS: tuple[NumberClassifier, ...] = (
    _classifier("tollfree_us", r"^\+1((?:800|88\d|877|866|855|844|833|822)\d{7})$"),
    _classifier("toll_us", r"^\+1(900\d{7})$"),
    _classifier("emergency", r"^(911|922|933|988|833|811|711|999)$"),  # 988: US crisis line
    _classifier(
        "caribbean",
        r"^\+?1((?:684|264|268|242|246|441|284|345|767|809|829|849|473|671|876|664|670|787"
        r"|939|869|758|784|721|868|649|340)\d{7})$",
    ),
    _classifier("did_us", r"^(\+?1)?([2-9][0-9]{2}[2-9][0-9]{6})$"),
    _classifier("international", r"^\+([2-9]\d{7,})$"),
    _classifier(UNKNOWN, r"^(.*)$"),
)


def parse_classifiers(value: object) -> tuple[NumberClassifier, ...]:
    """Read ``SVC_NUMBER_CLASSIFIERS``: a JSON list (or its text) of ``{"name", "regex"}``
    in match order. A bad entry raises ``ValueError`` naming its index and field."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from None
    if not isinstance(value, list):
        raise ValueError('must be a JSON list of {"name", "regex"} objects')
    classifiers = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f'[{index}]: must be an object with "name" and "regex"')
        name, pattern = entry.get("name"), entry.get("regex")
        if not isinstance(name, str) or not name:
            raise ValueError(f"[{index}].name: must be a non-empty string")
        if not isinstance(pattern, str):
            raise ValueError(f"[{index}].regex: must be a string")
        try:
            classifiers.append(_classifier(name, pattern))
        except re.error as error:
            raise ValueError(f"[{index}].regex: invalid regular expression: {error}") from None
    return tuple(classifiers)


def to_e164(number: str) -> str:
    """The E.164 form KAZOO classifies: a bare NANP number (10 digits, or 11
    with the leading 1) gets ``+1``; the ``011`` and ``00`` international prefixes become ``+``.
    Anything else (already ``+…``, short codes like ``911``) is kept as it is."""
    if nanp := _BARE_NANP.match(number):
        return "+1" + nanp.group(1)
    return _INTERNATIONAL_PREFIX.sub("+", number, count=1)


def classify_number(number: str, classifiers: Iterable[NumberClassifier]) -> str:
    e164 = to_e164(number)
    # search, not fullmatch: KAZOO uses re:run, and its patterns carry their own anchors
    return next((c.name for c in classifiers if c.regex.search(e164)), UNKNOWN)
