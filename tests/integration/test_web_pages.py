"""The web console's pages on each backend: what they show, what their forms do."""

from __future__ import annotations

import html
import re
from pathlib import Path

from surveyor.core.tasks import TaskStatus
from surveyor.store import tasks as store
from surveyor.store.records import create_record
from surveyor.store.schema import explorers
from tests.integration.test_web_sessions import FUTURE, create, signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, host, process_all, queue_hosts, service

FRAGMENT = {"X-Surveyor-Fragment": "1"}


def count_of(page: str, tab: str) -> int:
    match = re.search(rf'data-count="{tab}">(\d+)<', page)
    assert match is not None, tab
    return int(match.group(1))


def test_each_tab_lists_its_tasks_and_counts_every_tab(console: ConsoleUnderTest) -> None:
    later = create(console, name="later", start_time=FUTURE)
    create(console, name="nightly", recur={"frequency": "daily", "time": "02:00"})
    running = create(console, name="running")
    with console.db.write() as conn:
        store.transition(
            conn, console.organization_id, running["id"], TaskStatus.ACTIVE, actor="test"
        )
    client, _ = signed_in(console, "viewer")
    page = client.get("/tasks?tab=scheduled").text
    assert ">later</a>" in page
    assert ">nightly</a>" not in page
    assert (count_of(page, "scheduled"), count_of(page, "recurring")) == (1, 1)
    assert (count_of(page, "active"), count_of(page, "all")) == (1, 3)
    assert "waiting for its start time" in page
    active = client.get("/tasks?tab=active").text
    assert ">running</a>" in active
    assert 'class="status st-active"' in active
    card = client.get(f"/tasks?tab=scheduled&task={later['id']}").text
    assert 'id="task-card"' in card
    assert "Timeline" in card


def test_a_stale_page_link_shows_the_first_page_and_says_so(console: ConsoleUnderTest) -> None:
    create(console, name="first")
    client, _ = signed_in(console, "viewer")
    page = client.get("/tasks?tab=all&cursor=not-a-cursor")
    assert page.status_code == 200
    assert "That page link was stale; showing the first page." in page.text
    assert ">first</a>" in page.text


def test_a_search_narrows_the_counts_and_a_bad_one_shows_where_it_fails(
    console: ConsoleUnderTest,
) -> None:
    create(console, name="alpha", start_time=FUTURE)
    create(console, name="beta", start_time=FUTURE)
    client, _ = signed_in(console, "viewer")
    page = client.get("/tasks", params={"tab": "scheduled", "search": "name:alpha"}).text
    assert ">alpha</a>" in page
    assert ">beta</a>" not in page
    # a searched view's counts come in a second request, so the page is not held up
    assert 'data-counts-url="/tasks/counts?search=name%3Aalpha"' in page
    counts = client.get("/tasks/counts", params={"search": "name:alpha"}).json()["counts"]
    assert (counts["scheduled"], counts["all"]) == (1, 1)
    assert client.get("/tasks/counts", params={"search": "name:("}).status_code == 400
    bad = client.get("/tasks", params={"tab": "all", "search": "name:alpha AND (type:scan"}).text
    assert "The search has an error" in bad
    assert '<mark class="error-at"' in bad
    assert 'aria-invalid="true"' in bad
    unknown = client.get("/tasks", params={"search": "colour:blue"}).text
    assert "colour" in unknown
    assert "<code>status</code>" in unknown  # the keys one can use


def test_the_fragment_holds_only_the_regions_the_script_swaps(
    console: ConsoleUnderTest,
) -> None:
    task = create(console, start_time=FUTURE)
    client, _ = signed_in(console)
    response = client.get(f"/tasks?tab=scheduled&task={task['id']}", headers=FRAGMENT)
    assert "<html" not in response.text
    for region in ('id="tabs"', 'id="search-feedback"', 'id="card"', 'id="table"'):
        assert region in response.text
    assert response.headers["x-surveyor-url"] == f"/tasks?tab=scheduled&task={task['id']}"


