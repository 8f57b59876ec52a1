"""Substring searches served by the trigram indexes (store/search_index.py) find exactly what
the reference evaluator finds, the triggers keep the SQLite index in step with every write,
and searched tab counts stop at the cap unless an exact count is asked for.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, event, func, insert, select, text, update

from surveyor.core.search import evaluate, parse
from surveyor.core.tasks import Tab
from surveyor.store import explorers as explorer_store
from surveyor.store import task_search as task_store_search
from surveyor.store import tasks as task_store
from surveyor.store.schema import organizations, tasks
from surveyor.store.search_index import TRIGRAM_COLUMNS, fts_table_name, gin_index_name
from surveyor.store.search_sql import COMMON_MATCHES, compile_query, compile_search
from surveyor.store.task_search import TASK_SEARCH
from surveyor.store.tasks import COUNT_CAP
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest
from tests.support.search_queries import combined

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
ORG_ID = 1
TEXT_KEYS = TRIGRAM_COLUMNS["tasks"]
#: Few letters, so that needles of three and more characters often match; the characters
#: LIKE and FTS5 treat specially; quotes.
ALPHABET = "abAB%_\\ .\"'"
values = st.none() | st.text(alphabet=ALPHABET, max_size=8)
needles = st.text(alphabet=ALPHABET, max_size=5)


def quoted(needle: str) -> str:
    return '"' + needle.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _row(task_id: int, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": task_id,
        "organization_id": ORG_ID,
        "type": "scan",
        "status": "processed",
        "tab": "completed",
        "tab_sort": NOW,
        "hidden": False,
        "created_at": NOW,
        "updated_at": NOW,
        # `error` alone may be NULL; the others are "" when empty.
        **{key: record[key] if key == "error" else record[key] or "" for key in TEXT_KEYS},
    }


@contextmanager
def seeded(engine: Engine, records: list[dict[str, Any]]) -> Iterator[Connection]:
    """A connection that sees exactly these tasks (written through the triggers); rolled back
    afterwards."""
    with engine.connect() as conn, conn.begin() as transaction:
        conn.execute(delete(tasks))
        conn.execute(delete(organizations))
        conn.execute(insert(organizations).values(id=ORG_ID, name="org", created_at=NOW))
        for task_id, record in enumerate(records, start=1):
            conn.execute(insert(tasks).values(_row(task_id, record)))
        yield conn
        transaction.rollback()


def sql_ids(conn: Connection, query: str) -> list[int]:
    condition = compile_query(parse(query), TASK_SEARCH, dialect_name=conn.dialect.name, now=NOW)
    return list(conn.scalars(select(tasks.c.id).where(condition).order_by(tasks.c.id)))


def python_ids(records: list[dict[str, Any]], query: str) -> list[int]:
    """The plain filter: the reference evaluator over the same values as stored."""
    parsed = parse(query)
    found = []
    for task_id, record in enumerate(records, start=1):
        stored = dict.fromkeys(TASK_SEARCH.fields) | _row(task_id, record)
        if evaluate(parsed, stored, TASK_SEARCH, NOW):
            found.append(task_id)
    return found


records = st.lists(st.fixed_dictionaries(dict.fromkeys(TEXT_KEYS, values)), max_size=8)
terms = st.tuples(st.sampled_from([*TEXT_KEYS, ""]), needles).map(
    lambda pair: f"{pair[0]}:{quoted(pair[1])}" if pair[0] else quoted(pair[1])
)
queries = combined(terms, max_leaves=4)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=records, texts=st.lists(queries, min_size=1, max_size=4))
def test_indexed_substring_search_finds_what_a_plain_filter_finds(
    db_engine: Engine, data: list[dict[str, Any]], texts: list[str]
) -> None:
    with seeded(db_engine, data) as conn:
        for query in texts:
            assert sql_ids(conn, query) == python_ids(data, query), query


FIXED = [
    {"name": "Weekly Sweep DMZ", "description": "", "targets": "127.0.0.0/24", "error": None,
     "created_by": "ada@example.com"},
    {"name": "50% sample_1", "description": 'say "hi"', "targets": "127.0.1.0/24",
     "error": "it's down", "created_by": "bob@example.com"},
    {"name": "Éclair scan", "description": "ab", "targets": "", "error": "timeout",
     "created_by": "éva@example.com"},
]  # fmt: skip


def test_case_special_characters_and_short_needles(db_engine: Engine) -> None:
    examples = {
        "name:weekly": [1],
        "name:WEEKLY": [1],
        "name:sweep": [1],
        "name:we": [1],  # shorter than a trigram: LIKE alone
        "name:e": [1, 2],
        'name:""': [1, 2, 3],
        "name:50%": [2],
        "name:0%": [2],
        "name:%": [2],
        "name:e_1": [2],
        "name:_": [2],
        "name:%s": [],
        'description:"\\"hi\\""': [2],
        'error:"it\'s"': [2],
        'error:"\'s d"': [2],
        "targets:127.0.": [1, 2],
        "targets:0.1.0": [2],
        "created_by:example.com": [1, 2, 3],
        # Only ASCII letters fold, as in the reference evaluator: É is not é.
        "name:éclair": [],
        "name:Éclair": [3],
        "created_by:ÉVA": [],
        "NOT name:sweep": [2, 3],
        "sweep OR sample": [1, 2],
    }
    with seeded(db_engine, FIXED) as conn:
        for query, expected in examples.items():
            assert sql_ids(conn, query) == expected, query
            assert python_ids(FIXED, query) == expected, query


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_postgresql_folds_only_ascii_letters_whatever_the_column_collation(
    db_engine: Engine,
) -> None:
    """The search compares in "C" (ASCII folding, as the reference evaluator), also where the
    column's own collation folds every letter."""
    with seeded(db_engine, FIXED) as conn:
        conn.exec_driver_sql(
            'ALTER TABLE tasks ALTER COLUMN name TYPE varchar(200) COLLATE "C.utf8"'
        )
        assert conn.execute(text("SELECT lower(name) FROM tasks WHERE id = 3")).scalar() == (
            "éclair scan"
        )
        for query, expected in {"name:éclair": [], "name:Éclair": [3], "name:ÉCLAIR": [3]}.items():
            assert sql_ids(conn, query) == expected, query
            assert python_ids(FIXED, query) == expected, query


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_postgresql_serves_each_substring_key_from_its_trigram_index(db_engine: Engine) -> None:
    """The search's `ILIKE` is in the collation each `pg_trgm` index is built in: otherwise
    the planner could not use the index at all."""
    with seeded(db_engine, FIXED) as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for key in TEXT_KEYS:
            condition = _searched(conn, f"{key}:sample")
            compiled = select(tasks.c.id).where(condition).compile(conn)
            plan = "\n".join(
                row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
            )
            assert f"Bitmap Index Scan on {gin_index_name('tasks', key)}" in plan, plan


