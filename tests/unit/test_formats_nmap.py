"""nmap XML as task data: what each part of nmap's output becomes, the odd files nmap writes
(interrupted scans, hosts twice, bytes that are not UTF-8, nmap 6), and files refused."""

# The hosts written inline are kept line for line as nmap writes them, long lines and all.
# ruff: noqa: E501

from __future__ import annotations

from pathlib import Path

import pytest

from surveyor.core.jsonl_limits import JsonlLimits, LimitExceeded
from surveyor.formats.records import FormatError
from tests.support.imported import convert, hosts, ports
from tests.support.tool_files import (
    BILLION_LAUGHS,
    END,
    EXTERNAL_DTD,
    EXTERNAL_ENTITY,
    PARAMETER_ENTITY,
    PROLOG,
    ROUTER,
    WEB_SERVER,
    nmap_file,
)


@pytest.mark.parametrize("block", [1 << 20, 7], ids=["whole", "seven bytes at a time"])
def test_every_part_of_a_host_becomes_part_of_its_record(tmp_path: Path, block: int) -> None:
    records = convert(nmap_file(WEB_SERVER, ROUTER), tmp_path, block=block)
    assert [r["type"] for r in records] == ["config", "host", "host", "summary"]
    config, summary = records[0], records[-1]
    assert config["source"] == "import:nmap"
    assert config["started_at"] == "2026-12-05T10:00:00Z"
    assert config["imported"]["version"] == "7.93"
    assert config["imported"]["skipped"] == 1  # the host that is down
    assert summary == {"type": "summary", "hosts": 2, "finished_at": "2026-12-05T11:00:00Z"}
    web = hosts(records)["192.0.2.10"]
    assert web["source"] == "import:nmap"
    assert web["mac"] == "00:1A:2B:3C:4D:5E"
    assert web["mac_vendor"] == "Cisco Systems"
    assert web["hostnames"] == ["www.example.test", "web-10.example.test"]
    assert web["os"] == "Linux 4.15 - 5.8"
    assert web["os_accuracy"] == 96
    assert web["os_version"] == "5.X"
    assert "device_type" not in web  # "general purpose" says nothing
    assert web["uptime_seconds"] == 3888000
    assert web["distance"] == 1
    found = ports(web)
    assert set(found) == {("tcp", 22), ("tcp", 443), ("tcp", 8080), ("udp", 53), ("udp", 161)}
    assert found[("tcp", 22)] == {
        "port": 22,
        "proto": "tcp",
        "state": "open",
        "service": "ssh",
        "product": "OpenSSH",
        "version": "8.9p1 Ubuntu 3ubuntu0.4",
        "extrainfo": "Ubuntu Linux; protocol 2.0",
        "cpe": ["cpe:/a:openbsd:openssh:8.9p1", "cpe:/o:linux:linux_kernel"],
    }
    https = found[("tcp", 443)]
    assert https["tunnel"] == "ssl"
    assert https["http"] == {"title": "Welcome to the example", "server": "nginx/1.18.0 (Ubuntu)"}
    assert https["tls"]["subject"] == "CN=www.example.test,O=Example Ltd"
    assert https["tls"]["issuer"] == "CN=Example CA,C=US"
    assert https["tls"]["sans"] == ["www.example.test", "example.test", "192.0.2.10"]
    assert https["tls"]["not_before"] == "2026-01-01T00:00:00Z"
    assert https["tls"]["not_after"] == "2027-01-01T00:00:00Z"
    assert len(https["tls"]["sha256"]) == 64
    assert found[("tcp", 8080)]["state"] == "filtered"
    assert found[("udp", 53)]["product"] == "ISC BIND"
    assert found[("udp", 161)]["state"] == "open|filtered"
    router = hosts(records)["192.0.2.1"]
    assert router["os"] == "Cisco 2811 router (IOS 12.4)"
    assert router["device_type"] == "router"
    assert router["distance"] == 2
    assert "mac" not in router
    assert "192.0.2.5" not in hosts(records)


