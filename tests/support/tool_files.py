"""Files as nmap, masscan and spreadsheets write them, for the tests of imports.

The tools' output is kept line for line as they write it, long lines and all.
"""

# ruff: noqa: E501

from __future__ import annotations

PROLOG = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan initiated Sat Dec  5 10:00:00 2026 as: nmap -sS -sU -sV -O -sC -oX - 192.0.2.0/28 -->
<nmaprun scanner="nmap" args="nmap -sS -sU -sV -O -sC -oX - 192.0.2.0/28" start="1796464800" startstr="Sat Dec  5 10:00:00 2026" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="1000" services="1-1000"/>
<scaninfo type="udp" protocol="udp" numservices="1000" services="1-1000"/>
<verbose level="0"/>
<debugging level="0"/>
"""
END = b"""<runstats><finished time="1796468400" timestr="Sat Dec  5 11:00:00 2026" summary="Nmap done" elapsed="3600.00" exit="success"/><hosts up="2" down="1" total="16"/>
</runstats>
</nmaprun>
"""

PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGUgZm9yIHRlc3RzMAoGCCqGSM49BAMC\n"
    "-----END CERTIFICATE-----\n"
)

WEB_SERVER = f"""<host starttime="1796464800" endtime="1796464900"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="192.0.2.10" addrtype="ipv4"/>
<address addr="00:1A:2B:3C:4D:5E" addrtype="mac" vendor="Cisco Systems"/>
<hostnames>
<hostname name="www.example.test" type="user"/>
<hostname name="web-10.example.test" type="PTR"/>
</hostnames>
<ports><extraports state="closed" count="995">
<extrareasons reason="resets" count="995" proto="tcp" ports="1-21,23-79"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh" product="OpenSSH" version="8.9p1 Ubuntu 3ubuntu0.4" extrainfo="Ubuntu Linux; protocol 2.0" ostype="Linux" method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:8.9p1</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" product="nginx" version="1.18.0" extrainfo="Ubuntu" tunnel="ssl" method="probed" conf="10"><cpe>cpe:/a:igor_sysoev:nginx:1.18.0</cpe></service><script id="http-server-header" output="nginx/1.18.0 (Ubuntu)"><elem>nginx/1.18.0 (Ubuntu)</elem>
</script><script id="http-title" output="Welcome to the example"><elem key="title">Welcome to the example</elem>
</script><script id="ssl-cert" output="Subject: commonName=www.example.test/organizationName=Example Ltd&#xa;Subject Alternative Name: DNS:www.example.test, DNS:example.test&#xa;Issuer: commonName=Example CA&#xa;Not valid before: 2026-01-01T00:00:00&#xa;Not valid after:  2027-01-01T00:00:00"><table key="subject">
<elem key="commonName">www.example.test</elem>
<elem key="organizationName">Example Ltd</elem>
</table>
<table key="issuer">
<elem key="commonName">Example CA</elem>
<elem key="countryName">US</elem>
</table>
<table key="pubkey">
<elem key="type">rsa</elem>
<elem key="bits">2048</elem>
</table>
<table key="extensions">
<table>
<elem key="name">X509v3 Basic Constraints</elem>
<elem key="value">CA:FALSE</elem>
</table>
<table>
<elem key="name">X509v3 Subject Alternative Name</elem>
<elem key="value">DNS:www.example.test, DNS:example.test, IP Address:192.0.2.10</elem>
</table>
</table>
<elem key="sig_algo">sha256WithRSAEncryption</elem>
<table key="validity">
<elem key="notBefore">2026-01-01T00:00:00</elem>
<elem key="notAfter">2027-01-01T00:00:00</elem>
</table>
<elem key="md5">0123456789abcdef0123456789abcdef</elem>
<elem key="sha1">0123456789abcdef0123456789abcdef01234567</elem>
<elem key="pem">{PEM}</elem>
</script></port>
<port protocol="tcp" portid="8080"><state state="filtered" reason="no-response" reason_ttl="0"/><service name="http-proxy" method="table" conf="3"/></port>
<port protocol="udp" portid="53"><state state="open" reason="udp-response" reason_ttl="64"/><service name="domain" product="ISC BIND" version="9.18.18" method="probed" conf="10"><cpe>cpe:/a:isc:bind:9.18.18</cpe></service></port>
<port protocol="udp" portid="161"><state state="open|filtered" reason="no-response" reason_ttl="0"/><service name="snmp" method="table" conf="3"/></port>
</ports>
<os><portused state="open" proto="tcp" portid="22"/>
<portused state="closed" proto="tcp" portid="1"/>
<osmatch name="Linux 2.6.32" accuracy="91" line="55409">
<osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="2.6.X" accuracy="91"><cpe>cpe:/o:linux:linux_kernel:2.6.32</cpe></osclass>
</osmatch>
<osmatch name="Linux 4.15 - 5.8" accuracy="96" line="67501">
<osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="5.X" accuracy="96"><cpe>cpe:/o:linux:linux_kernel:5</cpe></osclass>
</osmatch>
</os>
<uptime seconds="3888000" lastboot="Thu Oct 15 10:00:00 2026"/>
<distance value="1"/>
<tcpsequence index="260" difficulty="Good luck!" values="A1B2C3D4,E5F60718"/>
<times srtt="412" rttvar="95" to="100000"/>
</host>
""".encode()

ROUTER = b"""<hosthint><status state="up" reason="unknown-response" reason_ttl="0"/>
<address addr="192.0.2.1" addrtype="ipv4"/>
<hostnames>
</hostnames>
</hosthint>
<host starttime="1796464800" endtime="1796464900"><status state="up" reason="echo-reply" reason_ttl="255"/>
<address addr="192.0.2.1" addrtype="ipv4"/>
<hostnames>
</hostnames>
<ports><port protocol="tcp" portid="23"><state state="open" reason="syn-ack" reason_ttl="255"/><service name="telnet" product="Cisco router telnetd" ostype="IOS" devicetype="router" method="probed" conf="10"><cpe>cpe:/o:cisco:ios</cpe></service></port>
</ports>
<os><osmatch name="Cisco 2811 router (IOS 12.4)" accuracy="100" line="14003">
<osclass type="router" vendor="Cisco" osfamily="IOS" osgen="12.X" accuracy="100"><cpe>cpe:/h:cisco:2811_router</cpe></osclass>
</osmatch>
</os>
<distance value="2"/>
</host>
<host starttime="1796464800" endtime="1796464900"><status state="down" reason="no-response" reason_ttl="0"/>
<address addr="192.0.2.5" addrtype="ipv4"/>
</host>
"""


def nmap_file(*hosts_xml: bytes, end: bytes = END) -> bytes:
    return PROLOG + b"".join(hosts_xml) + end


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<nmaprun scanner="nmap"><host><status state="up"/><address addr="192.0.2.1" addrtype="ipv4"/>
<hostnames><hostname name="&lol9;" type="user"/></hostnames></host></nmaprun>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<nmaprun scanner="nmap"><host><status state="up"/><address addr="192.0.2.1" addrtype="ipv4"/>
<hostnames><hostname name="&secret;" type="user"/></hostnames></host></nmaprun>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun SYSTEM "http://127.0.0.1:9/nmap.dtd">
<nmaprun scanner="nmap"></nmaprun>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<nmaprun scanner="nmap"></nmaprun>
"""