def test_the_index_follows_inserts_updates_and_deletes(db_engine: Engine) -> None:
    with seeded(db_engine, FIXED) as conn:
        assert sql_ids(conn, "name:sweep") == [1]
        conn.execute(update(tasks).where(tasks.c.id == 1).values(name="Nightly audit"))
        assert sql_ids(conn, "name:sweep") == []
        assert sql_ids(conn, "name:nightly") == [1]
        conn.execute(update(tasks).where(tasks.c.id == 2).values(status="canceled"))
        assert sql_ids(conn, "name:sample") == [2]
        conn.execute(insert(tasks).values(_row(4, FIXED[0])))
        assert sql_ids(conn, "name:sweep") == [4]
        conn.execute(delete(tasks).where(tasks.c.id.in_([1, 4])))
        assert sql_ids(conn, "name:nightly") == []
        assert sql_ids(conn, "name:sweep") == []
        assert sql_ids(conn, "name:sample") == [2]
        if conn.dialect.name == "sqlite":
            # The FTS index agrees with its table entry by entry.
            fts = fts_table_name("tasks")
            conn.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))
            matched = conn.execute(
                text(f"SELECT rowid FROM {fts} WHERE name MATCH '\"sample\"'")
            ).scalars()
            assert list(matched) == [2]


def _searched(conn: Connection, query: str) -> Any:
    return compile_query(parse(query), TASK_SEARCH, dialect_name=conn.dialect.name, now=NOW)