def test_a_host_with_no_ports_and_an_ipv6_host_are_kept(tmp_path: Path) -> None:
    quiet = b"""<host><status state="up" reason="echo-reply" reason_ttl="64"/>
<address addr="192.0.2.7" addrtype="ipv4"/><hostnames/></host>
<host><status state="up" reason="syn-ack" reason_ttl="64"/>
<address addr="2001:db8::10" addrtype="ipv6"/>
<hostnames><hostname name="v6.example.test" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" method="table" conf="3"/></port></ports>
</host>
"""
    found = hosts(convert(nmap_file(quiet), tmp_path))
    assert found["192.0.2.7"]["services"] == []
    assert found["2001:db8::10"]["hostnames"] == ["v6.example.test"]
    assert list(ports(found["2001:db8::10"])) == [("tcp", 80)]


def test_several_host_elements_of_one_address_become_one_record(tmp_path: Path) -> None:
    tcp = b"""<host><status state="up" reason="syn-ack" reason_ttl="64"/>
<address addr="192.0.2.20" addrtype="ipv4"/>
<hostnames><hostname name="db.example.test" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="5432"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="postgresql" method="table" conf="3"/></port></ports>
</host>
"""
    other = b"""<host><status state="up" reason="echo-reply" reason_ttl="64"/>
<address addr="192.0.2.21" addrtype="ipv4"/></host>
"""
    udp = b"""<host><status state="up" reason="udp-response" reason_ttl="64"/>
<address addr="192.0.2.20" addrtype="ipv4"/>
<address addr="52:54:00:12:34:56" addrtype="mac"/>
<hostnames><hostname name="db" type="user"/></hostnames>
<ports><port protocol="udp" portid="123"><state state="open" reason="udp-response" reason_ttl="64"/><service name="ntp" method="table" conf="3"/></port>
<port protocol="tcp" portid="5432"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="postgresql" product="PostgreSQL DB" version="15" method="probed" conf="10"/></port></ports>
</host>
"""
    records = convert(nmap_file(tcp, other, udp), tmp_path)
    assert [r["addresses"] for r in records if r["type"] == "host"] == [
        ["192.0.2.20"],
        ["192.0.2.21"],
    ]
    db = hosts(records)["192.0.2.20"]
    assert db["hostnames"] == ["db.example.test", "db"]
    assert db["mac"] == "52:54:00:12:34:56"
    assert set(ports(db)) == {("tcp", 5432), ("udp", 123)}
    assert ports(db)[("tcp", 5432)]["product"] == "PostgreSQL DB"
    assert records[-1]["hosts"] == 2
    assert records[0]["imported"]["entries"] == 3


def test_an_interrupted_scan_gives_the_hosts_it_finished(tmp_path: Path) -> None:
    records = convert(nmap_file(ROUTER, WEB_SERVER, end=b""), tmp_path)
    assert set(hosts(records)) == {"192.0.2.1", "192.0.2.10"}
    assert records[-1]["partial"] is True
    assert "interrupted" in records[0]["imported"]["notes"][0]


def test_a_file_cut_inside_a_host_is_refused_naming_the_line(tmp_path: Path) -> None:
    data = nmap_file(ROUTER, WEB_SERVER, end=b"")
    between_tags = data[: data.index(b'<port protocol="tcp" portid="443"')]
    with pytest.raises(FormatError, match="ends inside the <host> element of line 30"):
        convert(between_tags, tmp_path)
    inside_a_tag = data[: data.index(b'portid="443"')]
    with pytest.raises(FormatError, match="unclosed token") as refused:
        convert(inside_a_tag, tmp_path)
    assert refused.value.line == 41


def test_bytes_that_are_not_utf8_become_replacement_characters(tmp_path: Path) -> None:
    latin = b"""<host><status state="up" reason="syn-ack" reason_ttl="64"/>
<address addr="192.0.2.30" addrtype="ipv4"/>
<hostnames><hostname name="caf\xe9.example.test" type="user"/></hostnames>
<ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" product="Serveur \xe0 caf\xe9" method="probed" conf="10"/><script id="http-title" output="Caf\xe9 \xff"><elem key="title">Caf\xe9 \xff</elem></script></port></ports>
</host>
"""
    found = hosts(convert(nmap_file(latin), tmp_path))["192.0.2.30"]
    assert found["hostnames"] == ["caf\ufffd.example.test"]
    service = ports(found)[("tcp", 80)]
    assert service["product"] == "Serveur \ufffd caf\ufffd"
    assert service["http"]["title"] == "Caf\ufffd \ufffd"


