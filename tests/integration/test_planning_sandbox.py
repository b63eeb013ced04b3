"""The planning sandbox itself, over real HTTP: it must behave like Anaplan's Integration API v2, not like a client
wishes (auth, envelopes, paging, chunked upload, import and export semantics, cancel, 409, 429, faults)."""

from __future__ import annotations

import csv
import gzip
import io
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from system_apis.connectors.anaplan.sandbox.catalog import (
    ACCOUNTS_LIST_ID,
    COST_CENTRES_LIST_ID,
    ENTITIES_LIST_ID,
    EXPORT_ID,
    IMPORT_FILE_ID,
    IMPORT_ID,
)
from system_apis.connectors.tryton.seed import ACCOUNTS, COMPANIES, COST_CENTRES
from tests.erp_fixtures import ERP_LINES
from tests.planning_fixtures import start_sandbox, stop_sandbox

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

HEADER = "Entity,Account,Cost Centre,Time,Amount"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Api:
    """A thin client of the sandbox's ``/2/0`` API, logged in once."""

    def __init__(self, sandbox: PlanningSandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.url, timeout=30)
        self.token = sandbox.token()
        self.model = f"/2/0/workspaces/{sandbox.workspace}/models/{sandbox.model}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"AnaplanAuthToken {self.token}", **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.headers["x-sandbox"] == "anaplan"
        return response

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> dict[str, Any]:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    def upload(self, content: bytes, chunk_size: int = 1024 * 1024) -> None:
        """The import file, in chunks of ``chunk_size`` bytes."""
        files = f"{self.model}/files/{IMPORT_FILE_ID}"
        self.ok("POST", files, json={"chunkCount": -1})
        for index, start in enumerate(range(0, len(content), chunk_size)):
            chunk = content[start : start + chunk_size]
            response = self.request(
                "PUT",
                f"{files}/chunks/{index}",
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert response.status_code == 204, response.text
        body = {
            "id": IMPORT_FILE_ID,
            "name": "Planning Data Load.csv",
            "chunkCount": -1,
            "firstDataRow": 2,
            "headerRow": 1,
        }
        self.ok("POST", f"{files}/complete", json=body)

    def start_import(self, version: str = "Actual") -> str:
        body = {
            "localeName": "en_US",
            "mappingParameters": [{"entityType": "Version", "entityName": version}],
        }
        task: dict[str, Any] = self.ok("POST", f"{self.model}/imports/{IMPORT_ID}/tasks", json=body)["task"]
        assert task["taskState"] == "NOT_STARTED"
        assert len(task["taskId"]) == 32
        return str(task["taskId"])

    def start_export(self) -> str:
        task = self.ok("POST", f"{self.model}/exports/{EXPORT_ID}/tasks", json={"localeName": "en_US"})[
            "task"
        ]
        return str(task["taskId"])

    def poll(self, kind: str, task_id: str) -> dict[str, Any]:
        action = IMPORT_ID if kind == "imports" else EXPORT_ID
        task: dict[str, Any] = self.ok("GET", f"{self.model}/{kind}/{action}/tasks/{task_id}")["task"]
        return task

    def wait(self, kind: str, task_id: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.poll(kind, task_id)
            if task["taskState"] in ("COMPLETE", "CANCELLED"):
                return task
            assert time.monotonic() < deadline, task
            time.sleep(0.02)

    def load(self, content: bytes, version: str = "Actual") -> dict[str, Any]:
        """Upload ``content``, import it into ``version``, and answer the finished task."""
        self.upload(content)
        return self.wait("imports", self.start_import(version))


@pytest.fixture
def api(sandbox: PlanningSandbox) -> Iterator[Api]:
    client = Api(sandbox)
    yield client
    client.http.close()


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join((HEADER, *lines)) + "\n").encode()


def values(task: dict[str, Any]) -> dict[str, int]:
    flat = task["result"]["details"][0]["values"]
    return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}


def landed(sandbox: PlanningSandbox, version: str) -> dict[tuple[str, str, str, str], Decimal]:
    return {
        (c["entity"], c["account"], c["cost_center"], c["time"]): Decimal(c["amount"])
        for c in sandbox.cells(version)
    }


# Authentication


