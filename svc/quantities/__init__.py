"""KAZOO documents → quantities, as pure functions: no I/O anywhere in this package.

Read next to docs/rating.md: ``numbers`` (phone-number
classifiers), ``rules`` (one document's contribution, one account's quantities), ``counts``
(summing contributions and resolving the symbolic ``user_apps``).
"""

from .counts import (
    USER_APPS_ADMINS,
    USER_APPS_ALL,
    Counts,
    add_counts,
    diff_counts,
    resolve_counts,
    subtract_counts,
)
from .numbers import DEFAULT_CLASSIFIERS, NumberClassifier, classify_number, parse_classifiers
from .rules import (
    DOC_TYPES,
    Contribution,
    QuantityInputError,
    account_of,
    account_quantities,
    document_contributions,
)

__all__ = [
    "DEFAULT_CLASSIFIERS", "DOC_TYPES", "USER_APPS_ADMINS", "USER_APPS_ALL", "Contribution",
    "Counts",
    "NumberClassifier", "QuantityInputError", "account_of", "account_quantities", "add_counts",
    "classify_number", "diff_counts", "document_contributions", "parse_classifiers",
    "resolve_counts", "subtract_counts",
]
