"""Where KAZOO's documents are read from when a notice does not carry them: one
port (``abc``) and its CouchDB adapter (``couch``)."""

from __future__ import annotations

from .abc import DocumentSource, Fetched, SourceUnavailable

__all__ = ["DocumentSource", "Fetched", "SourceUnavailable"]