def test_authentication_answers_in_the_vendor_shape(sandbox: PlanningSandbox) -> None:
    url = f"{sandbox.url}/token/authenticate"
    good = httpx.post(url, auth=(sandbox.user, sandbox.password))
    wrong = httpx.post(url, auth=(sandbox.user, "not-the-password"))
    missing = httpx.post(url)
    assert good.status_code == 201
    assert good.headers["x-sandbox"] == "anaplan"
    body = good.json()
    assert body["status"] == "SUCCESS"
    assert body["statusMessage"] == "Login successful"
    assert body["meta"]["validationUrl"] == f"{sandbox.url}/token/validate"
    info = body["tokenInfo"]
    assert set(info) == {"tokenId", "tokenValue", "expiresAt", "refreshTokenId"}
    assert abs(info["expiresAt"] - (time.time() + 2100) * 1000) < 60_000, "35 minutes, in epoch milliseconds"
    for refused in (wrong, missing):
        assert refused.status_code == 401
        assert refused.json() == {"status": "FAILURE_BAD_CREDENTIAL", "statusMessage": "Login failed"}
        assert refused.headers["x-sandbox"] == "anaplan"

    headers = {"Authorization": f"AnaplanAuthToken {info['tokenValue']}"}
    validated = httpx.get(f"{sandbox.url}/token/validate", headers=headers)
    assert validated.status_code == 200
    assert validated.json()["status"] == "SUCCESS"
    assert validated.json()["expiresAt"] == info["expiresAt"]
    counters = sandbox.counters()
    assert counters["authentications"] == 1
    assert counters["authentication_failures"] == 2


def test_refresh_replaces_the_token_and_logout_ends_it(sandbox: PlanningSandbox) -> None:
    old = sandbox.token()
    workspaces = f"{sandbox.url}/2/0/workspaces"

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"AnaplanAuthToken {token}"}

    refreshed = httpx.post(f"{sandbox.url}/token/refresh", headers=auth(old))
    assert refreshed.status_code == 201
    new = refreshed.json()["tokenInfo"]["tokenValue"]
    assert new != old
    assert httpx.get(workspaces, headers=auth(old)).status_code == 401, "the old token stops working"
    assert httpx.get(workspaces, headers=auth(new)).status_code == 200
    assert httpx.post(f"{sandbox.url}/token/refresh", headers=auth(old)).status_code == 401

    logout = httpx.post(f"{sandbox.url}/token/logout", headers=auth(new))
    assert logout.status_code == 204
    assert logout.content == b""
    assert httpx.get(workspaces, headers=auth(new)).status_code == 401
    assert httpx.get(f"{sandbox.url}/token/validate", headers=auth(new)).status_code == 401
    assert sandbox.counters()["refreshes"] == 1


def test_every_api_call_needs_a_live_token(api: Api, sandbox: PlanningSandbox) -> None:
    bare = httpx.get(f"{sandbox.url}/2/0/workspaces")
    bogus = httpx.get(f"{sandbox.url}/2/0/workspaces", headers={"Authorization": "AnaplanAuthToken nope"})
    bearer = httpx.get(f"{sandbox.url}/2/0/workspaces", headers={"Authorization": f"Bearer {api.token}"})
    for refused in (bare, bogus, bearer):
        assert refused.status_code == 401
        assert refused.json()["status"]["code"] == 401
    assert api.request("GET", "/2/0/workspaces").status_code == 200

    sandbox.expire_tokens()
    expired = api.request("GET", "/2/0/workspaces")
    assert expired.status_code == 401
    assert expired.json()["status"]["code"] == 401
    refresh = httpx.post(
        f"{sandbox.url}/token/refresh", headers={"Authorization": f"AnaplanAuthToken {api.token}"}
    )
    assert refresh.status_code == 401, "an expired token cannot be refreshed: log in again"
    api.token = sandbox.token()
    assert api.request("GET", "/2/0/workspaces").status_code == 200
    assert sandbox.counters()["unauthorized"] == 4


# Envelope, resources, paging, errors


def test_workspaces_and_models_come_in_the_envelope(api: Api, sandbox: PlanningSandbox) -> None:
    listed = api.ok("GET", "/2/0/workspaces")
    assert listed["status"] == {"code": 200, "message": "Success"}
    assert listed["meta"]["schema"] == f"{sandbox.url}/2/0/objects/workspace"
    assert listed["meta"]["paging"] == {"currentPageSize": 1, "totalSize": 1, "offset": 0}
    (workspace,) = listed["workspaces"]
    assert workspace["id"] == sandbox.workspace
    assert workspace["name"] == "FP&A (sandbox)"
    assert workspace["active"] is True
    assert workspace["sizeAllowance"] > workspace["currentSize"] > 0
    assert api.ok("GET", f"/2/0/workspaces/{sandbox.workspace}")["workspace"] == workspace

    (model,) = api.ok("GET", f"/2/0/workspaces/{sandbox.workspace}/models")["models"]
    assert model["id"] == sandbox.model
    assert model["name"] == "Finance Plan (sandbox)"
    assert model["activeState"] == "UNLOCKED"
    assert model["currentWorkspaceId"] == sandbox.workspace
    assert model["categoryValues"] == []
    assert api.ok("GET", api.model)["model"] == model
    status = api.ok("POST", f"{api.model}/status")["requestStatus"]
    assert status["currentStep"] == "Open."
    assert status["progress"] == -1.0

    for path in (
        "/2/0/workspaces/0000",
        f"/2/0/workspaces/{sandbox.workspace}/models/FFFF",
        f"{api.model}/lists/101000000099/items",
        f"{api.model}/files/113000000099/chunks",
        f"{api.model}/imports/112000000099/tasks",
        f"{api.model}/exports/116000000099/tasks",
        f"{api.model}/imports/{IMPORT_ID}/tasks/{'0' * 32}",
        "/2/0/models/FFFF/versions",
        "/2/0/no/such/route",
    ):
        missing = api.request("GET", path)
        assert missing.status_code == 404, path
        assert missing.json()["status"]["code"] == 404, path
    wrong_method = api.request("PATCH", "/2/0/workspaces")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"]["code"] == 405