def test_searched_counts_stop_at_the_cap(db_engine: Engine) -> None:
    data = [dict.fromkeys(TEXT_KEYS, "sweep") for _ in range(7)]
    with seeded(db_engine, data) as conn:
        conn.execute(update(tasks).where(tasks.c.id > 5).values(tab="failed", status="canceled"))
        clause = _searched(conn, "name:swe")
        found = task_store.count_tasks_upto(conn, ORG_ID, search=clause, cap=4)
        assert found.counts["completed"] == 4
        assert found.counts["failed"] == 2
        assert found.counts["all"] == 4
        assert found.capped == {"completed", "all"}
        exact = task_store.count_tasks(conn, ORG_ID, search=clause)
        assert exact["completed"] == 5
        assert exact["all"] == 7
        # Under the cap, every count is exact; tabs together can pass it.
        found = task_store.count_tasks_upto(conn, ORG_ID, search=clause, cap=5)
        assert found.counts == exact | {"all": 5}
        assert found.capped == {"all"}
        assert task_store.count_tasks_upto(conn, ORG_ID, search=clause, cap=7).capped == set()


def test_counts_read_only_the_tabs_a_status_search_allows_and_agree_with_exact_ones(
    db_engine: Engine,
) -> None:
    data = [dict.fromkeys(TEXT_KEYS, "sweep") for _ in range(9)]
    placed = {6: ("failed", "canceled"), 7: ("failed", "stopped"), 8: ("active", "active")}
    with seeded(db_engine, data) as conn:
        for task_id, (tab, status) in placed.items():
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(tab=tab, status=status))
        for query in (
            "status:processed name:swe",
            "status:canceled OR status:stopped",
            "NOT status:processed",
            "status:=active name:swe",
            "status:new",
        ):
            tabs = task_store_search.tabs_of_search(query, NOW)
            assert tabs is not None, query
            clause = _searched(conn, query)
            exact = task_store.count_tasks(conn, ORG_ID, search=clause)
            for cap in (2, 100):
                pruned = task_store.count_tasks_upto(
                    conn, ORG_ID, search=clause, cap=cap, tabs=tabs
                )
                every = task_store.count_tasks_upto(conn, ORG_ID, search=clause, cap=cap)
                assert pruned == every, (query, cap)
                assert pruned.counts == {tab: min(n, cap) for tab, n in exact.items()}, query
            assert all(exact[tab] == 0 for tab in exact if tab not in tabs and tab != "all")


def test_the_api_says_which_counts_are_capped_and_counts_exactly_on_request(
    console: ConsoleUnderTest,
) -> None:
    org = console.organization_id
    found = task_store.COUNT_CAP + 1
    with console.db.write() as conn:
        rows = [
            _row(0, dict.fromkeys(TEXT_KEYS, f"weekly sweep {number}")) for number in range(found)
        ]
        for row in rows:
            del row["id"]
            row["organization_id"] = org
        conn.execute(insert(tasks), rows)
        conn.execute(insert(tasks), [{**rows[0], "name": "audit", "tab": "failed"}])
        task_store.rebuild_tab_counts(conn)
    searched = {"search": "name:sweep"}
    capped = console.admin.get("/api/v1/tasks/counts", params=searched).json()
    assert capped["counts"]["completed"] == task_store.COUNT_CAP
    assert capped["counts"]["all"] == task_store.COUNT_CAP
    assert {tab for tab, flag in capped["capped"].items() if flag} == {"completed", "all"}
    exact = console.admin.get("/api/v1/tasks/counts", params={**searched, "exact": "true"})
    assert exact.json()["counts"]["completed"] == found
    assert exact.json()["counts"]["all"] == found
    assert not any(exact.json()["capped"].values())
    # A rare substring among them is counted exactly, and found on the first page.
    rare = {"search": "name:sweep 1234"}
    assert console.admin.get("/api/v1/tasks/counts", params=rare).json()["counts"]["all"] == 1
    page = console.admin.get("/api/v1/tasks", params=rare).json()["items"]
    assert [item["name"] for item in page] == ["weekly sweep 1234"]
    # Unsearched counts come from the counters: exact, never capped.
    plain = console.admin.get("/api/v1/tasks/counts").json()
    assert plain["counts"]["all"] == found + 1
    assert not any(plain["capped"].values())
    # The page's own counts request says the same, and asks for exactness on a click.
    browser, _ = signed_in(console, "viewer")
    web = browser.get("/tasks/counts", params=searched).json()
    assert web["capped"] == ["all", "completed"]
    web_exact = browser.get("/tasks/counts", params={**searched, "exact": "true"}).json()
    assert web_exact["counts"]["all"] == found
    assert web_exact["capped"] == []
    schema = (
        console.anonymous().get("/api/v1/openapi.json").json()["components"]["schemas"]["TabCounts"]
    )
    assert "capped" in schema["properties"]