def test_a_file_in_another_declared_encoding_is_read_in_it(tmp_path: Path) -> None:
    data = nmap_file(
        b"""<host><status state="up" reason="syn-ack" reason_ttl="64"/>
<address addr="192.0.2.31" addrtype="ipv4"/>
<hostnames><hostname name="caf\xe9" type="user"/></hostnames></host>
"""
    ).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    assert hosts(convert(data, tmp_path))["192.0.2.31"]["hostnames"] == ["caf\xe9"]


def test_nmap_6_output_without_structured_scripts_is_read(tmp_path: Path) -> None:
    old = b"""<host starttime="1356998400" endtime="1356998500"><status state="up" reason="syn-ack"/>
<address addr="192.0.2.40" addrtype="ipv4"/>
<hostnames><hostname name="old.example.test" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" product="Apache httpd" version="2.2.22" tunnel="ssl" method="probed" conf="10"><cpe>cpe:/a:apache:http_server:2.2.22</cpe></service><script id="ssl-cert" output="Subject: commonName=old.example.test/organizationName=Old Ltd&#xa;Issuer: commonName=Old CA&#xa;Public Key type: rsa&#xa;Not valid before: 2012-01-01 00:00:00&#xa;Not valid after:  2014-01-01 00:00:00"/><script id="http-title" output="Old site"/></port></ports>
<os><portused state="open" proto="tcp" portid="443"/>
<osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="2.6.X" accuracy="95"/>
<osclass type="WAP" vendor="Netgear" osfamily="embedded" accuracy="90"/>
<osmatch name="Linux 2.6.32 - 3.2" accuracy="95" line="43011"/>
</os>
</host>
"""
    data = nmap_file(old).replace(b'version="7.93"', b'version="6.00"')
    found = hosts(convert(data, tmp_path))["192.0.2.40"]
    https = ports(found)[("tcp", 443)]
    assert https["tls"]["subject"] == "CN=old.example.test,O=Old Ltd"
    assert https["tls"]["issuer"] == "CN=Old CA"
    assert https["tls"]["not_before"] == "2012-01-01 00:00:00"
    assert https["http"]["title"] == "Old site"
    assert found["os"] == "Linux 2.6.32 - 3.2"
    assert found["os_version"] == "2.6.X"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(BILLION_LAUGHS, "declares the entity 'lol'", id="billion laughs"),
        pytest.param(EXTERNAL_ENTITY, "declares the entity 'secret'", id="external entity"),
        pytest.param(EXTERNAL_DTD, "names an external DTD", id="external DTD"),
        pytest.param(PARAMETER_ENTITY, "declares the entity 'remote'", id="parameter entity"),
    ],
)
def test_entities_and_external_references_are_refused(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    with pytest.raises(FormatError, match=problem):
        convert(data, tmp_path)


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        pytest.param(
            PROLOG + b"<host><status state='up'></host>\n",
            10,
            "mismatched tag",
            id="a mismatched tag",
        ),
        pytest.param(
            PROLOG + b'<host><address addr="192.0.2.1" addrtype="ipv4"></address></nmaprun>',
            10,
            "mismatched tag",
            id="closing the root inside a host",
        ),
        pytest.param(PROLOG + b"<host>&nbsp;</host>", 10, "undefined entity", id="an entity"),
        pytest.param(PROLOG + END + b"<host/>", 13, "junk after document", id="junk after"),
    ],
)
def test_broken_xml_is_refused_naming_line_and_column(
    tmp_path: Path, data: bytes, line: int, problem: str
) -> None:
    with pytest.raises(FormatError, match=problem) as refused:
        convert(data, tmp_path)
    assert refused.value.line == line
    assert refused.value.column is not None
    assert str(refused.value).startswith(f"line {line}, column")


def test_xml_that_is_not_nmap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no <nmaprun> element"):
        convert(b'<?xml version="1.0"?>\n<svg></svg>\n', tmp_path)


def test_a_tag_that_never_ends_is_refused_within_the_record_limit(tmp_path: Path) -> None:
    data = PROLOG + b'<host><address addr="' + b"1" * 400_000
    limits = JsonlLimits(max_record_bytes=100_000)
    with pytest.raises(LimitExceeded, match="no XML token ends within 100000 bytes"):
        convert(data, tmp_path, block=65536, limits=limits)