def test_versions_and_time_are_the_vendors(api: Api, sandbox: PlanningSandbox) -> None:
    versions = api.ok("GET", f"/2/0/models/{sandbox.model}/versions")["versionMetadata"]
    assert [(v["name"], v["isActual"], v["isCurrent"]) for v in versions] == [
        ("Actual", True, False),
        ("Budget", False, True),
        ("Forecast", False, False),
    ]
    assert all(v["editFrom"] is None and v["editTo"] is None for v in versions)
    calendar = api.ok("GET", f"/2/0/models/{sandbox.model}/modelCalendar")["modelCalendar"]
    assert calendar == {
        "calendarType": "Calendar Months/Quarters/Years",
        "fiscalYear": {"year": "FY26", "startDate": "2026-01-01", "endDate": "2026-12-31"},
    }


def test_list_members_agree_with_the_erp_seed_and_page(api: Api) -> None:
    lists = api.ok("GET", f"{api.model}/lists")["lists"]
    assert [(item["id"], item["name"]) for item in lists] == [
        (ENTITIES_LIST_ID, "E1 Entities"),
        (ACCOUNTS_LIST_ID, "A1 Accounts"),
        (COST_CENTRES_LIST_ID, "C1 Cost Centres"),
    ]
    entities = api.ok("GET", f"{api.model}/lists/{ENTITIES_LIST_ID}/items")["listItems"]
    assert [(item["code"], item["name"]) for item in entities] == [(c.code, c.name) for c in COMPANIES]
    assert entities[0]["listId"] == ENTITIES_LIST_ID
    assert entities[0]["listName"] == "E1 Entities"
    accounts = api.ok("GET", f"{api.model}/lists/{ACCOUNTS_LIST_ID}/items")["listItems"]
    assert [item["code"] for item in accounts] == list(ACCOUNTS.values())
    assert all(item["name"].startswith(f"{item['code']} ") for item in accounts)
    assert {item["code"]: item["name"] for item in accounts}["4.1.1"] == "4.1.1 Revenue from goods"
    centres = f"{api.model}/lists/{COST_CENTRES_LIST_ID}/items"
    every = api.ok("GET", centres)["listItems"]
    assert [(item["code"], item["name"]) for item in every] == [*COST_CENTRES, ("UNALLOCATED", "Unallocated")]

    paged = api.ok("GET", centres, params={"offset": 1, "limit": 2})
    assert paged["meta"]["paging"] == {"currentPageSize": 2, "totalSize": 6, "offset": 1}
    assert paged["listItems"] == every[1:3]
    past = api.ok("GET", centres, params={"offset": 10})
    assert past["meta"]["paging"] == {"currentPageSize": 0, "totalSize": 6, "offset": 10}
    for params in ({"limit": "x"}, {"limit": "0"}, {"offset": "-1"}):
        bad = api.request("GET", centres, params=params)
        assert bad.status_code == 400, params
        assert bad.json()["status"]["code"] == 400