def test_a_common_substring_is_left_to_like_and_a_rare_one_is_looked_up(
    db_engine: Engine,
) -> None:
    many = [dict.fromkeys(TEXT_KEYS, f"weekly sweep {n}") for n in range(COMMON_MATCHES)]
    with seeded(db_engine, [*many, dict.fromkeys(TEXT_KEYS, "audit")]) as conn:
        for query, expected in (("name:sweep", COMMON_MATCHES), ("name:audi", 1)):
            clause = compile_search(conn, parse(query), TASK_SEARCH, now=NOW)
            assert clause is not None
            sql = str(clause.compile(dialect=conn.dialect))
            looked_up = fts_table_name("tasks") in sql
            assert looked_up is (conn.dialect.name == "sqlite" and expected == 1), query
            found = conn.execute(select(func.count()).where(clause)).scalar_one()
            assert found == expected, query


def _plans_of_counts(conn: Connection, found: Any) -> list[str]:
    """The SQLite query plans of the statements on `tasks` that counting `found` runs."""
    return _plans_of(conn, lambda: task_store.count_search(conn, ORG_ID, found))


def _plans_of(conn: Connection, call: Callable[[], object]) -> list[str]:
    """The query plans of the statements on `tasks` that `call` runs on `conn` (but those
    that only ask the planner)."""
    _, sent = _sent_on_tasks(conn, call)
    explain = "EXPLAIN QUERY PLAN" if conn.dialect.name == "sqlite" else "EXPLAIN (VERBOSE)"
    return [
        " / ".join(row[-1] for row in conn.exec_driver_sql(f"{explain} {sql}", params))
        for sql, params in sent
        if not sql.startswith("EXPLAIN")
    ]


def _sent_on_tasks(conn: Connection, call: Callable[[], Any]) -> tuple[Any, list[tuple[str, Any]]]:
    """What `call` returns, and the statements on `tasks` it runs on `conn`, as sent, with
    their parameters."""
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM tasks" in statement or "JOIN tasks" in statement:
            sent.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", seen)
    try:
        result = call()
    finally:
        event.remove(conn, "before_cursor_execute", seen)
    return result, sent


