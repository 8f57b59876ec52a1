"""Task search compiled to SQL returns exactly the tasks the reference evaluator picks.

Runs on SQLite and PostgreSQL. Text is ASCII, where both databases fold case as the
reference does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, insert, select

from surveyor.core.search import FieldKind, SearchError, evaluate, parse
from surveyor.core.tasks import TaskStatus, TaskType
from surveyor.store.schema import explorers, hosted_zones, organizations, sites, tasks
from surveyor.store.search_index import fold_ascii
from surveyor.store.search_sql import compile_query
from surveyor.store.task_search import TASK_SEARCH, mentions_key

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
ORG_ID = 1
TEXT_ALPHABET = "abAB%_\\ ."
DAY = datetime(2026, 11, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

#: Instants on and around the boundaries the generated queries draw.
_BOUNDARIES = [NOW - age for age in (timedelta(hours=1), timedelta(days=1), timedelta(weeks=1))]
_BOUNDARIES += [DAY, DAY + timedelta(days=1), DAY + timedelta(hours=10), NOW]
INTERESTING_TIMES = [
    at + nudge for at in _BOUNDARIES for nudge in (-MICROSECOND, timedelta(0), MICROSECOND)
]

AGES = ["1h", "90m", "1d", "1week", "30days", "2h"]
ABSOLUTE_TIMES = ["2026-11-01", "2026-11-02", "2026-11-15", "2026-11-01T10:00:00Z",
                  "2026-11-01T10:00", "2026-11-15T13:00:00+01:00"]  # fmt: skip
OPERATORS = ["", "=", ">", ">=", "<", "<="]

texts = st.text(alphabet=TEXT_ALPHABET, max_size=4)
needles = st.text(alphabet=TEXT_ALPHABET, max_size=2)
TASK_TYPES = [str(kind) for kind in TaskType]
TASK_STATUSES = [str(status) for status in TaskStatus]
#: Enum-like keys searched by whole values and by fragments such as "proc" or "s_".
ENUM_NEEDLES = {
    "type": st.sampled_from(TASK_TYPES) | st.sampled_from([kind[:3] for kind in TASK_TYPES]),
    "status": st.sampled_from(TASK_STATUSES) | st.sampled_from(["proc%", "s_", "ed", "NEW"]),
}
times = st.sampled_from(INTERESTING_TIMES) | st.datetimes(
    min_value=datetime(2026, 9, 1), max_value=datetime(2026, 11, 20), timezones=st.just(UTC)
)
counts = st.none() | st.integers(min_value=0, max_value=4)
names = st.lists(st.text(alphabet="abAB_%", min_size=1, max_size=3), unique=True, max_size=3)


CHANGE_COUNTS = ("new", "changed", "offline", "online", "unchanged")


def one_of_names(choices: list[str]) -> st.SearchStrategy[str | None]:
    return st.sampled_from(choices) if choices else st.none()


@st.composite
def task_sets(draw: st.DrawFn) -> dict[str, Any]:
    """Named sites, explorers and zones, and up to eight tasks that may point at them."""
    related = {"site": draw(names), "explorer": draw(names), "hosted_zone": draw(names)}
    records = []
    for task_id in range(1, draw(st.integers(min_value=1, max_value=8)) + 1):
        records.append(
            {
                "id": task_id,
                "name": draw(texts),
                "description": draw(texts),
                "type": draw(st.sampled_from(TASK_TYPES)),
                "status": draw(st.sampled_from(TASK_STATUSES)),
                **{
                    key: draw(st.none() | one_of_names(choices)) for key, choices in related.items()
                },
                "created_by": draw(texts),
                "parent_id": draw(st.none() | st.integers(min_value=1, max_value=task_id - 1))
                if task_id > 1
                else None,
                "recur": draw(st.booleans()),
                "hidden": draw(st.booleans()),
                "error": draw(st.none() | texts),
                "targets": draw(texts),
                "created_at": draw(times),
                "updated_at": draw(times),
                "start_time": draw(st.none() | times),
                "finished_at": draw(st.none() | times),
                **{key: draw(counts) for key in CHANGE_COUNTS},
            }
        )
    return {"related": related, "tasks": records}


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(key: str, kind: FieldKind) -> st.SearchStrategy[str]:
    if kind is FieldKind.TEXT:
        needle = ENUM_NEEDLES.get(key, needles)
        return st.tuples(st.sampled_from(["", "="]), needle.map(quoted)).map("".join)
    if kind is FieldKind.NUMBER:
        number = st.integers(min_value=-1, max_value=7).map(str)
        return st.tuples(st.sampled_from(OPERATORS), number).map("".join)
    if kind is FieldKind.TIME:
        moment = st.sampled_from(AGES) | st.sampled_from(ABSOLUTE_TIMES)
        return st.tuples(st.sampled_from(OPERATORS), moment).map("".join)
    return st.sampled_from(["t", "true", "f", "FALSE"])


keyed_terms = st.one_of(
    *(
        _value(key, field.kind).map(lambda value, key=key: f"{key}:{value}")
        for key, field in sorted(TASK_SEARCH.fields.items())
    )
)
bare_terms = st.tuples(st.sampled_from(["", "="]), needles.map(quoted)).map("".join)
queries = st.recursive(
    keyed_terms | bare_terms,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda pair: f"({pair[0]} OR {pair[1]})"),
        st.tuples(inner, inner).map(lambda pair: f"{pair[0]} {pair[1]}"),
        st.tuples(inner, inner).map(lambda pair: f"{pair[0]} AND {pair[1]}"),
        inner.map(lambda query: f"NOT ({query})"),
    ),
    max_leaves=6,
)


@contextmanager
def seeded(engine: Engine, data: dict[str, Any]) -> Iterator[Connection]:
    """A connection that sees exactly `data`; everything is rolled back afterwards."""
    with engine.connect() as conn, conn.begin() as transaction:
        for table in (tasks, explorers, hosted_zones, sites, organizations):
            conn.execute(delete(table))
        conn.execute(insert(organizations).values(id=ORG_ID, name="org", created_at=NOW))
        ids: dict[str, dict[str, int]] = {}
        for key, table in (("site", sites), ("explorer", explorers), ("hosted_zone", hosted_zones)):
            ids[key] = {name: index for index, name in enumerate(data["related"][key], start=1)}
            for name, row_id in ids[key].items():
                conn.execute(
                    insert(table).values(
                        id=row_id, organization_id=ORG_ID, name=name, created_at=NOW, updated_at=NOW
                    )
                )
        for record in data["tasks"]:
            conn.execute(insert(tasks).values(_task_row(record, ids)))
        yield conn
        transaction.rollback()


def _task_row(record: dict[str, Any], ids: dict[str, dict[str, int]]) -> dict[str, Any]:
    row = {key: value for key, value in record.items() if key in tasks.c}
    row["organization_id"] = ORG_ID
    for key in ("site", "explorer", "hosted_zone"):
        row[f"{key}_id"] = None if record[key] is None else ids[key][record[key]]
    for key in CHANGE_COUNTS:
        row[f"cs_{key}"] = record[key]
    return row


def sql_matches(conn: Connection, text: str) -> list[int]:
    condition = compile_query(parse(text), TASK_SEARCH, dialect_name=conn.dialect.name, now=NOW)
    return list(conn.scalars(select(tasks.c.id).where(condition).order_by(tasks.c.id)))


def reference_matches(data: dict[str, Any], text: str) -> list[int]:
    query = parse(text)
    return [record["id"] for record in data["tasks"] if evaluate(query, record, TASK_SEARCH, NOW)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=task_sets(), texts_of_queries=st.lists(queries, min_size=1, max_size=4))
def test_sql_search_picks_the_same_tasks_as_the_reference_evaluator(
    db_engine: Engine, data: dict[str, Any], texts_of_queries: list[str]
) -> None:
    with seeded(db_engine, data) as conn:
        for text in texts_of_queries:
            assert sql_matches(conn, text) == reference_matches(data, text), text


def _example_tasks() -> dict[str, Any]:
    base: dict[str, Any] = {
        "description": "",
        "type": "scan",
        "status": "processed",
        "explorer": None,
        "hosted_zone": None,
        "created_by": "ada@example.com",
        "parent_id": None,
        "recur": False,
        "hidden": False,
        "error": None,
        "targets": "127.0.0.0/24",
        "created_at": NOW - timedelta(days=40),
        "updated_at": NOW,
        "start_time": None,
        "finished_at": None,
        **dict.fromkeys(("new", "changed", "offline", "online", "unchanged")),
    }
    records = [
        base | {"id": 1, "name": "DMZ sweep", "site": "Berlin", "new": 3},
        base | {"id": 2, "name": "50% sample", "site": None, "error": "timeout"},
        base | {"id": 3, "name": "Lab", "site": "Lab_1", "created_at": NOW - timedelta(hours=1)},
    ]
    return {"related": {"site": ["Berlin", "Lab_1"], "explorer": [], "hosted_zone": []},
            "tasks": records}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site:berlin", [1]),
        ("NOT site:berlin", [2, 3]),
        ("site:=lab_1", [3]),
        ("site:=lab%", [3]),
        ("site:b_rlin", []),
        ("50%", [2]),
        ("name:=50%", [2]),
        ("NOT error:time", [1, 3]),
        ("new:>=3", [1]),
        ("NOT new:>=3", [2, 3]),
        ("created_at:<1day", [3]),
        ("created_at:>30days", [1, 2]),
        ("dmz OR lab", [1, 3]),
    ],
)
def test_worked_examples_give_the_expected_tasks_in_sql_and_in_python(
    db_engine: Engine, text: str, expected: list[int]
) -> None:
    data = _example_tasks()
    with seeded(db_engine, data) as conn:
        assert sql_matches(conn, text) == expected
    assert reference_matches(data, text) == expected


def test_values_reach_the_database_only_as_bound_parameters(db_engine: Engine) -> None:
    hostile = "x' OR '1'='1"
    condition = compile_query(
        parse(f"name:{quoted(hostile)} OR status:={quoted(hostile)}"),
        TASK_SEARCH,
        dialect_name=db_engine.dialect.name,
        now=NOW,
    )
    compiled = condition.compile(dialect=db_engine.dialect)
    assert hostile not in str(compiled)
    pattern = f"%{hostile}%"
    if db_engine.dialect.name == "postgresql":
        pattern = fold_ascii(pattern)  # compared with the column folded (`search_index`)
    assert pattern in compiled.params.values()
    with seeded(db_engine, _example_tasks()) as conn:
        assert list(conn.scalars(select(tasks.c.id).where(condition))) == []


def test_the_user_s_wildcards_are_escaped_in_substring_searches(db_engine: Engine) -> None:
    condition = compile_query(
        parse(r'name:"a%b_c\\d"'), TASK_SEARCH, dialect_name=db_engine.dialect.name, now=NOW
    )
    params = list(condition.compile(dialect=db_engine.dialect).params.values())
    assert params[-1] == "%a\\%b\\_c\\\\d%"
    # On SQLite the trigram index is asked first, for the needle as one literal phrase.
    assert params[:-1] == (['"a%b_c\\d"'] if db_engine.dialect.name == "sqlite" else [])


def test_a_blank_query_compiles_to_a_condition_every_task_meets(db_engine: Engine) -> None:
    with seeded(db_engine, _example_tasks()) as conn:
        assert sql_matches(conn, "   ") == [1, 2, 3]


def test_compiling_reports_an_unknown_key_with_every_task_key() -> None:
    with pytest.raises(SearchError) as caught:
        compile_query(parse("dmz stauts:new"), TASK_SEARCH, dialect_name="sqlite", now=NOW)
    assert caught.value.position == 4
    assert caught.value.details["valid_keys"] == sorted(TASK_SEARCH.fields)
    assert caught.value.details["suggestion"] == "status"


def test_compiling_reports_a_bad_value_at_its_position() -> None:
    with pytest.raises(SearchError) as caught:
        compile_query(parse("new:>=abc"), TASK_SEARCH, dialect_name="postgresql", now=NOW)
    assert caught.value.position == 6
    assert caught.value.message == "'abc' is not a number (at position 6)"


def test_the_task_catalogue_has_every_key_the_spec_lists() -> None:
    spec_keys = {
        "id", "name", "description", "type", "status", "site", "explorer", "hosted_zone",
        "created_by", "parent_id", "recur", "hidden", "error", "targets", "created_at",
        "updated_at", "start_time", "finished_at", "new", "changed", "offline", "online",
        "unchanged",
    }  # fmt: skip
    assert set(TASK_SEARCH.fields) == spec_keys
    assert TASK_SEARCH.bare_keys == ("name", "description")


def test_the_hidden_key_is_detected_so_hidden_tasks_can_be_shown_on_request() -> None:
    assert mentions_key(parse("dmz OR NOT Hidden:t"), "hidden")
    assert not mentions_key(parse('dmz "hidden:t"'), "hidden")