def test_text_from_users_is_escaped_everywhere(console: ConsoleUnderTest) -> None:
    name = '<script>alert("x")</script>'
    task = create(console, name=name, start_time=FUTURE)
    client, _ = signed_in(console)
    page = client.get(f"/tasks?tab=scheduled&task={task['id']}").text
    assert name not in page
    assert html.escape(name, quote=False) in page or "&lt;script&gt;" in page
    search = client.get("/tasks", params={"search": '"<img src=x onerror=alert(1)>'}).text
    assert "<img src=x" not in search


def test_another_organizations_task_is_not_shown(console: ConsoleUnderTest) -> None:
    _, other_admin = console.other_organization()
    theirs = other_admin.post(
        "/api/v1/tasks", json={"name": "their secret scan", "start_time": FUTURE}
    ).json()
    client, _ = signed_in(console)
    page = client.get(f"/tasks?tab=all&task={theirs['id']}").text
    assert "their secret scan" not in page
    assert "does not exist" in page
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post(f"/tasks/{theirs['id']}/stop", data={"csrf_token": csrf}).status_code == 404


def test_the_new_task_form_creates_a_scan_and_names_the_field_at_fault(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "operator")
    form = client.get("/tasks/new").text
    assert ">127.0.0.1</textarea>" in form  # the targets start as the site's scope
    base = {"csrf_token": csrf, "name": "web scan", "ports": "default", "when": "now"}
    bad_targets = client.post("/tasks/new", data={**base, "targets": "127.0.0.1, 127.0.0.300"})
    assert bad_targets.status_code == 400
    assert 'id="targets-error"' in bad_targets.text
    assert "127.0.0.300" in bad_targets.text
    bad_zone = client.post(
        "/tasks/new",
        data={
            **base,
            "targets": "127.0.0.1",
            "when": "recurring",
            "frequency": "weekly",
            "time": "03:30",
            "weekdays": ["mo", "we"],
            "timezone": "Mars/Olympus",
        },
    )
    assert bad_zone.status_code == 400
    assert 'id="timezone-error"' in bad_zone.text
    assert "Mars/Olympus" in bad_zone.text
    bad_ports = client.post(
        "/tasks/new",
        data={**base, "targets": "127.0.0.1", "ports": "custom", "ports_custom": "22,http"},
    )
    assert 'id="ports_custom-error"' in bad_ports.text

    created = client.post(
        "/tasks/new",
        data={**base, "targets": "127.0.0.1", "ports": "custom", "ports_custom": "22,80"},
    )
    assert created.status_code == 303
    task_id = int(created.headers["location"].rsplit("task=", 1)[1])
    task = console.admin.get(f"/api/v1/tasks/{task_id}").json()
    assert task["name"] == "web scan"
    assert task["params"]["tcp_ports"] == "22,80"
    assert task["created_by"] == "web-operator@example.test"

    later = client.post(
        "/tasks/new",
        data={
            **base,
            "targets": "127.0.0.1",
            "when": "later",
            "start_time": "2099-03-01T09:15",
            "timezone": "Europe/Berlin",
        },
    )
    later_id = int(later.headers["location"].rsplit("task=", 1)[1])
    assert console.admin.get(f"/api/v1/tasks/{later_id}").json()["start_time"] == (
        "2099-03-01T08:15:00Z"
    )


