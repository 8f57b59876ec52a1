"""`/api/v1/assets` and `/api/v1/tasks/{id}/changes`: the inventory as API users see it."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from surveyor.store.outliers import reasons_text, write_scores
from surveyor.store.schema import asset_outliers, assets
from surveyor.store.tasks import COUNT_CAP
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service

SSH = service(22, banner="SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13")
WEB = service(
    443,
    http={"status": 200, "server": "Microsoft-IIS/10.0", "title": "Intranet"},
    tls={"subject": "CN=intranet.corp.example", "issuer": "CN=Corp CA", "sha256": "ab" * 32},
)
PRINTER = service(9100)


@pytest.fixture
def place(console: ConsoleUnderTest) -> Place:
    site_id = console.admin.get("/api/v1/sites").json()[0]["id"]
    return Place(console.organization_id, site_id)


@pytest.fixture
def inventory(console: ConsoleUnderTest, place: Place, tmp_path: Path) -> dict[str, int]:
    """Five assets from one scan, and the task id that found them."""
    task_id = queue_hosts(
        console.db,
        tmp_path,
        place,
        [
            host(
                "127.0.0.10",
                mac="00:11:22:33:44:01",
                hostnames=["build.corp.example"],
                services=[SSH],
            ),
            host(
                "127.0.0.2", hostnames=["intranet.corp.example", "www.corp.example"], services=[WEB]
            ),
            host("127.0.0.30", services=[PRINTER]),
            host("127.0.0.4", "fe80::4", services=[SSH, PRINTER]),
            host("fe80::99"),
        ],
        targets="127.0.0.0/24,fe80::/120",
        ports="22,443,9100",
    )
    process_all(console.db, tmp_path)
    return {"task_id": task_id}


def addresses(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["address"] for item in answer.json()["items"]]


def search(console: ConsoleUnderTest, query: str) -> list[str]:
    return addresses(console.admin.get("/api/v1/assets", params={"search": query}))


@pytest.mark.usefixtures("inventory")
def test_assets_are_listed_in_address_order_page_by_page(console: ConsoleUnderTest) -> None:
    first = console.admin.get("/api/v1/assets", params={"limit": 2})
    assert addresses(first) == ["127.0.0.2", "127.0.0.4"]
    cursor = first.json()["next_cursor"]
    second = console.admin.get("/api/v1/assets", params={"limit": 2, "cursor": cursor})
    assert addresses(second) == ["127.0.0.10", "127.0.0.30"]
    last = console.admin.get(
        "/api/v1/assets", params={"limit": 2, "cursor": second.json()["next_cursor"]}
    )
    assert addresses(last) == ["fe80::99"]
    assert last.json()["next_cursor"] is None
    bad = console.admin.get("/api/v1/assets", params={"cursor": "garbage"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.usefixtures("inventory")
def test_an_asset_is_shown_with_its_services_names_and_site(console: ConsoleUnderTest) -> None:
    [listed] = console.admin.get("/api/v1/assets", params={"search": "address:=127.0.0.2"}).json()[
        "items"
    ]
    assert listed["ports"] == ["tcp/443 https"]
    assert listed["site"]
    detail = console.admin.get(f"/api/v1/assets/{listed['id']}").json()
    assert detail["hostnames"] == ["intranet.corp.example", "www.corp.example"]
    assert detail["os"] == "Windows"
    [web] = detail["services"]
    assert web["http_title"] == "Intranet"
    assert web["tls_subject"] == "CN=intranet.corp.example"
    assert web["product"] == "Microsoft-IIS/10.0"
    assert [(h["kind"], h["details"]["services"]) for h in detail["history"]] == [
        ("new", ["tcp/443 https"])
    ]


EVERYTHING = ["127.0.0.2", "127.0.0.4", "127.0.0.10", "127.0.0.30", "fe80::99"]
SEARCHES = [
    ("address:127.0.0.3", ["127.0.0.30"]),
    ("address:=fe80::4", ["127.0.0.4"]),
    ("hostname:www", ["127.0.0.2"]),
    ("mac:00:11:22", ["127.0.0.10"]),
    ("os:ubuntu", ["127.0.0.4", "127.0.0.10"]),
    ("port:9100", ["127.0.0.4", "127.0.0.30"]),
    ("port:22 port:9100", ["127.0.0.4"]),
    ("port:>1000", ["127.0.0.4", "127.0.0.30"]),
    ("service:https", ["127.0.0.2"]),
    ("protocol:ssh", ["127.0.0.4", "127.0.0.10"]),
    ("transport:udp", []),
    ("product:openssh", ["127.0.0.4", "127.0.0.10"]),
    ("title:intranet", ["127.0.0.2"]),
    ("tls_issuer:corp", ["127.0.0.2"]),
    ("services:0", ["fe80::99"]),
    ("services:>=2", ["127.0.0.4"]),
    ("alive:true NOT port:22", ["127.0.0.2", "127.0.0.30", "fe80::99"]),
    ("alive:false", []),
    ("first_seen:>100years", []),
    ("last_seen:2026-03-01", EVERYTHING),
    ("build", ["127.0.0.10"]),
    ("site:=prim%", EVERYTHING),
    ("site:elsewhere", []),
    ("hostname:intranet OR port:9100", ["127.0.0.2", "127.0.0.4", "127.0.0.30"]),
]


@pytest.mark.usefixtures("inventory")
def test_the_search_language_works_on_asset_keys(console: ConsoleUnderTest) -> None:
    found = {query: search(console, query) for query, _ in SEARCHES}
    assert found == dict(SEARCHES)


def set_outlier_scores(console: ConsoleUnderTest, scores: dict[str, int]) -> None:
    """These scores, and no score for the other assets (in place of what the Outlier
    calculation wrote)."""
    with console.db.write() as conn:
        conn.execute(delete(asset_outliers))
        ids = {row.address: row.id for row in conn.execute(select(assets.c.address, assets.c.id))}
        write_scores(
            conn, [(ids[address], score, reasons_text([])) for address, score in scores.items()]
        )


def test_every_asset_key_of_the_issue_is_searchable(
    console: ConsoleUnderTest, inventory: dict[str, int]
) -> None:
    set_outlier_scores(console, {"127.0.0.2": 91, "127.0.0.4": 80, "127.0.0.30": 12})
    [build] = console.admin.get("/api/v1/assets", params={"search": "build"}).json()["items"]
    build_id = build["id"]
    task_id = inventory["task_id"]
    found = {
        query: search(console, query)
        for query in (
            f"id:{build_id}",
            f"last_task:{task_id}",
            f"last_task:>{task_id}",
            "changed_at:2026-03-01",
            "changed_at:>2026-03-02",
            "banner:ubuntu",
            "http_server:iis",
            "tls_subject:intranet",
            "outlier:>80",
            "outlier:>=80",
            "outlier:<50",
            "NOT outlier:>0",
            "outlier:>50 port:443",
        )
    }
    assert build["address"] == "127.0.0.10"
    assert found == {
        f"id:{build_id}": ["127.0.0.10"],
        f"last_task:{task_id}": EVERYTHING,
        f"last_task:>{task_id}": [],
        "changed_at:2026-03-01": EVERYTHING,
        "changed_at:>2026-03-02": [],
        "banner:ubuntu": ["127.0.0.4", "127.0.0.10"],
        "http_server:iis": ["127.0.0.2"],
        "tls_subject:intranet": ["127.0.0.2"],
        "outlier:>80": ["127.0.0.2"],
        "outlier:>=80": ["127.0.0.2", "127.0.0.4"],
        "outlier:<50": ["127.0.0.30"],
        "NOT outlier:>0": ["127.0.0.10", "fe80::99"],
        "outlier:>50 port:443": ["127.0.0.2"],
    }
    shown = console.admin.get(f"/api/v1/assets/{build_id}").json()
    assert shown["outlier"] is None, "an asset no outlier task scored has no score"


def test_an_outlier_score_is_a_whole_number_from_0_to_100(console: ConsoleUnderTest) -> None:
    answer = console.admin.get("/api/v1/assets", params={"search": "outlier:>0.8"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_search"
    assert "0.8" in error["message"]


def test_an_unknown_key_is_a_400_listing_the_valid_keys(console: ConsoleUnderTest) -> None:
    answer = console.admin.get("/api/v1/assets", params={"search": "prot:22"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_search"
    assert "port" in error["details"]["valid_keys"]
    assert error["details"]["position"] == 0


@pytest.mark.usefixtures("inventory")
def test_another_organizations_assets_are_never_seen(console: ConsoleUnderTest) -> None:
    _, other = console.other_organization()
    assert addresses(other.get("/api/v1/assets")) == []
    mine = console.admin.get("/api/v1/assets").json()["items"][0]["id"]
    assert other.get(f"/api/v1/assets/{mine}").status_code == 404
    viewer = console.as_role("viewer")
    assert viewer.get(f"/api/v1/assets/{mine}").status_code == 200
    assert console.anonymous().get("/api/v1/assets").status_code == 401


def test_the_change_report_of_a_task_is_paged_and_filtered(
    console: ConsoleUnderTest, place: Place, tmp_path: Path, inventory: dict[str, int]
) -> None:
    later = queue_hosts(
        console.db,
        tmp_path,
        place,
        [
            host("127.0.0.10", mac="00:11:22:33:44:01", services=[SSH]),
            host("127.0.0.2", hostnames=["intranet.corp.example"], services=[WEB]),
            host("127.0.0.4", "fe80::4", services=[SSH]),
            host("127.0.0.77"),
        ],
        targets="127.0.0.0/24",
        ports="22,443,9100",
        finished_at="2026-03-02T12:00:00Z",
    )
    process_all(console.db, tmp_path)
    report = console.admin.get(f"/api/v1/tasks/{later}/changes").json()
    assert report["summary"] == {
        "new": 1,
        "changed": 2,
        "offline": 1,
        "online": 0,
        "unchanged": 1,
        "ignored": 0,
        "total": 4,
    }
    assert sorted((item["kind"], item["address"]) for item in report["items"]) == [
        ("changed", "127.0.0.2"),
        ("changed", "127.0.0.4"),
        ("new", "127.0.0.77"),
        ("offline", "127.0.0.30"),
    ]
    printer = next(i for i in report["items"] if i["address"] == "127.0.0.4")
    assert printer["details"]["services"] == {"removed": ["tcp/9100 jetdirect"]}
    page = console.admin.get(f"/api/v1/tasks/{later}/changes", params={"limit": 3}).json()
    rest = console.admin.get(
        f"/api/v1/tasks/{later}/changes", params={"limit": 3, "cursor": page["next_cursor"]}
    ).json()
    assert len(page["items"]) + len(rest["items"]) == 4
    assert rest["next_cursor"] is None
    offline = console.admin.get(
        f"/api/v1/tasks/{later}/changes", params={"kind": ["offline", "new"]}
    ).json()
    assert sorted(i["kind"] for i in offline["items"]) == ["new", "offline"]
    first = console.admin.get(f"/api/v1/tasks/{inventory['task_id']}/changes").json()
    assert [i["kind"] for i in first["items"]] == ["new"] * 5


@pytest.mark.usefixtures("inventory")
def test_the_change_report_downloads_as_jsonl(
    console: ConsoleUnderTest, inventory: dict[str, int]
) -> None:
    answer = console.admin.get(
        f"/api/v1/tasks/{inventory['task_id']}/changes", params={"format": "jsonl"}
    )
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert lines[0]["type"] == "report"
    assert lines[0]["summary"]["new"] == 5
    assert [line["kind"] for line in lines[1:]] == ["new"] * 5


def test_a_task_that_was_not_processed_has_no_change_report(console: ConsoleUnderTest) -> None:
    created = console.admin.post(
        "/api/v1/tasks", json={"name": "later", "start_time": "2099-01-01T00:00:00Z"}
    ).json()
    answer = console.admin.get(f"/api/v1/tasks/{created['id']}/changes")
    assert answer.status_code == 404
    assert "not been processed" in answer.json()["error"]["message"]
    assert console.admin.get("/api/v1/tasks/999999/changes").status_code == 404


def bulk_assets(console: ConsoleUnderTest, how_many: int) -> None:
    """`how_many` more assets like the first one, each at its own address."""
    with console.db.write() as conn:
        template = dict(
            conn.execute(select(assets).order_by(assets.c.id).limit(1)).mappings().one()
        )
        del template["id"]
        conn.execute(
            insert(assets),
            [
                {
                    **template,
                    "address": f"127.1.{number // 256}.{number % 256}",
                    "address_key": f"bulk-{number:08d}",
                }
                for number in range(how_many)
            ],
        )


@pytest.mark.usefixtures("inventory")
def test_asset_counts_stop_at_the_cap_and_count_exactly_on_request(
    console: ConsoleUnderTest,
) -> None:
    listed = len(console.admin.get("/api/v1/assets", params={"limit": 1000}).json()["items"])
    assert console.admin.get("/api/v1/assets/count").json() == {"count": listed, "capped": False}
    bulk_assets(console, COUNT_CAP + 1)
    capped = console.admin.get("/api/v1/assets/count")
    assert capped.status_code == 200, capped.text
    assert capped.json() == {"count": COUNT_CAP, "capped": True}
    exact = console.admin.get("/api/v1/assets/count", params={"exact": "true"})
    assert exact.json() == {"count": listed + COUNT_CAP + 1, "capped": False}
    # A search under the cap is counted exactly: as many as it lists.
    searched = {"search": "port:443"}
    found = console.admin.get("/api/v1/assets", params=searched).json()["items"]
    assert found
    counted = console.admin.get("/api/v1/assets/count", params=searched).json()
    assert counted == {"count": len(found), "capped": False}
    bad = console.admin.get("/api/v1/assets/count", params={"search": "alive:maybe"})
    assert bad.status_code == 400
    _, other_admin = console.other_organization()
    assert other_admin.get("/api/v1/assets/count").json() == {"count": 0, "capped": False}


@pytest.mark.usefixtures("inventory")
def test_the_assets_page_shows_the_capped_count_and_counts_exactly_on_a_click(
    console: ConsoleUnderTest,
) -> None:
    client, _ = signed_in(console, "viewer")
    listed = len(console.admin.get("/api/v1/assets", params={"limit": 1000}).json()["items"])
    page = client.get("/assets")
    assert f"{listed} assets" in page.text
    assert "Count exactly" not in page.text
    bulk_assets(console, COUNT_CAP + 1)
    page = client.get("/assets")
    assert f"{COUNT_CAP:,}+ assets" in page.text
    link = re.search(r'<a href="([^"]*exact=true)">Count exactly</a>', page.text)
    assert link is not None
    exact = client.get(html.unescape(link.group(1)))
    assert exact.status_code == 200
    assert f"{listed + COUNT_CAP + 1:,} assets" in exact.text
    assert "Count exactly" not in exact.text
    # the pages after it keep counting exactly, and so does the way back to the first
    following = re.search(r'<a href="([^"]*)">Next page</a>', exact.text)
    assert following is not None
    assert "exact=true" in following.group(1)
    second = client.get(html.unescape(following.group(1)))
    assert f"{listed + COUNT_CAP + 1:,} assets" in second.text
    first = re.search(r'<a href="([^"]*)">First page</a>', second.text)
    assert first is not None
    assert "exact=true" in first.group(1)
    alone = {"search": "address:=127.0.0.30"}
    assert len(console.admin.get("/api/v1/assets", params=alone).json()["items"]) == 1
    assert "1 asset matches" in client.get("/assets", params=alone).text


@pytest.mark.usefixtures("inventory")
def test_sorted_by_score_ties_go_by_id_and_unscored_assets_come_last(
    console: ConsoleUnderTest,
) -> None:
    set_outlier_scores(console, {"127.0.0.10": 75, "127.0.0.30": 40, "127.0.0.2": 40})
    listed = console.admin.get("/api/v1/assets", params={"limit": 10}).json()["items"]
    ids = {item["address"]: item["id"] for item in listed}
    tied = sorted(["127.0.0.30", "127.0.0.2"], key=ids.__getitem__)
    unscored = sorted(["127.0.0.4", "fe80::99"], key=ids.__getitem__)
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "outlier", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        answer = console.admin.get("/api/v1/assets", params=params)
        pages.append(addresses(answer))
        cursor = answer.json()["next_cursor"]
        if not cursor:
            break
    # Two to a page: the second page ends the scored assets and starts the unscored ones.
    assert pages == [["127.0.0.10", tied[0]], [tied[1], unscored[0]], [unscored[1]]]
    found = console.admin.get(
        "/api/v1/assets", params={"sort": "outlier", "search": "outlier:>=40"}
    )
    assert addresses(found) == ["127.0.0.10", *tied]
    by_id = console.admin.get(f"/api/v1/assets/{ids['127.0.0.10']}").json()
    assert (by_id["outlier"], by_id["outlier_reasons"]) == (75, [])
