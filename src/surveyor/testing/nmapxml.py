"""nmap XML files of any size, in the structure nmap 7 writes (`-sT -sV -O -oX`), for the
memory tests of imports and for `bench/imports.py`.

Each host is up, has a MAC with its vendor, a PTR name, `ports_per_host` open TCP ports
with a service (product, version, CPE) and one filtered port, an OS match with its class,
uptime and distance, as a real scan of a LAN gives. The file is written host by host, so
its size costs no memory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: Services the hosts run, as nmap's service detection names them.
SERVICES = (
    (
        22,
        "ssh",
        "OpenSSH",
        "8.9p1 Ubuntu 3ubuntu0.4",
        "Ubuntu Linux; protocol 2.0",
        "cpe:/a:openbsd:openssh:8.9p1",
    ),
    (80, "http", "nginx", "1.18.0", "Ubuntu", "cpe:/a:igor_sysoev:nginx:1.18.0"),
    (443, "http", "nginx", "1.18.0", "Ubuntu", "cpe:/a:igor_sysoev:nginx:1.18.0"),
    (3306, "mysql", "MySQL", "8.0.35-0ubuntu0.22.04.1", "", "cpe:/a:mysql:mysql:8.0.35"),
    (5432, "postgresql", "PostgreSQL DB", "14.9 - 14.10", "", "cpe:/a:postgresql:postgresql:14"),
    (6379, "redis", "Redis key-value store", "6.0.16", "", ""),
    (8080, "http", "Apache Tomcat", "9.0.58", "", "cpe:/a:apache:tomcat:9.0.58"),
    (25, "smtp", "Postfix smtpd", "", "", "cpe:/a:postfix:postfix"),
    (21, "ftp", "vsftpd", "3.0.5", "", "cpe:/a:vsftpd:vsftpd:3.0.5"),
    (111, "rpcbind", "", "2-4", "RPC #100000", ""),
)

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan initiated Sat Dec  5 10:00:00 2026 as: nmap -sT -sV -O -oX scan.xml \
{targets} -->
<nmaprun scanner="nmap" args="nmap -sT -sV -O -oX scan.xml {targets}" start="1796464800" \
startstr="Sat Dec  5 10:00:00 2026" version="7.93" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="1000" services="1-1000"/>
<verbose level="0"/>
<debugging level="0"/>
"""

FOOTER = """<runstats><finished time="1796468400" timestr="Sat Dec  5 11:00:00 2026" \
summary="Nmap done at Sat Dec  5 11:00:00 2026; {total} IP addresses ({up} hosts up) scanned in \
3600.00 seconds" elapsed="3600.00" exit="success"/><hosts up="{up}" down="0" total="{total}"/>
</runstats>
</nmaprun>
"""


def _port(number: int, name: str, product: str, version: str, extra: str, cpe: str) -> str:
    attributes = f'name="{name}"'
    if product:
        attributes += f' product="{product}"'
    if version:
        attributes += f' version="{version}"'
    if extra:
        attributes += f' extrainfo="{extra}"'
    if number == 443:
        attributes += ' tunnel="ssl"'
    cpe_element = f"<cpe>{cpe}</cpe>" if cpe else ""
    return (
        f'<port protocol="tcp" portid="{number}"><state state="open" reason="syn-ack" '
        f'reason_ttl="0"/><service {attributes} method="probed" conf="10">{cpe_element}'
        "</service></port>\n"
    )


def host_xml(index: int, address: str, ports_per_host: int) -> str:
    """One `<host>` element as nmap writes it."""
    mac = ":".join(f"{(index >> shift) & 0xFF:02X}" for shift in (40, 32, 24, 16, 8, 0))
    mac = "52:54:" + mac[6:]
    ports = "".join(_port(*SERVICES[(index + n) % len(SERVICES)]) for n in range(ports_per_host))
    return (
        f'<host starttime="1796464800" endtime="1796464830"><status state="up" '
        'reason="arp-response" reason_ttl="0"/>\n'
        f'<address addr="{address}" addrtype="ipv4"/>\n'
        f'<address addr="{mac}" addrtype="mac" vendor="QEMU virtual NIC"/>\n'
        "<hostnames>\n"
        f'<hostname name="host-{index}.lab.example" type="PTR"/>\n'
        "</hostnames>\n"
        '<ports><extraports state="closed" count="991">\n'
        '<extrareasons reason="conn-refused" count="991" proto="tcp" ports="1-20,23-24"/>\n'
        "</extraports>\n"
        '<port protocol="tcp" portid="9100"><state state="filtered" reason="no-response" '
        'reason_ttl="0"/><service name="jetdirect" method="table" conf="3"/></port>\n'
        f"{ports}"
        "</ports>\n"
        '<os><portused state="open" proto="tcp" portid="22"/>\n'
        '<portused state="closed" proto="tcp" portid="1"/>\n'
        '<osmatch name="Linux 4.15 - 5.8" accuracy="96" line="67501">\n'
        '<osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="4.X" '
        'accuracy="96"><cpe>cpe:/o:linux:linux_kernel:4</cpe></osclass>\n'
        '<osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="5.X" '
        'accuracy="96"><cpe>cpe:/o:linux:linux_kernel:5</cpe></osclass>\n'
        "</osmatch>\n"
        '<osmatch name="Linux 2.6.32" accuracy="91" line="55409">\n'
        '<osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="2.6.X" '
        'accuracy="91"><cpe>cpe:/o:linux:linux_kernel:2.6.32</cpe></osclass>\n'
        "</osmatch>\n"
        "</os>\n"
        f'<uptime seconds="{86400 + index}" lastboot="Fri Dec  4 10:00:00 2026"/>\n'
        '<distance value="1"/>\n'
        '<tcpsequence index="260" difficulty="Good luck!" values="A1B2C3D4,E5F60718"/>\n'
        '<ipidsequence class="All zeros" values="0,0,0,0,0,0"/>\n'
        '<tcptssequence class="1000HZ" values="5A0F1C2B,5A0F1C8F"/>\n'
        '<times srtt="412" rttvar="95" to="100000"/>\n'
        "</host>\n"
    )


def addresses(count: int, first: str = "127.16.0.1") -> Iterator[str]:
    start = int(ipaddress.IPv4Address(first))
    for n in range(count):
        yield str(ipaddress.IPv4Address(start + n))


def write_scan(out: BinaryIO, hosts: int, ports_per_host: int = 8) -> None:
    """A whole nmap XML file of `hosts` hosts, written as it goes."""
    out.write(HEADER.format(targets=f"127.16.0.0/{32 - max(hosts - 1, 1).bit_length()}").encode())
    batch: list[str] = []
    for index, address in enumerate(addresses(hosts)):
        batch.append(host_xml(index, address, ports_per_host))
        if len(batch) == 512:
            out.write("".join(batch).encode())
            batch.clear()
    out.write("".join(batch).encode())
    out.write(FOOTER.format(total=hosts, up=hosts).encode())


def write_scan_file(path: Path, hosts: int, ports_per_host: int = 8) -> int:
    """Write the file at `path`; its size in bytes."""
    with path.open("wb") as out:
        write_scan(out, hosts, ports_per_host)
    return path.stat().st_size


def hosts_for_size(size: int, ports_per_host: int = 8) -> int:
    """About how many hosts make a file of `size` bytes."""
    return max(1, size // len(host_xml(0, "127.16.0.1", ports_per_host).encode()))
