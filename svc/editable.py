"""What a reseller may price in a plan, item by item: KAZOO's ``editable`` fields
(``kz_services_plans:editable_fields``), a pure function of svc's own rules.

Each category svc counts lists ``_all`` and its known items, each with the properties a plan
item takes (an item does not take ``as``: only ``_all`` counts one item as another). The
known items are KAZOO 4.3's (``services.hrl``), the phone numbers' being svc's number
classifiers. Where KAZOO asks the cluster (the carriers and number features the reseller may
use, its app store, whether qubicle runs), svc cannot: it lists KAZOO's defaults for the
numbers' carriers and features, and no apps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .rating.plan import item_properties

Doc = dict[str, Any]
KNOWN_ITEMS: dict[str, tuple[str, ...]] = {
    "users": ("user", "admin"),
    "devices": ("sip_device", "ata", "cellphone", "fax", "landline", "mobile", "sip_uri",
                "smartphone", "softphone"),
    "limits": ("twoway_trunks", "inbound_trunks", "outbound_trunks"),
    "branding": ("whitelabel",),
    "ips": ("dedicated",),
    "number_carriers": ("knm_bandwidth2", "knm_bandwidth", "knm_inum", "knm_inventory",
                        "knm_local", "knm_managed", "knm_mdn", "knm_other", "knm_reserved",
                        "knm_reserved_reseller", "knm_simwood", "knm_telnyx", "knm_vitelity",
                        "knm_voip_innovations"),
    "number_services": ("cnam", "e911", "port"),
    "qubicle": ("basic_queue", "pro_queue", "basic_recipient", "pro_recipient"),
    "voicemails": ("mailbox", "transcription"),
    "faxes": ("mailbox",),
    "conferences": ("conference",),
}


def editable_fields(number_classifiers: Iterable[str]) -> dict[str, dict[str, Doc]]:
    """``{category: {"_all": properties, item: properties}}``."""
    properties = item_properties()
    per_item = {key: value for key, value in properties.items() if key != "as"}
    known = {**KNOWN_ITEMS, "phone_numbers": tuple(number_classifiers)}
    return {category: {"_all": properties, **{item: per_item for item in items}}
            for category, items in known.items() if items}
