"""masscan output and CSV as task data, and telling every format from its first bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveyor.formats.detect import detect
from surveyor.formats.records import Format, FormatError
from tests.support.imported import convert, hosts, ports
from tests.support.tool_files import (
    CSV,
    MASSCAN_JSON,
    MASSCAN_JSON_1_0,
    MASSCAN_LIST,
    MASSCAN_XML,
)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(MASSCAN_LIST, id="-oL"),
        pytest.param(MASSCAN_JSON, id="-oJ"),
        pytest.param(MASSCAN_JSON_1_0, id="-oJ of masscan 1.0"),
        pytest.param(MASSCAN_XML, id="-oX"),
    ],
)
def test_masscan_entries_of_one_address_become_one_host(tmp_path: Path, data: bytes) -> None:
    assert detect(data) is Format.MASSCAN
    records = convert(data, tmp_path, block=11)
    assert records[0]["source"] == "import:masscan"
    found = hosts(records)
    assert set(found) == {"192.0.2.10", "192.0.2.11"}
    web = found["192.0.2.10"]
    assert web["source"] == "import:masscan"
    assert set(ports(web)) == {("tcp", 80), ("tcp", 443)}
    assert all(service["state"] == "open" for service in web["services"])
    assert set(ports(found["192.0.2.11"])) >= {("udp", 53)}
    assert records[-1]["hosts"] == 2
    if data is not MASSCAN_JSON_1_0:
        assert ports(web)[("tcp", 80)]["http"]["title"] == "Welcome home"


def test_masscan_banners_name_the_service(tmp_path: Path) -> None:
    found = hosts(convert(MASSCAN_LIST, tmp_path))
    http = ports(found["192.0.2.10"])[("tcp", 80)]
    assert http["service"] == "http"
    assert http["http"] == {"server": "nginx/1.18.0", "title": "Welcome home"}
    ssh = ports(found["192.0.2.11"])[("tcp", 22)]
    assert ssh["service"] == "ssh"
    assert ssh["banner"] == "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4"
    assert "192.0.2.12" not in found  # an ICMP echo names no service


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        pytest.param(b"#masscan\nopen tcp 80\n", 2, "has 'state proto port", id="short line"),
        pytest.param(
            b"#masscan\nopen tcp 99999 192.0.2.1 1\n", 2, "not a TCP or UDP port", id="bad port"
        ),
        pytest.param(
            b'[\n{"ip": "192.0.2.1", "ports": [ {"port": 80, \n]\n', 2, "not valid JSON", id="json"
        ),
        pytest.param(b'[\n{"ip": "192.0.2.1"}\n]\n', 2, "no 'ports' list", id="no ports"),
    ],
)
def test_broken_masscan_output_is_refused_naming_the_line(
    tmp_path: Path, data: bytes, line: int, problem: str
) -> None:
    with pytest.raises(FormatError, match=problem) as refused:
        convert(data, tmp_path)
    assert refused.value.line == line


def test_csv_columns_are_recognised_by_their_common_names(tmp_path: Path) -> None:
    records = convert(CSV.encode(), tmp_path)
    assert records[0]["source"] == "import:csv"
    found = hosts(records)
    web = found["192.0.2.10"]
    assert web["source"] == "import:csv"
    assert web["hostnames"] == ["web.example.test"]
    assert web["mac"] == "00:1a:2b:3c:4d:5e"
    assert web["os"] == "Ubuntu 22.04"
    assert set(ports(web)) == {("tcp", 22), ("tcp", 80), ("tcp", 443), ("udp", 53)}
    assert web["tags"] == ["web", "prod"]
    assert web["description"] == "Front web server"
    assert web["attributes"] == {"Owner": "Alice", "Rack": "R1"}
    db = found["192.0.2.11"]
    assert db["addresses"] == ["192.0.2.11", "2001:db8::11"]
    assert set(ports(db)) == {("tcp", 5432), ("tcp", 8000), ("tcp", 8001), ("tcp", 8002)}
    assert db["attributes"] == {"Owner": "Bob"}
    printer = found["printer.example.test"]
    assert printer["addresses"] == []
    assert list(ports(printer)) == [("tcp", 9100)]


def test_a_semicolon_csv_with_a_host_column_of_names_and_addresses(tmp_path: Path) -> None:
    data = b"Host;tcp_ports;os\n192.0.2.20;22;Linux\nfiles.example.test;445;Windows \xe9\n"
    found = hosts(convert(data, tmp_path))
    assert found["192.0.2.20"]["os"] == "Linux"
    assert found["files.example.test"]["os"] == "Windows \ufffd"


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        pytest.param(b"owner,rack\nAlice,R1\n", 1, "no address or hostname column", id="header"),
        pytest.param(
            b"ip,ports\n192.0.2.1,22\n192.0.2.2,http\n", 3, "'http' is not a port", id="port"
        ),
        pytest.param(b"ip,ports\n192.0.2.1,0-70000\n", 2, "from 1 to 65535", id="range"),
        pytest.param(b"ip,mac\n192.0.2.1,zz:zz\n", 2, "not a MAC", id="mac"),
        pytest.param(b"ip,os\n192.0.2.300,Linux\n", 2, "not an IP address", id="address"),
        pytest.param(b"ip,os\n,Linux\n", 2, "no address and no hostname", id="nothing"),
        pytest.param(b'ip,os\n192.0.2.1,"Linux\n', 2, "the CSV is broken", id="open quote"),
    ],
)
def test_broken_csv_is_refused_naming_the_line(
    tmp_path: Path, data: bytes, line: int, problem: str
) -> None:
    with pytest.raises(FormatError, match=problem) as refused:
        convert(data, tmp_path)
    assert refused.value.line == line


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b'{"type":"config","params":{}}\n', Format.JSONL),
        (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap"',
            Format.NMAP,
        ),
        (MASSCAN_XML, Format.MASSCAN),
        (MASSCAN_JSON, Format.MASSCAN),
        (MASSCAN_LIST, Format.MASSCAN),
        (b"open tcp 80 192.0.2.1 1796464800\n", Format.MASSCAN),
        (b'{"ip": "192.0.2.1", "timestamp": "1", "ports": []}\n', Format.MASSCAN),
        (CSV.encode(), Format.CSV),
        (b"address\n192.0.2.1\n", Format.CSV),
    ],
)
def test_the_format_is_told_from_the_first_bytes(head: bytes, fmt: Format) -> None:
    assert detect(head) is fmt


def test_a_file_of_no_known_format_is_refused_naming_the_formats() -> None:
    with pytest.raises(FormatError, match="nmap XML, masscan"):
        detect(b"\x00\x01\x02 binary junk")


def test_a_named_format_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="there is no format 'nessus'"):
        convert(b"ip\n192.0.2.1\n", tmp_path, named="nessus")


def test_a_named_format_overrides_detection(tmp_path: Path) -> None:
    # A one-column list of addresses reads as CSV when the header says so.
    found = hosts(convert(b"ip\n192.0.2.1\n", tmp_path, named="csv"))
    assert list(found) == ["192.0.2.1"]