def test_list_items_can_be_added_once(api: Api, sandbox: PlanningSandbox) -> None:
    items = f"{api.model}/lists/{COST_CENTRES_LIST_ID}/items"
    body = {
        "items": [
            {"name": "Logistics", "code": "CC-600"},
            {"name": "Sales", "code": "CC-100"},
            {"name": "Sales", "code": "CC-700"},
            {"code": "CC-800"},
            {"name": "Field sales", "code": "CC-110", "parent": "CC-100"},
            {"name": "Nowhere", "code": "CC-120", "parent": "CC-999"},
        ]
    }
    answer = api.ok("POST", items, params={"action": "add"}, json=body)
    assert (answer["added"], answer["ignored"], answer["total"]) == (2, 1, 6)
    assert [failure["requestIndex"] for failure in answer["failures"]] == [2, 3, 5]
    assert all(set(f) == {"requestIndex", "failureType", "failureMessageDetails"} for f in answer["failures"])
    again = api.ok(
        "POST", items, params={"action": "add"}, json={"items": [{"name": "Logistics", "code": "CC-600"}]}
    )
    assert (again["added"], again["ignored"]) == (0, 1)
    listed = {item["code"]: item for item in api.ok("GET", items)["listItems"]}
    assert listed["CC-110"]["parent"] == "Sales"
    assert listed["CC-110"]["parentId"] == listed["CC-100"]["id"]

    task = api.load(csv_bytes("FS-US,5.1.1,CC-600,Jan 26,12.34"))
    assert values(task)["successRowCount"] == 1
    assert landed(sandbox, "Actual") == {("FS-US", "5.1.1", "CC-600", "Jan 26"): Decimal("12.34")}

    assert api.request("POST", items, json=body).status_code == 400, "action=add is required"
    bad_json = api.request("POST", items, params={"action": "add"}, content=b"{nope")
    assert bad_json.status_code == 400
    assert bad_json.json()["status"]["code"] == 400
    assert api.request("POST", items, params={"action": "add"}, json={"items": {}}).status_code == 400


# The seeded model


def test_the_seeded_budget_is_deterministic_and_scaled_to_the_erp_seed(sandbox: PlanningSandbox) -> None:
    budget = landed(sandbox, "Budget")
    forecast = landed(sandbox, "Forecast")
    assert landed(sandbox, "Actual") == {}
    # 4.1.1 on UNALLOCATED only, five other accounts on five centres and UNALLOCATED; two entities, twelve months.
    assert len(budget) == 2 * (1 + 5 * 6) * 12
    assert forecast.keys() == budget.keys()
    assert all(amount > 0 and amount == amount.quantize(Decimal("0.01")) for amount in budget.values())
    scale = Decimal(ERP_LINES) / 10_000
    goods = budget[("FS-US", "4.1.1", "UNALLOCATED", "Jan 26")]
    assert abs(goods / (72_000 * scale) - 1) <= Decimal("0.0801")
    for key, amount in forecast.items():
        assert abs(amount / budget[key] - 1) <= Decimal("0.0501")
    months = {key[3] for key in budget}
    assert months == {f"{month} 26" for month in MONTHS}
    sandbox.reset()
    assert landed(sandbox, "Budget") == budget


# Upload and import


def test_an_import_writes_the_last_row_per_cell_and_dumps_failed_rows(
    api: Api, sandbox: PlanningSandbox
) -> None:
    content = csv_bytes(
        "FS-US,4.1.1,UNALLOCATED,Jan 26,100.00",
        "FS-US,4.1.1,UNALLOCATED,Jan 26,-1234.56",
        "Finsync Europe GmbH,5.2.2 Selling general and administrative,Sales,Feb 26,10",
        "FS-US,5.1.1,CC-999,Mar 26,5",
        "",
        "FS-EU,5.1.1,CC-200,Jan 27,5",
        '"FS-EU","5.1.1","CC-200","Mar 26","1,000.00"',
        ",,,,",
    )
    task = api.load(content)
    assert task["taskState"] == "COMPLETE"
    assert task["progress"] == 1.0
    result = task["result"]
    assert result["successful"] is True
    assert result["failureDumpAvailable"] is True
    assert result["objectId"] == IMPORT_ID
    (detail,) = result["details"]
    assert detail["type"] == "hierarchyRowsProcessedWithFailures"
    assert detail["localMessageText"] == (
        "Finance Plan (sandbox) - Planning Data Load: 3 (0/3) rows successful, 3 failed, 1 ignored"
    )
    assert all(isinstance(value, str) for value in detail["values"])
    assert values(task) == {
        "successRowCount": 3,
        "failedCount": 3,
        "ignoredCount": 1,
        "totalRowCount": 7,
        "createdCount": 2,
        "updatedCount": 1,
    }
    assert landed(sandbox, "Actual") == {
        ("FS-US", "4.1.1", "UNALLOCATED", "Jan 26"): Decimal("-1234.56"),
        ("FS-EU", "5.2.2", "CC-100", "Feb 26"): Decimal(10),
    }

    dump = api.request("GET", f"{api.model}/imports/{IMPORT_ID}/tasks/{task['taskId']}/dump")
    assert dump.status_code == 200
    assert dump.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(dump.text)))
    assert rows == [
        [*HEADER.split(","), "_Error_1_"],
        ["FS-US", "5.1.1", "CC-999", "Mar 26", "5", "Item not found in C1 Cost Centres: CC-999"],
        ["FS-EU", "5.1.1", "CC-200", "Jan 27", "5", "Item not found in Time: Jan 27"],
        ["FS-EU", "5.1.1", "CC-200", "Mar 26", "1,000.00", "Invalid number: 1,000.00"],
    ]

    # A second load overwrites a cell the first one wrote: updated, not created; no failures, no dump.
    again = api.load(csv_bytes("FS-US,4.1.1,UNALLOCATED,Jan 26,7.5"))
    assert values(again)["updatedCount"] == 1
    assert values(again)["createdCount"] == 0
    assert again["result"]["failureDumpAvailable"] is False
    assert again["result"]["details"][0]["type"] == "hierarchyRowsProcessed"
    assert landed(sandbox, "Actual")[("FS-US", "4.1.1", "UNALLOCATED", "Jan 26")] == Decimal("7.5")
    no_dump = api.request("GET", f"{api.model}/imports/{IMPORT_ID}/tasks/{again['taskId']}/dump")
    assert no_dump.status_code == 404
    listed = api.ok("GET", f"{api.model}/imports/{IMPORT_ID}/tasks")["tasks"]
    assert [t["taskId"] for t in listed] == [task["taskId"], again["taskId"]]
    assert {t["taskState"] for t in listed} == {"COMPLETE"}


