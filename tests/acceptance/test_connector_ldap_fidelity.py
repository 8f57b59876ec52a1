"""The records the LDAP connector writes, byte for byte, for a directory full of the oddities
a real one holds: the golden file was written by the connector before its read path was made
faster (ldap3 binding, `ldapwire` decoding each entry into a dict, `host_record` mapping it),
and every later version must write the same bytes for the same answers.

The directory is served by `tests.support.ldap_scripted` (slapd would refuse to store values
that are not UTF-8, and normalizes attribute names); the acceptance tests against the real
slapd check the same mapping against its generated computers.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from surveyor.connectors.base import ConnectorConfig
from surveyor.connectors.ldap import CONNECTOR
from surveyor.connectors.run import EncodedRun, run_records
from surveyor.core.clock import FakeClock
from surveyor.scan.taskdata import (
    FAST_COMPRESS_LEVEL,
    encode_record,
    read_task_data,
    write_encoded,
    write_task_data,
)
from surveyor.testing.slapd import filetime
from tests.support.ldap_scripted import ScriptedDirectory, ScriptedEntry, scripted_directory

GOLDEN = Path(__file__).resolve().parents[1] / "support" / "ldap_scripted_records.jsonl.gz"
#: Enough computers for several of the connector's pages, and not a multiple of any.
FILLER = 2345
_OUS = (b"ou=Servers", b"ou=Workstations", b"ou=Paris,ou=Workstations")
_SYSTEMS = (
    (b"Windows Server 2022 Standard", b"10.0 (20348)"),
    (b"Windows 11 Enterprise", b"10.0 (22631)"),
    (b"Windows 10 Pro", b"10.0 (19045)"),
)
_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
#: Digits int() reads as well as ASCII ones.
_FULLWIDTH = {ord("0") + digit: 0xFF10 + digit for digit in range(10)}


def _filler(index: int) -> ScriptedEntry:
    """A computer as a directory holds most of them; some fields missing now and then."""
    name = b"HOST%06d" % index
    system, version = _SYSTEMS[index % 3]
    attributes: list[tuple[bytes, list[bytes]]] = [
        (b"dNSHostName", [name.lower() + b".lab.test"]),
        (b"operatingSystem", [system]),
        (b"operatingSystemVersion", [version]),
    ]
    if index % 50 != 49:
        moment = _EPOCH.timestamp() + index * 61.000123
        ticks = filetime(datetime.fromtimestamp(moment, UTC))
        attributes.append((b"lastLogonTimestamp", [str(ticks).encode()]))
    if index % 10 != 9:
        attributes.append((b"description", [b"desk %d of the lab" % index]))
    if index % 7 == 3:
        attributes.reverse()  # the server chooses the order
    return b"cn=" + name + b"," + _OUS[index % 3] + b",dc=lab", attributes


def _logon(text: bytes) -> ScriptedEntry:
    return (
        b"cn=LOGON,ou=Odd,dc=lab",
        [(b"dNSHostName", [b"logon.lab.test"]), (b"lastLogonTimestamp", [text])],
    )


def _oddities() -> list[ScriptedEntry]:
    """Every way an entry can differ from the usual, each at least once."""
    long_text = "é" * 40 + "x" * 100
    huge_text = "a long description " * 4000  # over 65,535 bytes: a three-byte length
    exact_second = filetime(datetime(2026, 12, 5, 16, 30, 15, tzinfo=UTC))
    return [
        (
            b"cn=CASE,ou=Odd,dc=lab",
            [(b"DNSHOSTNAME", [b"Case.Lab.Test"]), (b"OperatingSystem", [b"Linux"])],
        ),
        (b"cn=NoDns,ou=Odd,dc=lab", [(b"operatingSystem", [b"Windows 10 Pro"])]),
        (b"cn=BlankDns,ou=Odd,dc=lab", [(b"dNSHostName", [b" \t "])]),
        (rb"cn=Lab\, PC\2B1 \C3\A9,ou=Desks,dc=corp", []),
        (rb"cn=Esc\,aped,ou=Lyon\, Part-Dieu,cn=Computers,dc=corp,dc=example", []),
        (b"cn=PC, ou=Paris, DC=corp, DC=example", [(b"dNSHostName", [b"spaced.lab.test"])]),
        (b"CN=PC2,CN=Computers,DC=corp,DC=example", []),
        (b"cn=Alone", []),
        (b"cn=TopLevel,dc=corp", []),
        (b"cn=MidDc,ou=b,DC=c,ou=d", []),
        (b"cn=Other,ou=Sales,o=Corp", []),
        (b"cn=Plus+uid=x,ou=A,dc=b", []),
        (b"cn=,dc=corp", [(b"operatingSystem", [b"nameless: no record"])]),
        (b"cn=  ,dc=corp", [(b"dNSHostName", [b"   "])]),
        (b"cn=PC\xff\xfe,ou=Bad\xc3,dc=lab", [(b"description", [b"\xff\xfebad utf-8\xc3"])]),
        (
            b"cn=MULTI,ou=Odd,dc=lab",
            [
                (b"dNSHostName", [b"first.lab.test", b"second.lab.test"]),
                (b"description", [b"first words", b"second words"]),
            ],
        ),
        (
            b"cn=REPEAT,ou=Odd,dc=lab",
            [
                (b"dNSHostName", [b"early.lab.test"]),
                (b"operatingSystem", []),
                (b"dNSHostName", [b"late.lab.test"]),
                (b"description", [b"kept"]),
                (b"description", []),
            ],
        ),
        (
            b"cn=EXTRA,ou=Odd,dc=lab",
            [
                (b"objectClass", [b"top", b"computer"]),
                (b"cn", [b"EXTRA"]),
                (b"description;lang-de", [b"Beschreibung"]),
                (b"descr\xffiption", [b"not a description"]),
                (b"dNSHostName ", [b"trailing space in the type"]),
                (b"dNSHostName", [b"extra.lab.test"]),
            ],
        ),
        (
            b"cn=UNICODE,ou=B\xc3\xbcro,dc=lab",
            [
                (b"dNSHostName", ["ordinateur-zoé.lab.test".encode()]),
                (b"operatingSystem", ["\u00a0Windows ☃\u2003".encode()]),
                (b"operatingSystemVersion", [b"  10.0  "]),
                (b"description", ["Zoé's 🖥, \u2028line separated".encode()]),
            ],
        ),
        (
            b"cn=ESCAPES,ou=Odd,dc=lab",
            [
                (b"dNSHostName", [b'esc"apes\\.lab.test']),
                (b"description", [b'quote " backslash \\ newline \n tab \t nul \x00 del \x7f']),
                (b"operatingSystem", [b"</script><!--"]),
            ],
        ),
        (
            b"cn=LONG,ou=Odd,dc=lab",
            [
                (b"dNSHostName", [b"long.lab.test"]),
                (b"description", [long_text.encode()]),
                (b"operatingSystem", [b"x" * 127]),
                (b"operatingSystemVersion", [b"y" * 128]),
            ],
        ),
        (b"cn=HUGE,ou=Odd,dc=lab", [(b"description", [huge_text.encode()])]),
        (b"cn=EMPTY,ou=Odd,dc=lab", [(b"dNSHostName", [b""]), (b"description", [b""])]),
        _logon(b"0"),
        _logon(b"9223372036854775807"),
        _logon(b"99999999999999999999999999"),
        _logon(b"never"),
        _logon(b"-5"),
        _logon(b""),
        _logon(b"116444736000000000"),
        _logon(b"116444736000000001"),
        _logon(b"116444736000000010"),
        _logon(str(exact_second).encode()),
        _logon(str(exact_second + 17).encode()),
        _logon(b" 133780000000000000 "),
        _logon(b"13378_0000000000000"),
        _logon("133780000000000000".translate(_FULLWIDTH).encode()),
        _logon(b"133780000000000000.5"),
    ]


def scripted_entries() -> list[ScriptedEntry]:
    """The directory: the filler computers with the oddities spread among them."""
    entries = [_filler(index) for index in range(FILLER)]
    for offset, odd in enumerate(_oddities()):
        entries.insert(offset * 61 + 5, odd)
    return entries


REFERENCES = ("ldap://elsewhere.example/DC=DomainDnsZones,dc=lab",)


@pytest.fixture(scope="module")
def directory() -> Iterator[ScriptedDirectory]:
    with scripted_directory(scripted_entries(), REFERENCES) as server:
        yield server


def _config(directory: ScriptedDirectory) -> ConnectorConfig:
    return ConnectorConfig(
        server=directory.server,
        options={"base_dn": "dc=lab"},
        credential={"bind_dn": "cn=svc,dc=lab", "password": "scripted secret"},
    )


def _golden_lines() -> list[bytes]:
    with gzip.open(GOLDEN, "rb") as golden:
        return golden.read().splitlines(keepends=True)


def test_every_record_is_the_golden_one_byte_for_byte(directory: ScriptedDirectory) -> None:
    golden = _golden_lines()
    records = list(CONNECTOR.fetch(_config(directory)))

    lines = [encode_record(record) for record in records]
    assert len(lines) == len(golden)
    for number, (line, expected) in enumerate(zip(lines, golden, strict=True), start=1):
        assert line == expected, f"record {number} differs"
    assert records == [json.loads(line) for line in golden]  # lists stay lists
    assert len(records) == FILLER + len(_oddities()) - 2  # the two nameless entries


def test_the_task_data_file_holds_the_golden_records(
    directory: ScriptedDirectory, tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl.gz"
    written = write_task_data(run_records(CONNECTOR, _config(directory)), path)

    with gzip.open(path, "rb") as data:
        lines = data.read().splitlines(keepends=True)
    assert written == len(lines)
    config, summary = json.loads(lines[0]), json.loads(lines[-1])
    assert (config["type"], config["connector"], config["server"]) == (
        "config",
        "ldap",
        directory.server,
    )
    assert "scripted secret" not in b"".join(lines).decode()
    assert lines[1:-1] == _golden_lines()
    assert (summary["type"], summary["hosts"], summary["stopped"]) == (
        "summary",
        len(lines) - 2,
        False,
    )


def record_for(records: list[dict[str, Any]], dn_start: str) -> dict[str, Any]:
    found = [r for r in records if r["attributes"]["dn"].startswith(dn_start)]
    assert len(found) == 1, dn_start
    return found[0]


def test_the_golden_file_says_what_the_mapping_promises(directory: ScriptedDirectory) -> None:
    """The golden records are right, not only unchanged: a few checked by hand."""
    records = [json.loads(line) for line in _golden_lines()]

    assert record_for(records, "cn=CASE,")["hostnames"] == ["Case.Lab.Test"]
    assert record_for(records, "cn=NoDns,")["hostnames"] == ["NoDns"]
    assert record_for(records, "cn=BlankDns,")["hostnames"] == ["BlankDns"]
    assert record_for(records, r"cn=Lab\, PC")["hostnames"] == ["Lab, PC+1 é"]
    multi = record_for(records, "cn=MULTI,")
    assert (multi["hostnames"], multi["description"]) == (["first.lab.test"], "first words")
    repeat = record_for(records, "cn=REPEAT,")
    assert (repeat["hostnames"], repeat["description"]) == (["late.lab.test"], "kept")
    assert "os" not in repeat
    extra = record_for(records, "cn=EXTRA,")
    assert extra["hostnames"] == ["extra.lab.test"]
    assert "description" not in extra
    unicode = record_for(records, "cn=UNICODE,")
    assert (unicode["os"], unicode["os_version"]) == ("Windows ☃", "10.0")
    assert unicode["attributes"]["ou"] == "ou=Büro"
    assert record_for(records, "cn=PC\ufffd")["description"] == "\ufffd\ufffdbad utf-8\ufffd"
    assert len(record_for(records, "cn=HUGE,")["description"]) > 65535
    logons = [
        r["attributes"].get("last_logon") for r in records if r["hostnames"] == ["logon.lab.test"]
    ]
    assert logons[:7] == [None] * 7  # 0, the two "never"s, words, negative, empty, the epoch
    assert logons[7:11] == [
        "1970-01-01T00:00:00Z",  # under a microsecond after the epoch
        "1970-01-01T00:00:00.000001Z",
        "2026-12-05T16:30:15Z",  # a whole second: no fraction
        "2026-12-05T16:30:15.000001Z",
    ]
    assert logons[11:] == ["2024-12-06T23:06:40Z"] * 3 + [None]  # as int() reads them


def _lines(config: ConnectorConfig) -> tuple[list[bytes], list[int]]:
    """The lines `fetch_lines` hands over, one by one, and the count it gave each batch."""
    batches = list(CONNECTOR.fetch_lines(config))
    lines = b"".join(batch for batch, _ in batches).splitlines(keepends=True)
    return lines, [count for _, count in batches]


def test_the_fast_path_writes_the_golden_records_of_every_oddity(
    directory: ScriptedDirectory,
) -> None:
    fast, counts = _lines(_config(directory))

    assert fast == _golden_lines()
    assert fast == [encode_record(r) for r in CONNECTOR.fetch(_config(directory))]
    assert sum(counts) == FILLER + len(_oddities()) - 2  # the two nameless entries


def test_an_encoded_run_writes_the_task_data_file_of_run_records(
    directory: ScriptedDirectory,
    tmp_path: Path,
) -> None:
    """The console's runner writes `EncodedRun` with `write_encoded`; explorers write
    `run_records` with `write_task_data`: the two files hold the same lines."""
    moment = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    run = EncodedRun(CONNECTOR, _config(directory), clock=FakeClock(moment))
    write_encoded(run, tmp_path / "encoded.jsonl.gz", level=FAST_COMPRESS_LEVEL)
    records = run_records(CONNECTOR, _config(directory), clock=FakeClock(moment))
    written = write_task_data(records, tmp_path / "records.jsonl.gz")

    with gzip.open(tmp_path / "encoded.jsonl.gz", "rb") as encoded:
        encoded_lines = encoded.read().splitlines(keepends=True)
    with gzip.open(tmp_path / "records.jsonl.gz", "rb") as generic:
        assert encoded_lines == generic.read().splitlines(keepends=True)
    assert len(encoded_lines) == written
    assert run.hosts == written - 2
    read = list(read_task_data(tmp_path / "encoded.jsonl.gz"))
    assert (read[0]["type"], read[-1]["type"]) == ("config", "summary")
    assert read[-1]["hosts"] == run.hosts
    assert read[1:-1] == [json.loads(line) for line in _golden_lines()]
