"""Benchmark of the web console's pages at a million tasks, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.pages [--tasks N] [--backend sqlite|postgresql|both]
                                    [--repeat R] [--json-out FILE]

Uses the same generated database as `bench.tasks_list`. A signed-in browser session asks for
each page in process (an httpx2 client on an ASGI transport, so session lookup, the queries,
the Jinja templates and the HTML answer all count: the server's time, without a network), and,
alternately, the JSON API request that carries the same data (the peer: what the page adds on
top of the API). Cases: every tab of the Tasks overview, a searched view, the regions the live
page fetches, the detail card of a recurring template with its runs and of a completed scan,
the new-task form, and the explorers, hosted zones, sites, assets, API tokens and audit pages.
Goal: every page's p95 within 100 ms of server time at 1M tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from bench._load import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BENCH_TOKEN,
    Prepared,
    prepare_postgresql,
    prepare_sqlite,
)
from bench._queries import SEARCHES
from bench._report import p95
from bench.tasks_list import _load_average
from surveyor.console.app import create_app
from surveyor.console.auth import SESSION_COOKIE
from surveyor.console.state import ConsoleSettings
from surveyor.console.web.session import LOGIN_CSRF_COOKIE
from surveyor.core.tasks import ALL_VIEW, TAB_SPECS
from surveyor.store.engine import Database, make_engine
from surveyor.testing.postgres import throwaway_postgres

DEFAULT_TASKS = 1_000_000
PAGE_LIMIT_MS = 100.0
FRAGMENT = {"X-Surveyor-Fragment": "1"}


@dataclass(frozen=True)
class PageCase:
    key: str
    label: str
    page: str
    api: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PageRow:
    key: str
    label: str
    bytes: int
    page_p50: float
    page_p95: float
    api_p50: float
    api_p95: float
    ratio_p50: float
    met: bool


def _query(**params: str) -> str:
    return str(httpx2.QueryParams(params))


async def _first_id(api: httpx2.AsyncClient, tab: str) -> int:
    response = await api.get("/api/v1/tasks", params={"tab": tab, "limit": 1})
    response.raise_for_status()
    items = response.json()["items"]
    if not items:
        raise SystemExit(f"the {tab} tab is empty; the generated data should fill it")
    return int(items[0]["id"])


async def page_cases(api: httpx2.AsyncClient) -> list[PageCase]:
    found = [
        PageCase(
            f"tab:{view}",
            f"/tasks?tab={view}",
            f"/tasks?{_query(tab=view)}",
            f"/api/v1/tasks?{_query(tab=view, limit='50')}",
        )
        for view in [spec.tab.value for spec in TAB_SPECS.values()] + [ALL_VIEW]
    ]
    search = SEARCHES[1]
    found.append(
        PageCase(
            "search",
            f"/tasks?tab={search.view}&search={search.query}",
            f"/tasks?{_query(tab=search.view, search=search.query)}",
            f"/api/v1/tasks?{_query(tab=search.view, search=search.query, limit='50')}",
        )
    )
    found.append(
        PageCase(
            "regions",
            "live refresh of /tasks?tab=active (regions only)",
            f"/tasks?{_query(tab='active')}",
            f"/api/v1/tasks?{_query(tab='active', limit='50')}",
            tuple(FRAGMENT.items()),
        )
    )
    template = await _first_id(api, "recurring")
    scan = await _first_id(api, "completed")
    for key, tab, task_id, what in (
        ("card:recurring", "recurring", template, "a recurring template's card with runs"),
        ("card:completed", "completed", scan, "a completed scan's card"),
    ):
        found.append(
            PageCase(
                key,
                f"/tasks?tab={tab}&task=… ({what})",
                f"/tasks?{_query(tab=tab, task=str(task_id))}",
                f"/api/v1/tasks/{task_id}",
            )
        )
    found += [
        PageCase("new", "/tasks/new", "/tasks/new", "/api/v1/sites"),
        PageCase("explorers", "/explorers", "/explorers", "/api/v1/explorers"),
        PageCase("sites", "/sites", "/sites", "/api/v1/sites"),
        PageCase("assets", "/assets", "/assets", "/api/v1/assets?limit=50"),
        PageCase("zones", "/hosted-zones", "/hosted-zones", "/api/v1/hosted-zones"),
        PageCase("tokens", "/tokens", "/tokens", "/api/v1/tokens"),
        PageCase("audit", "/audit", "/audit", "/api/v1/audit"),
    ]
    return found


async def sign_in(client: httpx2.AsyncClient) -> str:
    """The session cookie of a real sign-in through the login form."""
    form = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    login_csrf = form.cookies.get(LOGIN_CSRF_COOKIE)
    if match is None or login_csrf is None:
        raise SystemExit("the login form has no CSRF token")
    answer = await client.post(
        "/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": match.group(1)},
        headers={"Cookie": f"{LOGIN_CSRF_COOKIE}={login_csrf}"},
    )
    session = answer.cookies.get(SESSION_COOKIE)
    if answer.status_code != 303 or session is None:
        raise SystemExit(f"signing in failed: {answer.status_code} {answer.text[:200]}")
    return session


async def time_case(
    pages: httpx2.AsyncClient, api: httpx2.AsyncClient, case: PageCase, repeat: int, warmup: int
) -> PageRow:
    page_ms: list[float] = []
    api_ms: list[float] = []
    size = 0
    gc.collect()
    for attempt in range(warmup + repeat):
        started = time.perf_counter()
        response = await pages.get(case.page, headers=dict(case.headers))
        page_elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise AssertionError(f"{case.label}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
        started = time.perf_counter()
        peer = await api.get(case.api)
        api_elapsed = time.perf_counter() - started
        if peer.status_code != 200:
            raise AssertionError(f"{case.api}: {peer.status_code} {peer.text[:300]}")
        if attempt >= warmup:
            page_ms.append(page_elapsed * 1000)
            api_ms.append(api_elapsed * 1000)
    page50, api50 = statistics.median(page_ms), statistics.median(api_ms)
    return PageRow(
        case.key,
        case.label,
        size,
        round(page50, 2),
        round(p95(page_ms), 2),
        round(api50, 2),
        round(p95(api_ms), 2),
        round(page50 / api50, 2),
        p95(page_ms) <= PAGE_LIMIT_MS,
    )


async def measure(prepared: Prepared, *, repeat: int, warmup: int) -> list[PageRow]:
    db = Database(make_engine(prepared.url))
    try:
        with tempfile.TemporaryDirectory(prefix="surveyor-bench-") as data_dir:
            settings = ConsoleSettings(data_dir=Path(data_dir), database_url=prepared.url)
            app = create_app(settings, database=db)
            transport = httpx2.ASGITransport(app=app)
            base = "http://surveyor.bench"
            async with (
                app.router.lifespan_context(app),
                httpx2.AsyncClient(
                    transport=transport,
                    base_url=base,
                    headers={"Authorization": f"Bearer {BENCH_TOKEN}"},
                ) as api,
                httpx2.AsyncClient(transport=transport, base_url=base) as anonymous,
            ):
                session = await sign_in(anonymous)
                async with httpx2.AsyncClient(
                    transport=transport,
                    base_url=base,
                    headers={"Cookie": f"{SESSION_COOKIE}={session}"},
                ) as pages:
                    rows = []
                    for case in await page_cases(api):
                        row = await time_case(pages, api, case, repeat, warmup)
                        print(
                            f"  {case.label}: page p95 {row.page_p95:.1f} ms, "
                            f"API p95 {row.api_p95:.1f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
                        rows.append(row)
                    return rows
    finally:
        db.dispose()


def format_rows(title: str, rows: list[PageRow]) -> str:
    lines = [
        f"\n{title}",
        "| page | KiB | page p50 | page p95 | API p50 | API p95 | page/API p50 | ≤100 ms p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {row.bytes / 1024:.0f} | {row.page_p50:.1f} | {row.page_p95:.1f} "
            f"| {row.api_p50:.1f} | {row.api_p95:.1f} | {row.ratio_p50:.2f}x "
            f"| {'yes' if row.met else 'NO'} |"
        )
    met = sum(row.met for row in rows)
    lines.append(f"{met}/{len(rows)} pages within {PAGE_LIMIT_MS:g} ms at p95")
    return "\n".join(lines)


def run_backend(name: str, args: argparse.Namespace) -> tuple[str, list[PageRow]]:
    print(f"{name}: preparing {args.tasks:,} tasks...", file=sys.stderr, flush=True)
    if name == "sqlite":
        prepared = prepare_sqlite(args.tasks)
        rows = asyncio.run(measure(prepared, repeat=args.repeat, warmup=args.warmup))
        label = "SQLite"
    else:
        with throwaway_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
            prepared = prepare_postgresql(url, Path(data_dir), args.tasks)
            rows = asyncio.run(measure(prepared, repeat=args.repeat, warmup=args.warmup))
        label = "PostgreSQL"
    title = f"{label}, {prepared.tasks:,} tasks, {args.repeat} repetitions, ms ({_load_average()})"
    return title, rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=30, help="timed repetitions per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed repetitions first")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.tasks < 1000 or args.repeat < 1 or args.warmup < 0:
        parser.error("--tasks must be at least 1000, --repeat at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    names = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results: dict[str, Any] = {}
    for name in names:
        title, rows = run_backend(name, args)
        print(format_rows(title, rows), flush=True)
        results[name] = {"title": title, "rows": [asdict(row) for row in rows]}
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