def test_a_file_that_cannot_be_read_fails_the_task_and_writes_nothing(
    api: Api, sandbox: PlanningSandbox
) -> None:
    never_uploaded = api.wait("imports", api.start_import())
    assert never_uploaded["result"]["successful"] is False
    for content in (b"\xff\xfe not utf-8", b"Entity,Account,Time,Amount\nFS-US,4.1.1,Jan 26,1\n"):
        task = api.load(content, "Budget")
        assert task["taskState"] == "COMPLETE"
        assert task["result"]["successful"] is False
        assert task["result"]["failureDumpAvailable"] is False
    assert landed(sandbox, "Actual") == {}
    assert len(landed(sandbox, "Budget")) == 744


def test_chunks_arrive_in_order_and_a_retried_chunk_replaces_the_last(
    api: Api, sandbox: PlanningSandbox
) -> None:
    files = f"{api.model}/files/{IMPORT_FILE_ID}"
    octets = {"Content-Type": "application/octet-stream"}
    assert api.request("PUT", f"{files}/chunks/0", content=b"x", headers=octets).status_code == 400, (
        "not started"
    )
    started = api.ok("POST", files, json={"chunkCount": -1})["file"]
    assert started["id"] == IMPORT_FILE_ID
    assert started["chunkCount"] == -1
    assert api.request("POST", f"{files}/complete", json={"id": IMPORT_FILE_ID}).status_code == 400, (
        "no chunk"
    )

    first, second = csv_bytes("FS-US,5.1.1,CC-100,Jan 26,1"), b"FS-US,5.1.1,CC-100,Jan 26,2\n"
    chunks = [first[:20], first[20:], b"garbage that the retry replaces"]
    assert api.request("PUT", f"{files}/chunks/0", content=chunks[0], headers=octets).status_code == 204
    assert api.request("PUT", f"{files}/chunks/2", content=b"x", headers=octets).status_code == 400, (
        "skipped 1"
    )
    gz = {"Content-Type": "application/x-gzip"}
    assert (
        api.request("PUT", f"{files}/chunks/1", content=gzip.compress(chunks[1]), headers=gz).status_code
        == 204
    )
    assert api.request("PUT", f"{files}/chunks/2", content=chunks[2], headers=octets).status_code == 204
    assert api.request("PUT", f"{files}/chunks/2", content=second, headers=octets).status_code == 204, "retry"
    assert api.request("PUT", f"{files}/chunks/1", content=b"x", headers=octets).status_code == 400, (
        "not the last"
    )
    unsupported = api.request("PUT", f"{files}/chunks/3", content=b"x", headers={"Content-Type": "text/csv"})
    assert unsupported.status_code == 415
    assert unsupported.json()["status"]["code"] == 415
    assert api.request("PUT", f"{files}/chunks/3", content=b"not gzip", headers=gz).status_code == 400
    assert api.request("PUT", f"{files}/chunks/x", content=b"x", headers=octets).status_code == 400
    assert api.request("POST", f"{files}/complete", json={"id": "113000000002"}).status_code == 400
    completed = api.ok("POST", f"{files}/complete", json={"id": IMPORT_FILE_ID, "chunkCount": -1})["file"]
    assert completed["chunkCount"] == 3
    listed = {f["id"]: f for f in api.ok("GET", f"{api.model}/files")["files"]}
    assert listed[IMPORT_FILE_ID] == {
        "id": IMPORT_FILE_ID,
        "name": "Planning Data Load.csv",
        "chunkCount": 3,
        "delimiter": '"',
        "encoding": "UTF-8",
        "firstDataRow": 2,
        "format": "txt",
        "headerRow": 1,
        "separator": ",",
    }
    assert listed[EXPORT_ID]["name"] == "Planning Data Export.csv"
    downloaded = b"".join(api.request("GET", f"{files}/chunks/{n}").content for n in range(3))
    assert downloaded == first + second

    task = api.wait("imports", api.start_import())
    assert values(task)["successRowCount"] == 2
    assert landed(sandbox, "Actual") == {("FS-US", "5.1.1", "CC-100", "Jan 26"): Decimal(2)}
    assert sandbox.counters()["chunks_uploaded"] == 4

    # A declared count completes the file with its last chunk; more than declared is refused.
    api.ok("POST", files, json={"chunkCount": 1})
    assert api.request("PUT", f"{files}/chunks/0", content=csv_bytes(), headers=octets).status_code == 204
    assert api.request("PUT", f"{files}/chunks/1", content=b"x", headers=octets).status_code == 400
    assert api.ok("GET", f"{api.model}/files")["files"][0]["chunkCount"] == 1
    assert api.request("POST", files, json={"chunkCount": 0}).status_code == 400
    assert api.request("POST", files, json={"chunkCount": "many"}).status_code == 400
    export_file = api.request("POST", f"{api.model}/files/{EXPORT_ID}", json={"chunkCount": -1})
    assert export_file.status_code == 400, "an export's file is not uploaded into"


