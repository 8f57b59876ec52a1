"""How one directory entry becomes a host record, and how the search answers are read off
the wire, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from surveyor.connectors import ldapwire
from surveyor.connectors.ldap import CONNECTOR, Entry, host_record
from surveyor.connectors.ldapwire import Done, Reference
from surveyor.testing.slapd import filetime


def test_last_logon_is_the_filetime_read_as_utc_and_the_ou_skips_the_domain() -> None:
    moment = datetime(2026, 12, 5, 16, 30, 15, 123456, tzinfo=UTC)
    entry = Entry(
        dn=r"cn=PC1,ou=Lyon\, Part-Dieu,cn=Computers,dc=corp,dc=example",
        attributes={"lastlogontimestamp": str(filetime(moment))},
    )

    assert host_record(entry, ["192.0.2.7"]) == {
        "type": "host",
        "source": "ldap",
        "hostnames": ["PC1"],
        "addresses": ["192.0.2.7"],
        "attributes": {
            "dn": r"cn=PC1,ou=Lyon\, Part-Dieu,cn=Computers,dc=corp,dc=example",
            "ou": r"ou=Lyon\, Part-Dieu,cn=Computers",
            "last_logon": "2026-12-05T16:30:15.123456Z",
        },
    }


@pytest.mark.parametrize("never", ["0", "9223372036854775807", "not a number"])
def test_a_computer_that_never_logged_on_has_no_last_logon(never: str) -> None:
    entry = Entry(
        dn="cn=PC2,dc=corp",
        attributes={"dnshostname": "pc2.corp.example", "lastlogontimestamp": never},
    )

    record = host_record(entry, [])

    assert record is not None
    assert record["attributes"] == {"dn": "cn=PC2,dc=corp"}
    assert record["hostnames"] == ["pc2.corp.example"]


def test_without_dns_host_name_the_name_is_the_cn_read_off_the_dn() -> None:
    entry = Entry(dn=r"cn=Lab\, PC\2B1 \C3\A9,ou=Desks,dc=corp", attributes={})

    record = host_record(entry)

    assert record is not None
    assert record["hostnames"] == ["Lab, PC+1 é"]


@pytest.mark.parametrize(
    ("dn", "ou"),
    [
        ("cn=PC,ou=Paris,ou=Desks,dc=corp,dc=example", "ou=Paris,ou=Desks"),
        ("cn=PC, ou=Paris, DC=corp, DC=example", "ou=Paris"),
        ("CN=PC,CN=Computers,DC=corp,DC=example", "CN=Computers"),
        ("cn=PC,dc=corp", None),
        ("cn=PC", None),
        ("cn=PC,ou=Sales,o=Corp", "ou=Sales,o=Corp"),
    ],
)
def test_the_ou_is_the_dn_between_the_entry_and_the_domain(dn: str, ou: str | None) -> None:
    record = host_record(Entry(dn=dn, attributes={}))

    assert record is not None
    assert record["attributes"].get("ou") == ou


def test_an_entry_without_any_name_gives_no_record() -> None:
    assert host_record(Entry(dn="cn=,dc=corp", attributes={"operatingsystem": "X"}), []) is None


def test_the_options_get_their_defaults_and_bad_ones_are_named() -> None:
    assert CONNECTOR.check_options({"base_dn": " dc=lab ", "server": "x"})["base_dn"] == "dc=lab"
    for options, words in [
        ({}, "base_dn is required"),
        ({"base_dn": "dc=lab", "tls": "ssl"}, "tls must be one of none, starttls, ldaps"),
        ({"base_dn": "dc=lab", "filter": "cn=x)"}, "is not a valid LDAP filter"),
        ({"base_dn": "dc=lab", "resolve": "yes"}, "resolve must be true or false"),
        ({"base_dn": "dc=lab", "dns_server": "h:99999"}, "dns_server: server 'h:99999'"),
        ({"base_dn": "dc=lab", "zones": []}, "unknown ldap option 'zones'"),
    ]:
        with pytest.raises(ValueError, match=words):
            CONNECTOR.check_options(options)


def _tlv(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes(2, "big")
    return bytes([tag, 0x82]) + size + content


def _message(message_id: int, op: bytes, controls: bytes = b"") -> bytes:
    return _tlv(0x30, _tlv(0x02, bytes([message_id])) + op + controls)


class _Chunks:
    """A transport that hands over the bytes a few at a time, as a slow network would."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size

    def sendall(self, data: bytes) -> None:
        raise AssertionError("nothing is sent while reading")

    def recv(self, size: int) -> bytes:
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_answers_split_anywhere_are_read_whole(chunk: int) -> None:
    long_value = "x" * 300  # long-form lengths
    attribute = _tlv(
        0x30,
        _tlv(0x04, b"description")
        + _tlv(0x31, _tlv(0x04, long_value.encode()) + _tlv(0x04, b"second value")),
    )
    attribute += _tlv(0x30, _tlv(0x04, b"cn") + _tlv(0x31, b""))  # no value: left out
    entry = _tlv(0x64, _tlv(0x04, b"cn=PC1,dc=corp") + _tlv(0x30, attribute))
    reference = _tlv(0x73, _tlv(0x04, b"ldap://other/dc=x"))
    paged = _tlv(0x30, _tlv(0x02, b"\x00") + _tlv(0x04, b"next"))
    control = _tlv(0x30, _tlv(0x04, ldapwire.PAGED_RESULTS_OID) + _tlv(0x04, paged))
    done = _tlv(0x65, _tlv(0x0A, b"\x00") + _tlv(0x04, b"") + _tlv(0x04, b""))
    other = _message(9, _tlv(0x65, _tlv(0x0A, b"\x00") + _tlv(0x04, b"") + _tlv(0x04, b"")))
    wire = (
        _message(5, entry) + other + _message(5, reference) + _message(5, done, _tlv(0xA0, control))
    )

    page = ldapwire.read_page(_Chunks(wire, chunk), 5)

    slots = ldapwire.Slots(["cn", "Description", "dNSHostName"])
    assert ldapwire.values(page, slots) == [[None, long_value, None, "cn=PC1,dc=corp"]]
    assert page.references == [Reference(urls=("ldap://other/dc=x",))]
    assert page.done == Done(result_code=0, matched_dn="", message="", referrals=(), cookie=b"next")


def test_a_connection_closed_mid_search_is_an_error() -> None:
    with pytest.raises(ldapwire.WireError, match="closed the connection"):
        ldapwire.read_page(_Chunks(b"\x30\x05\x02\x01", 4), 1)


@pytest.mark.parametrize("message_id", [1, 127, 128, 255, 256, 1000, 32767, 32768, 70000])
@pytest.mark.parametrize("cookie", [b"", b"\x00", b"\x80\xff" * 4, bytes(range(256)) * 300])
def test_a_paged_search_asks_for_each_page_with_the_bytes_ldap3_encodes(
    message_id: int, cookie: bytes
) -> None:
    attributes = ["dNSHostName", "operatingSystem", "description"]
    search_filter = "(&(objectClass=computer)(cn=HOST*))"
    for base, page_size in (("dc=lab", 500), ("ou=" + "x" * 300 + ",dc=lab", 100_000)):
        search = ldapwire.PagedSearch(base, search_filter, attributes, page_size)
        expected = ldapwire.search_request(
            message_id, base, search_filter, attributes, page_size, cookie
        )
        assert search.request(message_id, cookie) == expected
