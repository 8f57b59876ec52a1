"""Real `nmap -sT -sV -oX` output of services on loopback (SPEC §14: 127/8 only), imported as
a user imports it: host by host and port by port it says what nmap itself says."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from libnmap.parser import NmapParser

from tests.acceptance.conftest import ConsoleProcess
from tests.acceptance.test_worker_imports import surveyor
from tests.support.imported import convert, hosts, ports
from tests.support.scan_services import LoopbackServices, loopback_services, make_certificate

#: nmap's probes drop TLS connections mid-handshake; the sockets the server's threads had
#: not finished with are collected, and only those, without a warning.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)

WEB = "127.79.0.2"
SECURE = "127.79.0.3"
SSH_BANNER = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4\r\n"
NMAP_SECONDS = 240


@pytest.fixture(scope="module")
def nmap_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """nmap's XML of two loopback hosts: SSH and HTTP on one, HTTPS and a closed port on the
    other; and what was listening."""
    nmap = shutil.which("nmap")
    assert nmap is not None, "nmap is not installed (scripts/install-system-deps installs it)"
    folder = tmp_path_factory.mktemp("nmap")
    certificate = make_certificate(folder, "secure.lab.example", SECURE)
    site = folder / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><head><title>Imported from nmap</title></head></html>")
    with (
        loopback_services() as services,
        _python_http_server(site, WEB) as http_port,
        _python_http_server(site, SECURE, certificate) as https_port,
    ):
        listening = _listen(services)
        listening[WEB]["http"] = http_port
        listening[SECURE]["https"] = https_port
        out = folder / "scan.xml"
        ports = sorted({p for per_host in listening.values() for p in per_host.values()})
        subprocess.run(
            [
                nmap, "-sT", "-sV", "-Pn", "-n", "--version-light",
                "--script", "ssl-cert,http-title,http-server-header",
                "-p", ",".join(map(str, ports)), "-oX", str(out), WEB, SECURE,
            ],
            check=True,
            capture_output=True,
            timeout=NMAP_SECONDS,
        )  # fmt: skip
    return out, {"listening": listening, "certificate": certificate}


class _Server(ThreadingHTTPServer):
    """Serves each connection in its thread, over TLS when `tls` is set; nmap's probes
    hang up mid-request all the time, which is no error here."""

    tls: ssl.SSLContext | None = None
    daemon_threads = True

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        with (
            self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False) as tls,
            contextlib.suppress(OSError),
        ):
            tls.do_handshake()
            super().finish_request(tls, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@contextlib.contextmanager
def _python_http_server(folder: Path, address: str, certificate: Any = None) -> Iterator[int]:
    """Python's own HTTP server (over TLS with `certificate`), which nmap knows by name
    (SimpleHTTPServer); it listens once made, so nmap finds it at once."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = _Server((address, 0), handler)
    if certificate is not None:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(certificate.cert_file, certificate.key_file)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _listen(services: LoopbackServices) -> dict[str, dict[str, int]]:
    return {
        WEB: {"ssh": services.banner(WEB, SSH_BANNER)},
        SECURE: {
            "closed": services.closed_port(SECURE),
        },
    }


def test_the_import_says_what_nmap_says_host_by_host_and_port_by_port(
    nmap_scan: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = nmap_scan
    report = NmapParser.parse_fromfile(str(path))
    records = convert(path.read_bytes(), tmp_path)
    imported = hosts(records)
    nmap_hosts = {h.address: h for h in report.hosts if h.is_up()}
    assert set(imported) == set(nmap_hosts) == {WEB, SECURE}
    for address, nmap_host in nmap_hosts.items():
        record = imported[address]
        assert record["source"] == "import:nmap"
        assert record["hostnames"] == list(nmap_host.hostnames)
        found = ports(record)
        assert set(found) == {(s.protocol, s.port) for s in nmap_host.services}
        for service in nmap_host.services:
            mine = found[(service.protocol, service.port)]
            assert mine["state"] == service.state
            assert mine.get("service", "") == service.service
            details = service.service_dict
            assert mine.get("product", "") == details.get("product", "")
            assert mine.get("version", "") == details.get("version", "")
            assert mine.get("extrainfo", "") == details.get("extrainfo", "")
            assert mine.get("tunnel", "") == service.tunnel
            assert mine.get("cpe", []) == [c.cpestring for c in service.cpelist]
    assert records[-1]["hosts"] == 2


def test_scripts_and_services_of_the_real_listeners_are_imported(
    nmap_scan: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, facts = nmap_scan
    listening, certificate = facts["listening"], facts["certificate"]
    found = hosts(convert(path.read_bytes(), tmp_path))
    web = ports(found[WEB])
    ssh = web[("tcp", listening[WEB]["ssh"])]
    assert ssh["state"] == "open"
    assert ssh["service"] == "ssh"
    assert ssh["product"] == "OpenSSH"
    assert ssh["version"] == "8.9p1 Ubuntu 3ubuntu0.4"
    http = web[("tcp", listening[WEB]["http"])]
    assert http["product"] == "SimpleHTTPServer"
    assert http["http"]["title"] == "Imported from nmap"
    assert http["http"]["server"].startswith("SimpleHTTP/")
    https = ports(found[SECURE])[("tcp", listening[SECURE]["https"])]
    assert https["tls"]["subject"] == certificate.subject
    assert https["tls"]["sha256"] == certificate.sha256
    assert https["tls"]["not_after"] == certificate.not_after
    assert https["tunnel"] == "ssl"
    assert https["http"]["title"] == "Imported from nmap"
    closed = ports(found[SECURE])[("tcp", listening[SECURE]["closed"])]
    assert closed["state"] == "closed"


def test_surveyor_import_takes_the_nmap_file_and_its_assets_show_the_products(
    nmap_scan: tuple[Path, dict[str, Any]], console_process: ConsoleProcess, tmp_path: Path
) -> None:
    path, facts = nmap_scan
    (tmp_path / "config").mkdir()
    imported = surveyor(console_process, tmp_path, "import", str(path), "--wait")
    assert imported.returncode == 0, imported.stderr
    assert "2 new" in imported.stdout
    listed = surveyor(console_process, tmp_path, "asset", "list", "--json")
    items = {item["address"]: item for item in json.loads(listed.stdout)}
    shown = surveyor(console_process, tmp_path, "asset", "show", str(items[WEB]["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "OpenSSH" in shown.stdout
    assert f"{facts['listening'][WEB]['ssh']}/tcp" in shown.stdout


def test_surveyor_import_refuses_a_broken_nmap_file_naming_the_line(
    nmap_scan: tuple[Path, dict[str, Any]], console_process: ConsoleProcess, tmp_path: Path
) -> None:
    path, _ = nmap_scan
    (tmp_path / "config").mkdir()
    broken = tmp_path / "broken.xml"
    lines = path.read_text().splitlines(keepends=True)
    where = next(n for n, line in enumerate(lines) if "<ports>" in line)
    lines[where] = lines[where].replace("<ports>", "<ports><port>", 1)
    broken.write_text("".join(lines))
    refused = surveyor(console_process, tmp_path, "import", str(broken), "--format", "nmap")
    assert refused.returncode == 1
    assert "mismatched tag" in refused.stderr
    assert "Hint: fix line" in refused.stderr