def test_an_import_needs_a_locale_and_a_known_version(api: Api, sandbox: PlanningSandbox) -> None:
    tasks = f"{api.model}/imports/{IMPORT_ID}/tasks"
    bodies: tuple[object, ...] = (
        {"localeName": "en_US"},
        {"localeName": "en_US", "mappingParameters": []},
        {"localeName": "en_US", "mappingParameters": [{"entityType": "Version", "entityName": "Plan B"}]},
        {"localeName": "en_US", "mappingParameters": [{"entityType": "Region", "entityName": "EMEA"}]},
        {"mappingParameters": [{"entityType": "Version", "entityName": "Actual"}]},
        [],
    )
    for body in bodies:
        refused = api.request("POST", tasks, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["status"]["code"] == 400
    assert api.request("POST", tasks, content=b"not json").status_code == 400
    assert api.request("POST", f"{api.model}/imports/112000000099/tasks", json={}).status_code == 404
    assert api.ok("GET", f"{api.model}/imports")["imports"] == [
        {
            "id": IMPORT_ID,
            "name": "Planning Data Load",
            "importDataSourceId": IMPORT_FILE_ID,
            "importType": "MODULE_DATA",
        }
    ]
    assert sandbox.counters()["tasks_started"] == {"imports": 0, "exports": 0}


# Export


def test_an_export_holds_every_cell_in_chunks(api: Api, sandbox: PlanningSandbox) -> None:
    api.load(csv_bytes("FS-EU,5.1.3,CC-300,Dec 26,-0.01", "FS-US,4.1.2,CC-100,Jan 26,42"))
    (export,) = api.ok("GET", f"{api.model}/exports")["exports"]
    assert export["id"] == EXPORT_ID
    assert export["exportFormat"] == "text/csv"
    task = api.wait("exports", api.start_export())
    assert task["taskState"] == "COMPLETE"
    assert task["result"]["successful"] is True
    assert task["result"]["objectId"] == EXPORT_ID

    files = f"{api.model}/files/{EXPORT_ID}"
    chunks = api.ok("GET", f"{files}/chunks")["chunks"]
    assert len(chunks) > 1, "the test sandbox cuts exports in 16 KiB chunks"
    assert chunks[0] == {"id": "0", "name": "Chunk 0"}
    parts = []
    for chunk in chunks:
        part = api.request("GET", f"{files}/chunks/{chunk['id']}")
        assert part.headers["content-type"] == "application/octet-stream"
        parts.append(part.content)
    assert all(len(part) == 16 * 1024 for part in parts[:-1])
    assert api.request("GET", f"{files}/chunks/{len(chunks)}").status_code == 404

    rows = list(csv.reader(io.StringIO(b"".join(parts).decode())))
    assert rows[0] == ["Version", "Entity", "Account", "Cost Centre", "Time", "Amount"]
    expected = [
        [version, c["entity"], c["account"], c["cost_center"], c["time"], c["amount"]]
        for version in ("Actual", "Budget", "Forecast")
        for c in sandbox.cells(version)
    ]
    assert rows[1:] == expected
    assert rows[1:3] == [
        ["Actual", "FS-US", "4.1.2", "CC-100", "Jan 26", "42"],
        ["Actual", "FS-EU", "5.1.3", "CC-300", "Dec 26", "-0.01"],
    ], "model order: list order, not alphabetical"
    assert sandbox.counters()["tasks_started"] == {"imports": 1, "exports": 1}


# Cancel, busy, slow


def test_a_cancelled_import_writes_nothing(api: Api, sandbox: PlanningSandbox) -> None:
    sandbox.faults(task_delay=3)
    api.upload(csv_bytes("FS-US,5.1.1,CC-100,Jan 26,1"))
    task_id = api.start_import()
    deadline = time.monotonic() + 5
    while api.poll("imports", task_id)["taskState"] != "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cancelled = api.ok("DELETE", f"{api.model}/imports/{IMPORT_ID}/tasks/{task_id}")["task"]
    assert cancelled["taskState"] in ("CANCELLING", "CANCELLED")
    task = api.wait("imports", task_id, timeout=2)
    assert task["taskState"] == "CANCELLED"
    assert task["result"]["successful"] is False
    assert landed(sandbox, "Actual") == {}
    assert sandbox.counters()["slow_tasks"] == 1
    again = api.ok("DELETE", f"{api.model}/imports/{IMPORT_ID}/tasks/{task_id}")["task"]
    assert again["taskState"] == "CANCELLED", "cancelling a finished task changes nothing"


def test_the_model_is_busy_while_a_task_runs_or_the_busy_fault_holds(
    api: Api, sandbox: PlanningSandbox
) -> None:
    sandbox.faults(task_delay=1)
    api.upload(csv_bytes("FS-US,5.1.1,CC-100,Jan 26,1"))
    task_id = api.start_import()
    status = api.request("POST", f"{api.model}/status")
    second = api.request(
        "POST",
        f"{api.model}/imports/{IMPORT_ID}/tasks",
        json={
            "localeName": "en_US",
            "mappingParameters": [{"entityType": "Version", "entityName": "Budget"}],
        },
    )
    export = api.request("POST", f"{api.model}/exports/{EXPORT_ID}/tasks", json={"localeName": "en_US"})
    for busy in (status, second, export):
        assert busy.status_code == 409, busy.text
        assert busy.json()["status"]["code"] == 409
    assert api.wait("imports", task_id)["taskState"] == "COMPLETE"
    assert api.request("POST", f"{api.model}/status").status_code == 200
    counters = sandbox.counters()
    assert counters["model_busy"] == 3
    assert counters["busy"] == 0, "a running task is not an injected fault"
    assert counters["tasks_started"]["imports"] == 1

    sandbox.faults(busy_seconds=0.6)
    assert api.request("POST", f"{api.model}/status").status_code == 409
    assert (
        api.request(
            "POST", f"{api.model}/exports/{EXPORT_ID}/tasks", json={"localeName": "en_US"}
        ).status_code
        == 409
    )
    assert sandbox.counters()["busy"] == 2
    time.sleep(0.7)
    assert api.request("POST", f"{api.model}/status").status_code == 200


def test_a_big_import_finishes_in_seconds_and_reports_progress(api: Api, sandbox: PlanningSandbox) -> None:
    entities = [c.code for c in COMPANIES]
    accounts = list(ACCOUNTS.values())
    centres = [code for code, _ in COST_CENTRES]
    lines = [
        f"{entities[n % 2]},{accounts[n % 12]},{centres[n % 5]},{MONTHS[n % 12]} 26,{n}.{n % 100:02d}"
        for n in range(50_000)
    ]
    api.upload(csv_bytes(*lines), chunk_size=256 * 1024)
    started = time.monotonic()
    task = api.wait("imports", api.start_import("Forecast"))
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"50,000 rows took {elapsed:.1f}s"
    assert values(task)["successRowCount"] == 50_000
    assert values(task)["failedCount"] == 0
    last: dict[tuple[str, str, str, str], Decimal] = {}
    for line in lines:
        entity, account, centre, month, amount = line.split(",")
        last[entity, account, centre, month] = Decimal(amount)
    forecast = landed(sandbox, "Forecast")
    assert all(forecast[key] == amount for key, amount in last.items()), "the last row for each cell wins"

    sandbox.faults(task_delay=1)
    task_id = api.start_import("Budget")
    seen = []
    while (task := api.poll("imports", task_id))["taskState"] != "COMPLETE":
        seen.append(task["progress"])
        time.sleep(0.05)
    assert any(0 < progress < 1 for progress in seen), seen
    assert seen == sorted(seen), "progress only rises"


# Faults and polling speed


def test_injected_429_and_5xx_do_nothing_and_are_counted(api: Api, sandbox: PlanningSandbox) -> None:
    config = sandbox.faults(rate_429=1, retry_after=3)
    assert config["rate_429"] == 1
    assert config["retry_after"] == 3
    body = {"localeName": "en_US", "mappingParameters": [{"entityType": "Version", "entityName": "Actual"}]}
    limited = api.request("POST", f"{api.model}/imports/{IMPORT_ID}/tasks", json=body)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["status"]["code"] == 429
    assert (
        httpx.post(f"{sandbox.url}/token/authenticate", auth=(sandbox.user, sandbox.password)).status_code
        == 201
    )
    assert sandbox.counters()["tasks_started"]["imports"] == 0, "a faulted request has no effect"

    sandbox.faults(rate_5xx=1, seed=1)
    statuses = {api.request("GET", "/2/0/workspaces").status_code for _ in range(20)}
    assert statuses <= {500, 502, 503}
    assert len(statuses) > 1

    def draws() -> list[int]:
        sandbox.faults(rate_429=0.3, rate_5xx=0.3, seed=5)
        return [api.request("GET", "/2/0/workspaces").status_code for _ in range(30)]

    first = draws()
    assert draws() == first, "the same seed draws the same faults"
    assert {200, 429} <= set(first)
    counters = sandbox.counters()
    assert counters["429"] == 1 + 2 * first.count(429)
    assert counters["5xx"] == 20 + 2 * sum(status >= 500 for status in first)
    assert counters["requests"] == 1 + 20 + 60
    faults = httpx.get(f"{sandbox.url}/sandbox/faults").json()
    assert faults["counters"]["429"] == counters["429"]
    assert set(faults["counters"]) == {"429", "5xx", "busy", "slow_tasks", "failed_rows"}

    for bad in ({"rate_429": 2}, {"rate_429": 0.6, "rate_5xx": 0.6}, {"typo": 1}):
        assert httpx.put(f"{sandbox.url}/sandbox/faults", json=bad).status_code == 400, bad


def test_injected_row_failures_land_in_the_dump(api: Api, sandbox: PlanningSandbox) -> None:
    sandbox.faults(failed_rows=0.5, seed=2)
    lines = [f"FS-US,5.1.1,CC-100,{month} 26,{n}" for n, month in enumerate(MONTHS)]
    task = api.load(csv_bytes(*lines))
    counts = values(task)
    assert 0 < counts["failedCount"] < 12
    assert counts["failedCount"] == sandbox.counters()["failed_rows"]
    assert counts["successRowCount"] == len(landed(sandbox, "Actual"))
    dump = api.request("GET", f"{api.model}/imports/{IMPORT_ID}/tasks/{task['taskId']}/dump").text
    assert dump.count("sandbox fault") == counts["failedCount"]


def test_polls_closer_than_the_minimum_interval_answer_429(api: Api, sandbox: PlanningSandbox) -> None:
    api.upload(csv_bytes())
    task_id = api.start_import()
    sandbox.polling(1.5)
    api.poll("imports", task_id)
    too_fast = api.request("GET", f"{api.model}/imports/{IMPORT_ID}/tasks/{task_id}")
    assert too_fast.status_code == 429
    assert too_fast.json()["status"]["code"] == 429
    assert int(too_fast.headers["retry-after"]) >= 1
    counters = sandbox.counters()
    assert counters["polls_too_fast"] == 1
    assert counters["429"] == 0, "not an injected fault"
    time.sleep(1.5)
    assert api.poll("imports", task_id)["taskState"] == "COMPLETE"


def test_without_fast_polling_a_task_is_polled_every_5_seconds(tmp_path: Path) -> None:
    slow = start_sandbox(tmp_path, fast_polling=False)
    try:
        api = Api(slow)
        api.upload(csv_bytes("FS-US,5.1.1,CC-100,Jan 26,1"))
        task_id = api.start_import()
        assert api.poll("imports", task_id)["taskId"] == task_id
        too_fast = api.request("GET", f"{api.model}/imports/{IMPORT_ID}/tasks/{task_id}")
        assert too_fast.status_code == 429
        assert 1 <= int(too_fast.headers["retry-after"]) <= 5
        refused = httpx.put(f"{slow.url}/sandbox/polling", json={"min_interval": 0})
        assert refused.status_code == 400, "only a sandbox started with --fast-polling polls fast"
        assert slow.counters()["polls_too_fast"] == 1
        api.http.close()
    finally:
        stop_sandbox(slow)
    assert slow.process.returncode == 0
    log = slow.log.read_text()
    assert "SANDBOX" in log
    assert "NOT Anaplan" in log
