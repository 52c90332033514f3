"""Every HTTP request is counted and timed, like the RPCs: by route template (never the raw
path, which holds ids), method and status, 400s and 401s included; and the process
collector's ``process_*`` metrics are exported. Against a running service over real HTTP."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

AUDIT = "/v2/accounts/{account_id}/services/audit"
PLAN = "/v2/accounts/{account_id}/services/{plan_id}"


async def scrape(api) -> dict[tuple[str, frozenset], float]:
    async with api.session.get(api.base + "/metrics") as response:
        text = await response.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def requests(found, route: str, method: str, status: int) -> float:
    return found.get(("svc_http_requests_total", frozenset(
        {"route": route, "method": method, "status": str(status)}.items())), 0.0)


async def test_api_requests_are_counted_by_route_template_method_and_status(api, accounts):
    account = accounts.client_a
    assert (await api.account("GET", account, "/services/audit")).status == 200
    assert (await api.account("GET", account, "/services/audit?page_size=0")).status == 400
    assert (await api.account("GET", account, "/services/audit", token=None)).status == 401
    assert (await api.account("POST", account, "/services/gold")).status == 200
    assert (await api.account("POST", account, "/services/nope")).status == 404
    async with api.session.get(api.base + "/no/such/path/" + account) as unmatched:
        assert unmatched.status == 404

    found = await scrape(api)
    assert requests(found, AUDIT, "GET", 200) == 1
    assert requests(found, AUDIT, "GET", 400) == 1
    assert requests(found, AUDIT, "GET", 401) == 1
    assert requests(found, PLAN, "POST", 200) == 1
    assert requests(found, PLAN, "POST", 404) == 1
    assert requests(found, "unmatched", "GET", 404) == 1
    # no account id, plan id or other raw path ever becomes a label value
    labels = {value for (name, pairs) in found if name.startswith("svc_http_")
              for _, value in pairs}
    assert not any(account in value or "gold" in value for value in labels)
    assert found[("svc_http_request_duration_seconds_count", frozenset(
        {"route": AUDIT, "method": "GET"}.items()))] == 3


async def test_a_method_not_allowed_is_unmatched_and_probes_are_counted_too(api):
    async with aiohttp.ClientSession() as session:
        async with session.patch(api.base + "/healthz") as patched:
            assert patched.status == 405
        async with session.get(api.base + "/healthz") as health:
            assert health.status == 200
    found = await scrape(api)
    assert requests(found, "unmatched", "PATCH", 405) == 1
    assert requests(found, "/healthz", "GET", 200) == 1


async def test_the_process_collector_is_exported(api):
    found = await scrape(api)
    names = {name for name, _ in found}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes",
            "process_open_fds", "process_start_time_seconds"} <= names
