"""A private OpenLDAP server for tests and benchmarks, loaded with Active Directory computers.

`private_slapd()` starts Debian's /usr/sbin/slapd on 127.0.0.2 and two free high ports (one
for plain LDAP and StartTLS, one for LDAPS), with its own slapd.conf, schema, certificates and
mdb databases in a temporary directory, and removes all of it afterwards. The entries are
loaded with `slapadd` before the server starts, so 100,000 computers take seconds, not minutes.

The tree it serves:
- `dc=lab`: the service account `cn=svc,dc=lab` (the only entry that may read), and the
  computers, spread over several OUs (`ou=Servers`, `ou=Workstations`, `ou=Paris,ou=Workstations`).
- `dc=elsewhere`: `ou=loop,dc=elsewhere`, a referral to itself, for the referral-loop fault.

AD's `computer` class and its attributes are not in OpenLDAP's schemas: `AD_SCHEMA` declares
them with AD's own OIDs.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.testing.servers import free_tcp_port, stop_process, write_certificate

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
HOST = "127.0.0.2"
BASE_DN = "dc=lab"
BIND_DN = "cn=svc,dc=lab"
LOOP_DN = "ou=loop,dc=elsewhere"
#: The OUs computers are spread over, in turn.
COMPUTER_OUS = ("ou=Servers", "ou=Workstations", "ou=Paris,ou=Workstations")
#: Windows FILETIME (100 ns ticks since 1601-01-01 UTC) of the Unix epoch.
FILETIME_UNIX_EPOCH = 116444736000000000

AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.619 NAME 'dNSHostName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.363 NAME 'operatingSystem'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.365 NAME 'operatingSystemVersion'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.1696 NAME 'lastLogonTimestamp'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.3.30 NAME 'computer' SUP top STRUCTURAL
  MUST cn
  MAY ( dNSHostName $ operatingSystem $ operatingSystemVersion $ lastLogonTimestamp $
        description ) )
"""


class SlapdUnavailable(RuntimeError):
    """Raised, never skipped: a test run without slapd must fail loudly."""


@dataclass(frozen=True, slots=True)
class LabComputer:
    """One computer object, as loaded: the ground truth a connector's records are checked on."""

    name: str  # cn, the NetBIOS name
    ou: str  # e.g. "ou=Paris,ou=Workstations"
    dns_host_name: str | None
    operating_system: str | None
    operating_system_version: str | None
    last_logon: dt.datetime | None
    description: str | None

    @property
    def dn(self) -> str:
        return f"cn={self.name},{self.ou},{BASE_DN}"


def generate_computers(count: int, domain: str = "lab.test") -> Iterator[LabComputer]:
    """`count` computers over the OUs of `COMPUTER_OUS`, the same for the same count. Every
    tenth has no description and every 50th no lastLogonTimestamp, as in a real directory."""
    systems = (
        ("Windows Server 2022 Standard", "10.0 (20348)"),
        ("Windows 11 Enterprise", "10.0 (22631)"),
        ("Windows 10 Pro", "10.0 (19045)"),
    )
    epoch = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for index in range(count):
        name = f"HOST{index:06d}"
        system, version = systems[index % len(systems)]
        yield LabComputer(
            name=name,
            ou=COMPUTER_OUS[index % len(COMPUTER_OUS)],
            dns_host_name=f"{name.lower()}.{domain}",
            operating_system=system,
            operating_system_version=version,
            last_logon=None if index % 50 == 49 else epoch + dt.timedelta(minutes=index),
            description=None if index % 10 == 9 else f"desk {index} of the lab",
        )


def filetime(moment: dt.datetime) -> int:
    """The Windows FILETIME AD stores in lastLogonTimestamp."""
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return FILETIME_UNIX_EPOCH + ticks


def _ldif_value(attribute: str, value: str) -> str:
    if value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<")):
        return f"{attribute}: {value}\n"
    return f"{attribute}:: {base64.b64encode(value.encode()).decode()}\n"


def computer_ldif(computer: LabComputer) -> str:
    """The LDIF record of one computer."""
    text = f"dn: {computer.dn}\nobjectClass: computer\ncn: {computer.name}\n"
    if computer.dns_host_name is not None:
        text += _ldif_value("dNSHostName", computer.dns_host_name)
    if computer.operating_system is not None:
        text += _ldif_value("operatingSystem", computer.operating_system)
    if computer.operating_system_version is not None:
        text += _ldif_value("operatingSystemVersion", computer.operating_system_version)
    if computer.last_logon is not None:
        text += f"lastLogonTimestamp: {filetime(computer.last_logon)}\n"
    if computer.description is not None:
        text += _ldif_value("description", computer.description)
    return text + "\n"


@dataclass(frozen=True, slots=True)
class SlapdServer:
    """A running private slapd: where it listens, and how to bind to it."""

    host: str
    port: int  # plain LDAP, and StartTLS
    ldaps_port: int
    base_dn: str
    bind_dn: str
    password: str
    admin_dn: str
    admin_password: str
    ca_file: Path  # the CA that signed the server's certificate
    other_ca_file: Path  # a CA that did not: verification against it fails
    loop_dn: str
    directory: Path

    @property
    def server(self) -> str:
        """`host:port` of plain LDAP, as a connector's `server` option takes it."""
        return f"{self.host}:{self.port}"

    @property
    def ldaps_server(self) -> str:
        return f"{self.host}:{self.ldaps_port}"

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"


