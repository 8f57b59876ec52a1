"""How the SNMP connector turns what an agent says into host records."""

from __future__ import annotations

from typing import Any

import pytest
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString

from surveyor.connectors import snmp
from surveyor.connectors.snmp import Agent, AgentReading, device_records, device_type_of

SWITCH = Agent("192.0.2.10", 161)


def reading(
    target: Agent = SWITCH,
    *,
    name: str | None = "core-sw1",
    services: int | None = 2,
    addresses: dict[str, int] | None = None,
    interfaces: dict[int, tuple[str, bytes]] | None = None,
    arp: list[tuple[int, str, bytes, int]] | None = None,
    neighbours: list[tuple[int, tuple[int, ...], bytes, int]] | None = None,
) -> AgentReading:
    """An agent's answers: `arp` rows are (ifIndex, IPv4, MAC, type); `neighbours` rows are
    ipNetToPhysicalTable's (ifIndex, type+length+address, MAC, type)."""
    result = AgentReading(target)
    result.system[snmp.SYS_DESCR] = OctetString("Switch OS 1.2")
    result.system[snmp.SYS_OBJECT_ID] = ObjectIdentifier("1.3.6.1.4.1.9.1.1")
    if name is not None:
        result.system[snmp.SYS_NAME] = OctetString(name)
    if services is not None:
        result.system[snmp.SYS_SERVICES] = Integer32(services)
    interfaces = interfaces or {1: ("lo", b""), 2: ("ge-0/0/1", b"\x00\x11\x22\x33\x44\x55")}
    result.tables[snmp.IF_DESCR] = [((i,), OctetString(n)) for i, (n, _) in interfaces.items()]
    result.tables[snmp.IF_PHYS_ADDRESS] = [
        ((i,), OctetString(mac)) for i, (_, mac) in interfaces.items()
    ]
    addresses = addresses if addresses is not None else {"127.0.0.1": 1, "10.1.0.1": 2}
    result.tables[snmp.IP_AD_ENT_IF_INDEX] = [
        (tuple(int(part) for part in address.split(".")), Integer32(index))
        for address, index in addresses.items()
    ]
    media = []
    types = []
    for index, address, mac, kind in arp or []:
        suffix = (index, *(int(part) for part in address.split(".")))
        media.append((suffix, OctetString(mac)))
        types.append((suffix, Integer32(kind)))
    result.tables[snmp.IP_NET_TO_MEDIA_PHYS] = media
    result.tables[snmp.IP_NET_TO_MEDIA_TYPE] = types
    physical = []
    physical_types = []
    for index, tail, mac, kind in neighbours or []:
        physical.append(((index, *tail), OctetString(mac)))
        physical_types.append(((index, *tail), Integer32(kind)))
    result.tables[snmp.IP_NET_TO_PHYSICAL_PHYS] = physical
    result.tables[snmp.IP_NET_TO_PHYSICAL_TYPE] = physical_types
    return result


def v6_index(address: bytes) -> tuple[int, ...]:
    return (2, 16, *address)


@pytest.mark.parametrize(
    ("services", "expected"),
    [(2, "switch"), (6, "router"), (4, "router"), (72, None), (78, None), (0, None), (None, None)],
)
def test_sys_services_tells_routers_and_switches(
    services: int | None, expected: str | None
) -> None:
    assert device_type_of(None if services is None else Integer32(services)) == expected


def test_the_device_keeps_its_identity_and_drops_loopback() -> None:
    device = device_records(reading())[0]
    assert device == {
        "type": "host",
        "source": "snmp",
        "addresses": ["192.0.2.10", "10.1.0.1"],
        "mac": "00:11:22:33:44:55",
        "hostnames": ["core-sw1"],
        "description": "Switch OS 1.2",
        "device_type": "switch",
        "attributes": {
            "sysObjectID": "1.3.6.1.4.1.9.1.1",
            "snmp_agent": "192.0.2.10:161",
            "interface ge-0/0/1": "00:11:22:33:44:55",
        },
    }


def test_ipv6_addresses_of_the_device_come_from_ip_address_table() -> None:
    agent = reading()
    agent.tables[snmp.IP_ADDRESS_IF_INDEX] = [
        ((1, 4, 10, 1, 0, 1), Integer32(2)),
        ((2, 16, *bytes.fromhex("20010db8000000000000000000000001")), Integer32(2)),
        ((2, 16, *bytes.fromhex("fe800000000000000000000000000001")), Integer32(2)),
    ]
    assert device_records(agent)[0]["addresses"] == ["192.0.2.10", "10.1.0.1", "2001:db8::1"]


def test_a_device_known_only_by_loopback_keeps_the_address_it_answered_at() -> None:
    device = device_records(
        reading(Agent("127.0.0.9", 16100), name=None, addresses={"127.0.0.1": 1})
    )[0]
    assert device["addresses"] == ["127.0.0.9"]
    assert device["hostnames"] == []


def test_a_target_given_by_name_is_one_of_the_devices_names() -> None:
    device = device_records(reading(Agent("SW1.lab.example", 161)))[0]
    assert device["hostnames"] == ["core-sw1", "sw1.lab.example"]


def test_neighbours_are_grouped_by_mac_across_both_tables() -> None:
    mac = b"\x02\x00\x00\x00\x00\x05"
    v6 = bytes.fromhex("fd000000000000000000000000000005")
    link_local = bytes.fromhex("fe800000000000000000000000000005")
    records = device_records(
        reading(
            arp=[
                (2, "10.1.0.5", mac, 3),
                (2, "10.1.0.6", b"\x02\x00\x00\x00\x00\x06", 2),  # invalid row
                (2, "10.1.0.7", b"", 3),  # incomplete: no MAC yet
                (2, "10.1.0.1", b"\x02\x00\x00\x00\x00\x01", 4),  # the device's own
            ],
            neighbours=[
                (2, (1, 4, 10, 1, 0, 5), mac, 3),
                (2, v6_index(v6), mac, 3),
                (2, v6_index(link_local), mac, 3),
            ],
        )
    )
    assert records[1:] == [
        {
            "type": "host",
            "source": "snmp",
            "addresses": ["10.1.0.5", "fd00::5"],
            "mac": "02:00:00:00:00:05",
            "seen_by": "core-sw1",
            "attributes": {"seen_on_interface": "ge-0/0/1"},
        }
    ]


def test_without_a_name_neighbours_are_seen_by_the_devices_first_address() -> None:
    records = device_records(reading(name=None, arp=[(2, "10.1.0.5", b"\x02" * 6, 3)]))
    assert records[1]["seen_by"] == "192.0.2.10"


def test_records_never_hold_more_than_fifty_attributes() -> None:
    interfaces = {index: (f"port{index}", bytes([2, 0, 0, 0, 0, index])) for index in range(1, 90)}
    device: dict[str, Any] = device_records(reading(interfaces=interfaces))[0]
    assert len(device["attributes"]) <= 50
