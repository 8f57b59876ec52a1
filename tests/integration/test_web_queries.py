"""Saving searches on the web: "Save to Dashboard" on the Assets and Tasks pages, the Saved
searches pages, and changing, unpinning and deleting an insight from the Dashboard, through
the same rules as `/api/v1/queries`."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest


def saved(console: ConsoleUnderTest) -> list[dict[str, Any]]:
    answer = console.admin.get("/api/v1/queries")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def save(client: TestClient, csrf: str, **fields: str) -> Any:
    return client.post("/queries", data={"csrf_token": csrf, "pinned": "1", **fields})


def test_the_assets_page_offers_to_save_its_search_to_operators_only(
    console: ConsoleUnderTest,
) -> None:
    operator, _ = signed_in(console, "operator")
    page = operator.get("/assets", params={"search": "port:22 alive:true"}).text
    form = re.search(r'<details class="save-search".*?</details>', page, re.S)
    assert form is not None
    assert 'name="search" value="port:22 alive:true"' in form.group(0)
    assert 'value="asset"' in form.group(0)
    assert 'value="service"' in form.group(0)
    viewer, _ = signed_in(console, "viewer")
    assert "Save to Dashboard" not in viewer.get("/assets").text
    # a search that is not valid cannot be saved from the page
    assert "Save to Dashboard" not in operator.get("/assets", params={"search": "port:"}).text


def test_the_tasks_page_offers_to_save_its_search_as_a_task_search(
    console: ConsoleUnderTest,
) -> None:
    operator, _ = signed_in(console, "operator")
    page = operator.get("/tasks", params={"search": "type:scan status:canceled"}).text
    form = re.search(r'<details class="save-search".*?</details>', page, re.S)
    assert form is not None
    assert 'name="kind" value="task"' in form.group(0)
    assert 'name="search" value="type:scan status:canceled"' in form.group(0)


def test_saving_a_search_pins_it_and_the_dashboard_says_so(console: ConsoleUnderTest) -> None:
    client, csrf = signed_in(console, "operator")
    answer = save(client, csrf, name="SSH servers", kind="asset", search="port:22", threshold="3")
    assert answer.status_code == 303
    [query] = saved(console)
    assert (query["name"], query["kind"], query["search"], query["threshold"]) == (
        "SSH servers",
        "asset",
        "port:22",
        3,
    )
    assert query["pinned"] is True
    assert answer.headers["location"] == f"/dashboard?saved={query['id']}"
    dashboard = client.get(answer.headers["location"]).text
    assert "Saved “SSH servers” and pinned it here" in dashboard
    assert f'data-insight="{query["id"]}"' in dashboard
    assert "Threshold 3" in dashboard
    # a Query task was asked for, so the count appears soon
    tasks = console.admin.get("/api/v1/tasks", params={"tab": "all", "search": "type:query"})
    assert tasks.json()["items"], tasks.text


def test_a_search_that_is_not_valid_comes_back_with_the_position_at_fault(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    answer = save(client, csrf, name="Bad", kind="service", search="port:22 nosuchkey:1")
    assert answer.status_code == 400
    assert "The search is not valid" in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert '<mark class="error-at"' in answer.text
    assert "Keys you can use" in answer.text
    # what was typed is kept
    assert 'value="port:22 nosuchkey:1"' in answer.text
    assert saved(console) == []


def test_a_form_without_a_name_or_with_a_bad_threshold_is_refused_in_words(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    nameless = save(client, csrf, name="  ", kind="asset", search="port:22")
    assert nameless.status_code == 400
    assert "A saved query needs a name." in nameless.text
    negative = save(client, csrf, name="Odd", kind="asset", search="", threshold="-1")
    assert negative.status_code == 400
    assert "Give a whole number from 0" in negative.text
    unknown_kind = save(client, csrf, name="Odd", kind="printers", search="")
    assert unknown_kind.status_code == 400
    assert "is not a kind of search" in unknown_kind.text
    assert save(client, csrf, name="Twice", kind="asset", search="").status_code == 303
    again = save(client, csrf, name="Twice", kind="task", search="")
    assert again.status_code == 400
    assert "A saved query named &#39;Twice&#39; exists." in again.text
    assert [query["name"] for query in saved(console)] == ["Twice"]


def test_an_insight_is_renamed_and_its_threshold_changed_from_the_dashboard(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    assert save(client, csrf, name="Web", kind="service", search="port:80").status_code == 303
    [query] = saved(console)
    page = client.get("/dashboard").text
    assert f'action="/queries/{query["id"]}"' in page
    changed = client.post(
        f"/queries/{query['id']}",
        data={
            "csrf_token": csrf,
            "name": "Web servers",
            "threshold": "10",
            "return_to": "dashboard",
        },
    )
    assert (changed.status_code, changed.headers["location"]) == (303, "/dashboard")
    [query] = saved(console)
    assert (query["name"], query["threshold"], query["search"]) == ("Web servers", 10, "port:80")
    cleared = client.post(
        f"/queries/{query['id']}",
        data={"csrf_token": csrf, "name": "Web servers", "threshold": "", "return_to": "dashboard"},
    )
    assert cleared.status_code == 303
    assert saved(console)[0]["threshold"] is None


def test_a_refused_change_shows_the_search_page_with_the_reason(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    assert save(client, csrf, name="Web", kind="asset", search="port:80").status_code == 303
    [query] = saved(console)
    refused = client.post(
        f"/queries/{query['id']}",
        data={"csrf_token": csrf, "name": "Web", "search": "port:>>", "threshold": ""},
    )
    assert refused.status_code == 400
    assert "The search is not valid" in refused.text
    assert saved(console)[0]["search"] == "port:80"
    other = client.post(
        f"/queries/{query['id']}", data={"csrf_token": csrf, "name": "", "threshold": "5"}
    )
    assert other.status_code == 400
    assert "A saved query needs a name." in other.text
    assert saved(console)[0]["threshold"] is None


def test_an_insight_is_unpinned_pinned_again_and_deleted(console: ConsoleUnderTest) -> None:
    client, csrf = signed_in(console, "operator")
    assert save(client, csrf, name="Failed", kind="task", search="status:canceled").status_code
    [query] = saved(console)
    unpinned = client.post(
        f"/queries/{query['id']}/unpin", data={"csrf_token": csrf, "return_to": "dashboard"}
    )
    assert (unpinned.status_code, unpinned.headers["location"]) == (303, "/dashboard")
    assert saved(console)[0]["pinned"] is False
    assert f'data-insight="{query["id"]}"' not in client.get("/dashboard").text
    listed = client.get("/queries").text
    assert "Failed" in listed
    assert f'action="/queries/{query["id"]}/pin"' in listed
    assert client.post(f"/queries/{query['id']}/pin", data={"csrf_token": csrf}).status_code == 303
    assert saved(console)[0]["pinned"] is True
    confirm = client.get(f"/queries/{query['id']}/delete")
    assert "Delete the saved search “Failed”?" in confirm.text
    deleted = client.post(f"/queries/{query['id']}/delete", data={"csrf_token": csrf})
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/dashboard")
    assert saved(console) == []
    assert client.get(f"/queries/{query['id']}").status_code == 404


def test_a_saved_searchs_page_shows_its_counts_and_offers_changes_to_operators(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    assert save(client, csrf, name="All assets", kind="asset", search="").status_code == 303
    [query] = saved(console)
    page = client.get(f"/queries/{query['id']}").text
    assert "No count yet: a Query task counts it soon." in page
    assert "Save changes" in page
    viewer, _ = signed_in(console, "viewer")
    seen = viewer.get(f"/queries/{query['id']}").text
    assert "All assets" in seen
    assert "Save changes" not in seen
    assert "Change<" not in viewer.get("/dashboard").text