MASSCAN_LIST = b"""#masscan
open tcp 80 192.0.2.10 1796464800
open tcp 443 192.0.2.10 1796464801
banner tcp 80 192.0.2.10 1796464802 http HTTP/1.0 200 OK\\x0d\\x0aServer: nginx/1.18.0\\x0d\\x0a\\x0d\\x0a
banner tcp 80 192.0.2.10 1796464802 title Welcome home
open udp 53 192.0.2.11 1796464803
banner tcp 22 192.0.2.11 1796464804 ssh SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4
open icmp 0 192.0.2.12 1796464805
# end
"""

MASSCAN_JSON = b"""[
{   "ip": "192.0.2.10",   "timestamp": "1796464800", "ports": [ {"port": 80, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] }
,
{   "ip": "192.0.2.10",   "timestamp": "1796464801", "ports": [ {"port": 443, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] }
,
{   "ip": "192.0.2.10",   "timestamp": "1796464802", "ports": [ {"port": 80, "proto": "tcp", "service": {"name": "title", "banner": "Welcome home"} } ] }
,
{   "ip": "192.0.2.11",   "timestamp": "1796464803", "ports": [ {"port": 53, "proto": "udp", "status": "open", "reason": "udp-response", "ttl": 64} ] }
]
"""

MASSCAN_JSON_1_0 = b"""{ "ip": "192.0.2.10", "timestamp": "1796464800", "ports": [ {"port": 80, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] },
{ "ip": "192.0.2.10", "timestamp": "1796464801", "ports": [ {"port": 443, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] },
{ "ip": "192.0.2.11", "timestamp": "1796464803", "ports": [ {"port": 53, "proto": "udp", "status": "open", "reason": "udp-response", "ttl": 64} ] },
{finished: 1}
"""

MASSCAN_XML = b"""<?xml version="1.0"?>
<!-- masscan v1.0 scan -->
<nmaprun scanner="masscan" start="1796464800" version="1.0-BETA"  xmloutputversion="1.03">
<scaninfo type="syn" protocol="tcp" />
<host endtime="1796464800"><address addr="192.0.2.10" addrtype="ipv4"/><ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/></port></ports></host>
<host endtime="1796464801"><address addr="192.0.2.10" addrtype="ipv4"/><ports><port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/></port></ports></host>
<host endtime="1796464802"><address addr="192.0.2.10" addrtype="ipv4"/><ports><port protocol="tcp" portid="80"><state state="open" reason="response" reason_ttl="64"/><service name="title" banner="Welcome home"></service></port></ports></host>
<host endtime="1796464803"><address addr="192.0.2.11" addrtype="ipv4"/><ports><port protocol="udp" portid="53"><state state="open" reason="udp-response" reason_ttl="64"/></port></ports></host>
<runstats>
<finished time="1796464810" timestr="2026-12-05 10:00:10" elapsed="10" />
<hosts up="4" down="0" total="4" />
</runstats>
</nmaprun>
"""


CSV = """\ufeffIP Address,DNS Name,MAC Address,Operating System,Ports,UDP,Tags,Comments,Owner,Rack
192.0.2.10,web.example.test,00-1A-2B-3C-4D-5E,Ubuntu 22.04,"22, 80/tcp, 443",53,"web; prod",Front web server,Alice,R1
192.0.2.11 2001:db8::11,db.example.test,,Debian 12,5432 8000-8002,,db,,Bob,
,printer.example.test,,,9100,,,,,
"""
