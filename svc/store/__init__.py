"""Persistence: one port (``abc``), two adapters (``sqlite``, ``mongo``), and the domain
operations written once against the port (``repository``)."""

from __future__ import annotations

from .abc import DocumentStore, StoreError, StoreUnavailable, VersionConflict, Versioned
from .records import AccountFields, AppliedChange, DocChange, QuantityChange
from .repository import (
    Conflict,
    Forbidden,
    InvalidInput,
    MasterAccount,
    NotAssigned,
    NotFound,
    PlanNotFound,
    PlanNotOffered,
    Repository,
)


def store_from_url(url: str) -> DocumentStore:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``mongodb://…``."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from .mongo import MongoStore

        return MongoStore(url)
    raise ValueError("must start with sqlite:/// or mongodb://")


__all__ = [
    "AccountFields", "AppliedChange", "Conflict", "DocChange", "DocumentStore", "Forbidden",
    "InvalidInput", "MasterAccount", "NotAssigned", "NotFound", "PlanNotFound", "PlanNotOffered",
    "QuantityChange", "Repository", "StoreError", "StoreUnavailable", "VersionConflict",
    "Versioned", "store_from_url",
]