class _CertificateAuthority:
    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = SYSTEM_CLOCK.now()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def write(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue_server(self, host: str, cert_file: Path, key_file: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = SYSTEM_CLOCK.now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ldap.lab.test")]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("ldap.lab.test"), x509.IPAddress(ipaddress.ip_address(host))]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        write_certificate(certificate, key, cert_file, key_file)


def _config(root: Path, admin_password: str) -> str:
    return f"""\
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {root}/ad-computer.schema
modulepath {MODULE_DIR}
moduleload back_mdb
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
loglevel none
sizelimit unlimited
TLSCACertificateFile {root}/ca.crt
TLSCertificateFile {root}/server.crt
TLSCertificateKeyFile {root}/server.key

database mdb
suffix "{BASE_DN}"
rootdn "cn=admin,{BASE_DN}"
rootpw {admin_password}
directory {root}/lab-db
maxsize 4294967296
dbnosync
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{BIND_DN}" read by * none

database mdb
suffix "dc=elsewhere"
rootdn "cn=admin,dc=elsewhere"
rootpw {admin_password}
directory {root}/elsewhere-db
maxsize 104857600
access to * by dn.exact="{BIND_DN}" read by * none
"""


def _lab_ldif(path: Path, password: str, computers: Iterable[LabComputer]) -> None:
    with path.open("w") as out:
        out.write(f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\n")
        out.write("dc: lab\no: Surveyor Lab\n\n")
        out.write(f"dn: {BIND_DN}\nobjectClass: organizationalRole\n")
        out.write("objectClass: simpleSecurityObject\ncn: svc\n")
        out.write(_ldif_value("userPassword", password) + "\n")
        for ou in ("ou=Servers", "ou=Workstations", "ou=Paris,ou=Workstations"):
            name = ou.split(",")[0].removeprefix("ou=")
            out.write(f"dn: {ou},{BASE_DN}\nobjectClass: organizationalUnit\nou: {name}\n\n")
        for computer in computers:
            out.write(computer_ldif(computer))


def _elsewhere_ldif(path: Path, port: int) -> None:
    path.write_text(
        "dn: dc=elsewhere\nobjectClass: dcObject\nobjectClass: organization\n"
        "dc: elsewhere\no: Elsewhere\n\n"
        f"dn: {LOOP_DN}\nobjectClass: referral\nobjectClass: extensibleObject\nou: loop\n"
        f"ref: ldap://{HOST}:{port}/{LOOP_DN}\n\n"
    )


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SlapdUnavailable(f"{' '.join(args[:2])} failed: {done.stderr.strip()}")


def _wait_listening(process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text(errors="replace").strip()[-2000:]
            raise SlapdUnavailable(f"slapd exited with status {process.returncode}: {said}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise SlapdUnavailable(f"slapd did not listen on {host}:{port} within 30 s")


@contextlib.contextmanager
def private_slapd(
    computers: Iterable[LabComputer] = (), *, password: str | None = None
) -> Iterator[SlapdServer]:
    """Start a slapd serving `computers`; stop it and remove its files afterwards. The
    password of `cn=svc,dc=lab` is new for each server unless given: tests grep for it."""
    password = password or f"svc-{os.urandom(9).hex()}"
    for binary in (SLAPD, SLAPADD):
        if not binary.exists():
            raise SlapdUnavailable(
                f"{binary} not found; `make test` installs it (Debian package slapd)"
            )
    root = Path(tempfile.mkdtemp(prefix="surveyor-slapd-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        admin_password = base64.b32encode(os.urandom(15)).decode()
        (root / "ad-computer.schema").write_text(AD_SCHEMA)
        (root / "lab-db").mkdir()
        (root / "elsewhere-db").mkdir()
        authority = _CertificateAuthority("Surveyor Lab LDAP CA")
        authority.write(root / "ca.crt")
        authority.issue_server(HOST, root / "server.crt", root / "server.key")
        other = _CertificateAuthority("Surveyor Other CA")
        other.write(root / "other-ca.crt")
        config = root / "slapd.conf"
        config.write_text(_config(root, admin_password))
        port, ldaps_port = free_tcp_port(HOST), free_tcp_port(HOST)
        _lab_ldif(root / "lab.ldif", password, computers)
        _elsewhere_ldif(root / "elsewhere.ldif", port)
        for suffix, ldif in ((BASE_DN, "lab.ldif"), ("dc=elsewhere", "elsewhere.ldif")):
            _run([str(SLAPADD), "-q", "-f", str(config), "-b", suffix, "-l", str(root / ldif)])
            (root / ldif).unlink()
        urls = f"ldap://{HOST}:{port}/ ldaps://{HOST}:{ldaps_port}/"
        log = root / "slapd.log"
        with log.open("wb") as log_file:  # -d 0: in the foreground, and only errors said
            process = subprocess.Popen(
                [str(SLAPD), "-d", "0", "-f", str(config), "-h", urls],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        _wait_listening(process, HOST, port, log)
        _wait_listening(process, HOST, ldaps_port, log)
        yield SlapdServer(
            host=HOST,
            port=port,
            ldaps_port=ldaps_port,
            base_dn=BASE_DN,
            bind_dn=BIND_DN,
            password=password,
            admin_dn=f"cn=admin,{BASE_DN}",
            admin_password=admin_password,
            ca_file=root / "ca.crt",
            other_ca_file=root / "other-ca.crt",
            loop_dn=LOOP_DN,
            directory=root,
        )
    finally:
        stop_process(process)
        shutil.rmtree(root, ignore_errors=True)