def test_a_rare_substring_is_counted_by_id_and_other_searches_per_tab_in_the_search_index(
    db_engine: Engine,
) -> None:
    many = [dict.fromkeys(TEXT_KEYS, f"weekly sweep {n}") for n in range(COMMON_MATCHES)]
    rare = [dict.fromkeys(TEXT_KEYS, f"audit {n}") for n in range(5)]
    with seeded(db_engine, [*many, *rare]) as conn:
        first_rare = COMMON_MATCHES + 1
        conn.execute(
            update(tasks)
            .where(tasks.c.id.in_([first_rare, first_rare + 1, 7]))
            .values(tab="failed", status="canceled")
        )
        conn.execute(update(tasks).where(tasks.c.id == first_rare + 2).values(hidden=True))
        sqlite = conn.dialect.name == "sqlite"
        for query, bounded in (
            ("name:audi", True),
            ("name:audi status:canceled", True),
            ("name:audi OR name:sweep 12", False),
            ("NOT name:audi", False),
            ("name:sweep", False),
            ("name:audi hidden:true", True),
        ):
            found = task_store_search.compile_task_search(conn, query, now=NOW)
            assert (found.candidates is not None) is (sqlite and bounded), query
            required = " OR " not in query and not query.startswith("NOT")
            assert (found.indexed_substring is not None) is required, query
            every = task_store.count_tasks(
                conn, ORG_ID, search=found.clause, include_hidden=found.include_hidden
            )
            assert task_store.count_search(conn, ORG_ID, found, exact=True).counts == every
            for cap in (1, 3, COUNT_CAP):
                counted = task_store.count_search(conn, ORG_ID, found, cap=cap)
                assert counted.counts == {tab: min(n, cap) for tab, n in every.items()}, query
                assert counted.capped == {tab for tab, n in every.items() if n > cap}, query
        if not sqlite:
            return
        # A database without statistics (as every new one is): the rare substring's few
        # rows are read by id, not by a walk of an index through the whole organization.
        rare_plans = _plans_of_counts(
            conn, task_store_search.compile_task_search(conn, "name:audi", now=NOW)
        )
        assert len(rare_plans) == 1
        assert "SEARCH tasks USING INTEGER PRIMARY KEY" in rare_plans[0], rare_plans
        assert not any("ix_tasks_search" in plan for plan in rare_plans), rare_plans
        # Keys the search index holds are counted in it alone, one range per tab.
        keyed = task_store_search.compile_task_search(
            conn, "type:scan NOT status:canceled name:sweep", now=NOW
        )
        assert keyed.candidates is None
        plans = _plans_of_counts(conn, keyed)
        assert len(plans) == 1
        ranges = "COVERING INDEX ix_tasks_search (tab=? AND organization_id=? AND hidden=?)"
        assert plans[0].count(ranges) == len(Tab), plans
        # A query on the organization alone keeps the walk it had (tab leads the index).
        running = _plans_of(conn, lambda: explorer_store.current_tasks_of(conn, [ORG_ID]))
        assert len(running) == 1
        assert "ix_tasks_search" not in running[0], running


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_postgresql_counts_a_substring_it_expects_under_the_cap_in_one_statement(
    db_engine: Engine,
) -> None:
    """Fewer matches expected than the cap: one grouped count, which may find them through
    the trigram index; more: each tab walked no further than the cap."""
    many = [dict.fromkeys(TEXT_KEYS, f"weekly sweep {n}") for n in range(COMMON_MATCHES)]
    rare = [dict.fromkeys(TEXT_KEYS, f"audit {n}") for n in range(5)]
    with seeded(db_engine, [*many, *rare]) as conn:
        conn.execute(update(tasks).where(tasks.c.id <= 7).values(tab="failed", status="canceled"))
        conn.execute(text("ANALYZE tasks"))
        for query, cap, expected in (
            ("name:audi", COUNT_CAP, {"completed": 5, "all": 5}),
            ("name:sweep", COUNT_CAP, {"completed": COMMON_MATCHES - 7, "failed": 7, "all": 5000}),
            ("name:sweep", 1, {"completed": 1, "failed": 1, "all": 1}),
        ):
            found = task_store_search.compile_task_search(conn, query, now=NOW)
            assert found.indexed_substring is not None, query
            counted, with_parameters = _sent_on_tasks(
                conn, partial(task_store.count_search, conn, ORG_ID, found, cap=cap)
            )
            sent = [statement for statement, _ in with_parameters]
            assert {tab: n for tab, n in counted.counts.items() if n} == expected, query
            explained = [statement for statement in sent if statement.startswith("EXPLAIN")]
            counts = [statement for statement in sent if not statement.startswith("EXPLAIN")]
            # The planner is asked what it expects of the substring, then of the whole
            # search; then one statement counts.
            assert len(explained) == 2, sent
            assert len(counts) == 1, sent
            under_the_cap = cap == COUNT_CAP
            assert ("GROUP BY" in counts[0]) is under_the_cap, counts
            assert ("LIMIT" in counts[0]) is not under_the_cap, counts


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)
def test_postgresql_walks_the_search_index_alone_for_its_text_keys(db_engine: Engine) -> None:
    """A searched count on `name` or `created_by` that walks each tab reads `ix_tasks_search`
    alone: the index holds both keys folded, as the search compares them, and the columns
    themselves, without which PostgreSQL would read every row from the table."""
    many = [dict.fromkeys(TEXT_KEYS, f"Weekly Sweep {n}") for n in range(COMMON_MATCHES)]
    with seeded(db_engine, many) as conn:
        conn.execute(update(tasks).where(tasks.c.id <= 7).values(tab="failed", status="canceled"))
        # Rows written in this transaction are not yet all-visible, so on so few the planner
        # prices an index-only scan no better than reading the table: discourage the others.
        for scan in ("seqscan", "indexscan", "bitmapscan"):
            conn.exec_driver_sql(f"SET LOCAL enable_{scan} = off")
        for query, tabs, key in (
            ("name:sweep", len(Tab), "name"),
            ("created_by:SWEEP status:canceled", 1, "created_by"),
        ):
            found = task_store_search.compile_task_search(conn, query, now=NOW)
            counted = task_store.count_search(conn, ORG_ID, found, cap=1)
            assert counted.counts["failed"] == 1, query
            plans = _plans_of(conn, partial(task_store.count_search, conn, ORG_ID, found, cap=1))
            assert len(plans) == 1, plans
            walks = plans[0].count("Index Only Scan using ix_tasks_search on public.tasks")
            assert walks == tabs, plans
            # The folded key is the index's own column (shown in parentheses), not `lower`
            # computed again on each entry's raw value.
            read = rf"Filter: \(\(lower\(\(tasks(_\d+)?\.{key}\)::text\)\) ~~ '%sweep%'"
            assert len(re.findall(read, plans[0])) == tabs, plans
