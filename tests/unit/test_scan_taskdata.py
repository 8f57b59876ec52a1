"""Task data files: gzip JSONL written whole or not at all, read back lazily and checked."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surveyor.scan.taskdata import TaskDataError, read_task_data, write_task_data

RECORDS = [
    {"type": "config", "targets": "127.0.0.1", "ports": "22,80"},
    {"type": "host", "addresses": ["127.0.0.1"], "hostnames": ["ünïcode.example"]},
    {"type": "summary", "hosts_total": 1, "stopped": False},
]


def test_records_written_are_the_records_read(tmp_path: Path) -> None:
    path = tmp_path / "scan.jsonl.gz"
    assert write_task_data(iter(RECORDS), path) == 3
    assert gzip.decompress(path.read_bytes()).count(b"\n") == 3
    assert list(read_task_data(path)) == RECORDS


def test_plain_jsonl_reads_as_well_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "scan.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n")
    assert list(read_task_data(path)) == RECORDS


def test_a_scan_that_fails_while_writing_leaves_no_file(tmp_path: Path) -> None:
    def failing() -> Any:
        yield RECORDS[0]
        raise RuntimeError("scan failed")

    path = tmp_path / "scan.jsonl.gz"
    with pytest.raises(RuntimeError):
        write_task_data(failing(), path)
    assert list(tmp_path.iterdir()) == []


def test_many_chunks_arrive_whole_and_in_order_and_a_late_failure_leaves_no_file(
    tmp_path: Path,
) -> None:
    """Chunks go to a writing thread: what it wrote is every record in order, and a failure
    of the records after some chunks were written is the one raised, with no file left."""
    many = [{"type": "host", "n": n, "pad": "x" * (n % 300)} for n in range(20_000)]
    path = tmp_path / "many.jsonl.gz"
    assert write_task_data(iter(many), path) == len(many)
    assert list(read_task_data(path)) == many

    def failing_late() -> Any:
        yield from many
        raise LookupError("the source went away")

    other = tmp_path / "failed.jsonl.gz"
    with pytest.raises(LookupError, match="went away"):
        write_task_data(failing_late(), other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.jsonl.gz"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"type": "config"}\nnot json\n', "line 2 is not JSON"),
        (b'{"type": "config"}\n[1, 2]\n', "line 2 is not a record"),
        (b'{"kind": "host"}\n', "line 1 is not a record"),
    ],
)
def test_a_line_that_is_not_a_record_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(TaskDataError, match=message):
        list(read_task_data(path))


def test_a_truncated_gzip_file_is_reported_damaged(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"type": "config"}\n' * 1000)[:60])
    with pytest.raises(TaskDataError, match="damaged"):
        list(read_task_data(path))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


# generating nested JSON is slow on a busy machine; the examples, not their speed, matter
@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    max_examples=50,
)
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=10))
def test_any_json_records_survive_the_round_trip(
    tmp_path: Path, bodies: list[dict[str, Any]]
) -> None:
    records = [{**body, "type": "host"} for body in bodies]
    path = tmp_path / "round.jsonl.gz"
    write_task_data(records, path)
    assert list(read_task_data(path)) == records