def test_the_schedule_preview_shows_five_runs_or_the_field_at_fault(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "viewer")
    headers = {"X-CSRF-Token": csrf}
    answer = client.post(
        "/tasks/new/preview",
        data={"frequency": "weekly", "time": "03:30", "weekdays": ["mo", "we"], "timezone": "UTC"},
        headers=headers,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["occurrences"]) == 5
    assert body["occurrences"][0]["text"].endswith("03:30 UTC")
    assert "Mon, Wed" in body["description"]
    wrong = client.post(
        "/tasks/new/preview",
        data={"frequency": "daily", "time": "25:00", "timezone": "UTC"},
        headers=headers,
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"]["field"] == "time"
    forged = client.post("/tasks/new/preview", data={"frequency": "daily"})
    assert forged.status_code == 403


def test_template_actions_pause_resume_and_run_now(console: ConsoleUnderTest) -> None:
    template = create(console, name="nightly", recur={"frequency": "daily", "time": "02:00"})
    client, csrf = signed_in(console, "operator")
    view = {"csrf_token": csrf, "tab": "recurring"}
    path = f"/tasks/{template['id']}"
    assert client.post(f"{path}/pause", data=view).status_code == 303
    page = client.get(f"/tasks?tab=recurring&task={template['id']}").text
    assert 'data-action="resume"' in page
    assert 'data-action="pause"' not in page
    assert client.post(f"{path}/resume", data=view).status_code == 303
    assert client.post(f"{path}/run-now", data=view).status_code == 303
    card = client.get(f"/tasks?tab=recurring&task={template['id']}").text
    runs = re.findall(r'<td data-label="Run"><a [^>]*>#(\d+)</a>', card)
    assert len(runs) == 1
    illegal = client.post(f"{path}/stop", data=view, headers=FRAGMENT)
    assert illegal.status_code == 409
    assert "recurring template does not run itself" in illegal.text
    assert client.post(f"{path}/remove", data=view).status_code == 303
    assert console.admin.get(f"/api/v1/tasks/{runs[0]}").status_code == 200


def test_the_explorers_page_shows_explorers_and_enrolls_new_ones(
    console: ConsoleUnderTest,
) -> None:
    with console.db.write() as conn:
        create_record(
            conn,
            explorers,
            console.organization_id,
            {"name": "branch-1", "addresses": ["127.0.0.9"], "version": "0.1.0"},
        )
    admin, csrf = signed_in(console, "admin")
    page = admin.get("/explorers").text
    assert "branch-1" in page
    assert "Offline" in page
    made = admin.post("/explorers/enrollment-tokens", data={"csrf_token": csrf, "name": "lab"})
    assert made.status_code == 200
    command = re.search(r"surveyor explorer --console (\S+) --token (sve_\S+?)<", made.text)
    assert command is not None
    assert command.group(1) == "http://testserver"
    operator, operator_csrf = signed_in(console, "operator")
    assert "Create enrollment token" not in operator.get("/explorers").text
    refused = operator.post(
        "/explorers/enrollment-tokens", data={"csrf_token": operator_csrf, "name": "x"}
    )
    assert refused.status_code == 403


def test_the_sites_and_assets_pages_render(console: ConsoleUnderTest) -> None:
    client, _ = signed_in(console, "viewer")
    sites = client.get("/sites")
    assert sites.status_code == 200
    assert "Primary" in sites.text
    assert "127.0.0.1" in sites.text
    assets = client.get("/assets")
    assert assets.status_code == 200
    assert "No assets yet" in assets.text
    bad = client.get("/assets", params={"search": "alive:maybe"})
    assert "The search has an error" in bad.text
    assert client.get("/assets/999999").status_code == 404


def test_the_enrollment_form_makes_week_long_tokens_unless_told_never_and_limits_uses(
    console: ConsoleUnderTest,
) -> None:
    admin, csrf = signed_in(console, "admin")
    assert 'placeholder="7"' in admin.get("/explorers").text

    week = admin.post("/explorers/enrollment-tokens", data={"csrf_token": csrf, "name": "week"})
    forever = admin.post(
        "/explorers/enrollment-tokens",
        data={"csrf_token": csrf, "name": "forever", "no_expiry": "1", "max_uses": "2"},
    )

    assert (week.status_code, forever.status_code) == (200, 200)
    tokens = {item["name"]: item for item in console.admin.get("/api/v1/enrollment-tokens").json()}
    assert tokens["week"]["expires_at"] is not None
    assert tokens["week"]["max_uses"] is None
    assert tokens["forever"]["expires_at"] is None
    assert tokens["forever"]["max_uses"] == 2
    row = re.search(r"<tr><td data-label=\"Name\">forever</td>.*?</tr>", forever.text)
    assert row is not None
    assert "0 of 2" in row.group(0)
    assert "never" in row.group(0)


RLO = "\u202e"
ZWSP = "\u200b"
SHOWN_RLO = '<span class="hidden-char" title="U+202E RIGHT-TO-LEFT OVERRIDE">\\u202e</span>'
SHOWN_ZWSP = '<span class="hidden-char" title="U+200B ZERO WIDTH SPACE">\\u200b</span>'


def test_hidden_characters_in_names_and_banners_are_shown_escaped_on_every_page(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    site = console.admin.post(
        "/api/v1/sites", json={"name": f"Bra{ZWSP}nch", "scope": "127.0.0.0/24"}
    ).json()
    task = create(console, name=f"invoice{RLO}gpj.exe", site_id=site["id"], start_time=FUTURE)
    token = console.admin.post("/api/v1/enrollment-tokens", json={"name": "t"}).json()["token"]
    enrolled = console.client.post(
        "/api/v1/explorer/enroll",
        json={"name": f"probe{RLO}1", "hostname": f"host{ZWSP}a", "os": "Linux\x1b[31m"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert enrolled.status_code == 201, enrolled.text
    place = Place(console.organization_id, site["id"])
    queue_hosts(
        console.db,
        tmp_path,
        place,
        [
            host(
                "127.0.0.7",
                hostnames=["mail.corp.example"],
                services=[
                    service(25, banner=f"220 smtp{RLO}ready\r\n"),
                    service(80, http={"status": 200, "title": f"Log{ZWSP}in"}),
                ],
            )
        ],
        targets="127.0.0.0/24",
        ports="25,80",
    )
    process_all(console.db, tmp_path)
    asset_id = console.admin.get("/api/v1/assets").json()["items"][0]["id"]
    client, _ = signed_in(console, "viewer")

    pages = {
        "tasks": client.get(f"/tasks?tab=scheduled&task={task['id']}").text,
        "sites": client.get("/sites").text,
        "explorers": client.get("/explorers").text,
        "assets": client.get("/assets").text,
        "asset": client.get(f"/assets/{asset_id}").text,
    }

    for name, page in pages.items():
        assert RLO not in page, name
        assert ZWSP not in page, name
        assert "\x1b" not in page, name
    assert f"invoice{SHOWN_RLO}gpj.exe" in pages["tasks"]
    assert f"Bra{SHOWN_ZWSP}nch" in pages["tasks"]
    assert 'aria-label="Scan progress of invoice\\u202egpj.exe"' in pages["tasks"]
    assert f"Bra{SHOWN_ZWSP}nch" in pages["sites"]
    assert f"probe{SHOWN_RLO}1" in pages["explorers"]
    assert f"host{SHOWN_ZWSP}a" in pages["explorers"]
    assert 'Linux<span class="hidden-char" title="U+001B">\\u001b</span>[31m' in pages["explorers"]
    assert "mail.corp.example" in pages["assets"]
    assert f"220 smtp{SHOWN_RLO}ready" in pages["asset"]
    assert f"“Log{SHOWN_ZWSP}in”" in pages["asset"]


def test_a_search_with_a_hidden_character_is_shown_escaped_and_kept_as_typed(
    console: ConsoleUnderTest,
) -> None:
    create(console, name=f"a{ZWSP}b", start_time=FUTURE)
    client, _ = signed_in(console)
    query = f"name:a{ZWSP}b"

    page = client.get("/tasks", params={"tab": "scheduled", "search": query}).text

    assert f'value="{query}"' in page
    assert f"matching “name:a{SHOWN_ZWSP}b”" in page
    # only in form controls that send it back: the search box, and Save to Dashboard's copy
    assert page.count(ZWSP) == 2
    assert f'name="search" value="{query}" data-save-search-value' in page


def test_an_edit_form_gives_back_a_name_with_a_hidden_character_as_stored(
    console: ConsoleUnderTest,
) -> None:
    """Shown escaped in the page's text, but as typed in the form: saving the form unchanged
    must not store the escape's text instead of the character."""
    zone = console.admin.post(
        "/api/v1/hosted-zones", json={"name": f"d{ZWSP}mz", "description": f"e{RLO}dge"}
    ).json()
    client, csrf = signed_in(console)
    page = client.get(f"/hosted-zones/{zone['id']}").text
    assert f'name="name" required maxlength="200" value="d{ZWSP}mz"' in page
    assert f'value="e{RLO}dge"' in page
    assert "d\\u200bmz" in page  # the heading shows it as its escape
    assert page.count(ZWSP) == 1  # only in the form control that sends it back
    saved = client.post(
        f"/hosted-zones/{zone['id']}",
        data={
            "csrf_token": csrf,
            "name": f"d{ZWSP}mz",
            "description": f"e{RLO}dge",
            "max_concurrent": str(zone["max_concurrent"] or ""),
        },
    )
    assert saved.status_code == 303, saved.text
    again = console.admin.get(f"/api/v1/hosted-zones/{zone['id']}").json()
    assert (again["name"], again["description"]) == (f"d{ZWSP}mz", f"e{RLO}dge")


def test_the_asset_page_says_why_we_think_so_with_the_stack_hint_weighed_last(
    console: ConsoleUnderTest, tmp_path: Path
) -> None:
    site = console.admin.post(
        "/api/v1/sites", json={"name": "Stacks", "scope": "127.0.0.0/24"}
    ).json()
    linux_syn_ack = {"ttl": 63, "window": 65160, "options": "M1460,S,T,N,W7"}
    lighttpd = host(
        "127.0.0.21", services=[service(80, http={"status": 200, "server": "lighttpd/1.4.69"})]
    )
    iis = host(
        "127.0.0.22", services=[service(80, http={"status": 200, "server": "Microsoft-IIS/10.0"})]
    )
    bare = host(
        "127.0.0.23", services=[service(80, http={"status": 200, "server": "lighttpd/1.4.69"})]
    )
    for record in (lighttpd, iis):
        record["tcp_stack"] = linux_syn_ack
    queue_hosts(
        console.db,
        tmp_path,
        Place(console.organization_id, site["id"]),
        [lighttpd, iis, bare],
        targets="127.0.0.0/24",
        ports="80",
    )
    process_all(console.db, tmp_path)
    assets = {
        item["address"]: item
        for item in console.admin.get("/api/v1/assets", params={"limit": 10}).json()["items"]
    }
    client, _ = signed_in(console, "viewer")

    def page(address: str) -> str:
        return html.unescape(client.get(f"/assets/{assets[address]['id']}").text)

    hinted = page("127.0.0.21")
    assert assets["127.0.0.21"]["os"] == "Linux"
    assert "TTL 64, window 65160, options M1460,S,T,N,W7" in hinted  # the TCP stack attribute
    assert "Why we think so" in hinted
    assert "<li>Linux family (TTL 64, window 65160), from the TCP/IP stack</li>" in hinted
    assert "From its answers: Linux (30% sure)" in hinted

    windows = page("127.0.0.22")
    assert assets["127.0.0.22"]["os"] == "Windows"
    assert "Why we think so" in windows
    assert "Linux family (TTL 64, window 65160), from the TCP/IP stack, outweighed" in windows
    # the hint lowers the confidence of the answers' Windows, and never replaces it
    guess = re.search(r"From its answers: Windows Server 2016 or later \((\d+)% sure\)", windows)
    assert guess is not None
    assert 0 < int(guess.group(1)) < 80
    assert windows.index("IIS 10.0 Windows") < windows.index("Linux family")

    # a host scanned without the privilege: no hint, no system, nothing to explain
    unhinted = page("127.0.0.23")
    assert assets["127.0.0.23"]["os"] in ("", None)
    assert "Why we think so" not in unhinted
    assert "TCP stack" not in unhinted
