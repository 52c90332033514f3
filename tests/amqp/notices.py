"""Kazoo-shaped document-change notices for the broker tests."""

from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish

__all__ = ["notice", "publish"]
