"""KAZOO's document-change notice as svc reads it (docs/amqp-api.md). The
consumer reads notices with ``ingest.notices.read_notice``, whose rules decide more than a
schema can (which databases count, KAZOO's ``undefined`` type); this model describes what it
accepts, for the AsyncAPI document, and a test holds the two together."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .requests import Envelope

_EDITED_NOT_DELETED = {"properties": {"Event-Name": {"enum": ["doc_created", "doc_edited"]},
                                      "Is-Soft-Deleted": {"const": False}}}


class DocChangeNotice(Envelope):
    """A Kazoo document-change notice. KAZOO's own publisher sends no ``Doc``: svc then reads
    the document from CouchDB."""

    # ingest.notices.read_notice dead-letters a created/edited notice without Rev
    model_config = ConfigDict(json_schema_extra={
        "if": _EDITED_NOT_DELETED, "then": {"required": ["Rev"]}})

    event_category: Literal["configuration"] = Field(alias="Event-Category")
    event_name: Literal["doc_created", "doc_edited", "doc_deleted"] = Field(alias="Event-Name")
    id: str = Field(alias="ID", min_length=1)
    database: str = Field(alias="Database")
    rev: str | None = Field(None, alias="Rev", pattern="^[0-9]+(-|$)")
    type: str | None = Field(None, alias="Type", description="the document's pvt_type")
    account_id: str | None = Field(
        None, alias="Account-ID", description="required unless Database is an account's")
    doc: dict[str, Any] | None = Field(
        None, alias="Doc", description="the body; without it svc reads it from CouchDB")
    is_soft_deleted: bool | None = Field(None, alias="Is-Soft-Deleted")
