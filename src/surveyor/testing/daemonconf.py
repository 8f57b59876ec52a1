"""The configuration of each real server of the daemon lab, written into its host's folder.

Each server runs with a configuration of its own (never the machine's `/etc` one), keeps its
data, logs, pid and sockets in its host's folder, runs in the foreground and listens on the
lab host's standard ports. Settings that decide what a client sees follow Debian's shipped
defaults (Apache's `ServerTokens OS`, nginx's `server_tokens on`, the greetings), so the lab
answers as a freshly installed Debian server does. Logins are impossible: no users, no
passwords, no anonymous access.
"""

from __future__ import annotations

import os
import pwd
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from surveyor.testing.daemonplan import (
    APACHE,
    BIND,
    DOVECOT,
    EXIM,
    LIGHTTPD,
    MARIADB,
    NGINX,
    OPENSSH,
    POSTGRESQL,
    REDIS,
    SAMBA,
    SNMPD,
    VSFTPD,
    Daemon,
)
from surveyor.testing.daemonrun import Command
from surveyor.testing.labplan import LAB_SUBNET

PG_BIN = Path("/usr/lib/postgresql/15/bin")
APACHE_MODULES = Path("/usr/lib/apache2/modules")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The certificate (with its chain, when it has one) and key a TLS server presents."""

    chain_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class HostFolder:
    """Where one host's servers keep everything, what the host is called, and its address
    (inside the lab's namespace)."""

    root: Path
    name: str
    address: IPv4Address
    tls: TlsFiles | None = None

    def folder(self, name: str, owner: str | None = None, mode: int = 0o755) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    def write(self, name: str, text: str, mode: int = 0o644) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def page(self, title: str) -> Path:
        """A document root holding one small page."""
        www = self.folder("www")
        (www / "index.html").write_text(
            f"<!doctype html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1></body></html>\n"
        )
        (www / "index.html").chmod(0o644)
        return www

    def need_tls(self) -> TlsFiles:
        if self.tls is None:
            raise ValueError(f"{self.name}: this server needs a certificate")
        return self.tls


@dataclass(frozen=True, slots=True)
class DaemonSetup:
    prepare: tuple[Command, ...]
    servers: tuple[Command, ...]


def _openssh(host: HostFolder) -> DaemonSetup:
    folder = host.folder("ssh")
    key = folder / "ssh_host_ed25519_key"
    config = host.write(
        "ssh/sshd_config",
        f"Port 22\nListenAddress 0.0.0.0\nHostKey {key}\nPidFile {folder}/sshd.pid\n"
        "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin no\nAuthorizedKeysFile none\nMaxStartups 100:30:200\n",
    )
    # sshd's privilege separation directory; the Debian service creates it at start
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    keygen = Command("ssh-keygen", ("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)))
    server = Command("sshd", ("/usr/sbin/sshd", "-D", "-e", "-f", str(config)))
    return DaemonSetup((keygen,), (server,))


def _nginx(host: HostFolder) -> DaemonSetup:
    tls = host.need_tls()
    folder = host.folder("nginx")
    www = host.page(f"{host.name} nginx")
    temp = {name: host.folder(f"nginx/{name}", owner="www-data") for name in ("body", "proxy")}
    config = host.write(
        "nginx/nginx.conf",
        f"user www-data;\nworker_processes 1;\ndaemon off;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log;\nevents {{ worker_connections 512; }}\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['proxy']};\n  uwsgi_temp_path {temp['proxy']};\n"
        f"  scgi_temp_path {temp['proxy']};\n"
        f"  server {{ listen 80; root {www}; index index.html; }}\n"
        f"  server {{ listen 443 ssl; root {www}; index index.html;\n"
        f"    ssl_certificate {tls.chain_file}; ssl_certificate_key {tls.key_file}; }}\n"
        "}\n",
    )
    server = Command(
        "nginx", ("/usr/sbin/nginx", "-e", "stderr", "-p", str(folder), "-c", str(config))
    )
    return DaemonSetup((), (server,))


def _apache(host: HostFolder) -> DaemonSetup:
    tls = host.need_tls()
    folder = host.folder("apache")
    www = host.page(f"{host.name} Apache")
    modules = "".join(
        f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n"
        for name in ("mpm_event", "authz_core", "mime", "dir", "socache_shmcb", "ssl")
    )
    config = host.write(
        "apache/apache2.conf",
        f"ServerRoot {folder}\nDefaultRuntimeDir {folder}\nPidFile {folder}/apache2.pid\n"
        f"{modules}"
        f"User www-data\nGroup www-data\nServerName {host.name}.lab\n"
        # as Debian's conf-enabled/security.conf has it
        "ServerTokens OS\nServerSignature On\n"
        f"ErrorLog {folder}/error.log\nTypesConfig /etc/mime.types\n"
        f"DocumentRoot {www}\nDirectoryIndex index.html\n"
        f"<Directory {www}>\n  Require all granted\n</Directory>\n"
        "Listen 80\nListen 443\n"
        "<VirtualHost *:443>\n  SSLEngine on\n"
        f"  SSLCertificateFile {tls.chain_file}\n  SSLCertificateKeyFile {tls.key_file}\n"
        "</VirtualHost>\n",
    )
    server = Command("apache2", ("/usr/sbin/apache2", "-f", str(config), "-DFOREGROUND"))
    return DaemonSetup((), (server,))


def _lighttpd(host: HostFolder) -> DaemonSetup:
    folder = host.folder("lighttpd", owner="www-data")
    www = host.page(f"{host.name} lighttpd")
    config = host.write(
        "lighttpd/lighttpd.conf",
        f'server.document-root = "{www}"\nserver.port = 80\nserver.bind = "0.0.0.0"\n'
        'server.username = "www-data"\nserver.groupname = "www-data"\n'
        f'server.pid-file = "{folder}/lighttpd.pid"\nserver.errorlog = "{folder}/error.log"\n'
        'index-file.names = ( "index.html" )\n'
        'mimetype.assign = ( ".html" => "text/html" )\n',
    )
    server = Command("lighttpd", ("/usr/sbin/lighttpd", "-D", "-f", str(config)))
    return DaemonSetup((), (server,))


def _exim(host: HostFolder) -> DaemonSetup:
    folder = host.folder("exim", owner="Debian-exim", mode=0o750)
    config = host.write(
        "exim.conf",
        f"primary_hostname = {host.name}.lab\ndaemon_smtp_ports = 25\n"
        f"spool_directory = {folder}\nlog_file_path = {folder}/%slog\n"
        f"pid_file_path = {folder}/exim.pid\n"
        "exim_user = Debian-exim\nexim_group = Debian-exim\nnever_users = root\n"
        "acl_smtp_rcpt = refuse\n"
        "begin acl\nrefuse:\n  deny message = relay not permitted\n"
        "begin routers\nbegin transports\n",
    )
    server = Command("exim4", ("/usr/sbin/exim4", "-C", str(config), "-bdf", "-q30m"))
    return DaemonSetup((), (server,))


def _dovecot(host: HostFolder) -> DaemonSetup:
    folder = host.folder("dovecot")
    users = host.write("dovecot/users", "")
    config = host.write(
        "dovecot/dovecot.conf",
        f"base_dir = {host.folder('dovecot/run')}\nstate_dir = {host.folder('dovecot/state')}\n"
        f"log_path = {folder}/dovecot.log\nprotocols = imap pop3\nlisten = *\nssl = no\n"
        f"mail_location = maildir:{folder}/mail/%u\n"
        f"passdb {{\n  driver = passwd-file\n  args = {users}\n}}\n"
        f"userdb {{\n  driver = passwd-file\n  args = {users}\n}}\n"
        "service imap-login {\n  inet_listener imap {\n    port = 143\n  }\n"
        "  inet_listener imaps {\n    port = 0\n  }\n}\n"
        "service pop3-login {\n  inet_listener pop3 {\n    port = 110\n  }\n"
        "  inet_listener pop3s {\n    port = 0\n  }\n}\n",
    )
    server = Command("dovecot", ("/usr/sbin/dovecot", "-F", "-c", str(config)))
    return DaemonSetup((), (server,))


def _vsftpd(host: HostFolder) -> DaemonSetup:
    folder = host.folder("vsftpd")
    empty = host.folder("vsftpd/empty", mode=0o555)
    config = host.write(
        "vsftpd/vsftpd.conf",
        "listen=YES\nlisten_ipv6=NO\nlisten_port=21\nbackground=NO\n"
        # as Debian's /etc/vsftpd.conf has it: system users only, no anonymous access
        "anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=NO\n"
        f"secure_chroot_dir={empty}\npam_service_name=vsftpd\n"
        f"xferlog_enable=NO\nvsftpd_log_file={folder}/vsftpd.log\n",
        mode=0o600,
    )
    server = Command("vsftpd", ("/usr/sbin/vsftpd", str(config)))
    return DaemonSetup((), (server,))


def _mariadb(host: HostFolder) -> DaemonSetup:
    folder = host.folder("mariadb", owner="mysql")
    data = folder / "data"
    # small InnoDB files (the default redo log is 96 MB): the first start is then quick
    common = (
        f"--datadir={data}",
        "--user=mysql",
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=4M",
    )
    install = Command(
        "mariadb-install-db",
        (
            "/usr/bin/mariadb-install-db",
            "--no-defaults",
            *common,
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ),
    )
    # a server others connect to has an account for them; nobody knows its password
    init = host.write(
        "mariadb/init.sql",
        f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{secrets.token_hex(16)}';\n",
        mode=0o644,
    )
    server = Command(
        "mariadbd",
        (
            "/usr/sbin/mariadbd",
            "--no-defaults",
            *common,
            "--port=3306",
            "--bind-address=0.0.0.0",
            f"--socket={folder}/mysqld.sock",
            f"--pid-file={folder}/mysqld.pid",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--performance-schema=OFF",
            f"--init-file={init}",
        ),
    )
    return DaemonSetup((install,), (server,))


def _postgresql(host: HostFolder) -> DaemonSetup:
    folder = host.folder("postgresql", owner="postgres", mode=0o700)
    data = folder / "data"
    initdb = Command(
        "initdb",
        (str(PG_BIN / "initdb"), "-D", str(data), "-N", "-U", "postgres", "--auth=peer"),
        user="postgres",
        env={"LC_ALL": "C.UTF-8"},
    )
    server = Command(
        "postgres",
        (
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-k",
            str(folder),
            "-p",
            "5432",
            "-c",
            "listen_addresses=*",
            "-c",
            "shared_buffers=16MB",
            "-c",
            "fsync=off",
        ),
        user="postgres",
        env={"LC_ALL": "C.UTF-8"},
    )
    return DaemonSetup((initdb,), (server,))


def _redis(host: HostFolder) -> DaemonSetup:
    folder = host.folder("redis")
    config = host.write(
        "redis/redis.conf",
        f"port 6379\nbind 0.0.0.0\nprotected-mode yes\ndaemonize no\ndir {folder}\n"
        f'save ""\nappendonly no\nlogfile {folder}/redis.log\n'
        # a password nobody knows: nothing is readable without it
        f"requirepass {secrets.token_hex(16)}\n",
        mode=0o600,
    )
    server = Command("redis-server", ("/usr/bin/redis-server", str(config)))
    return DaemonSetup((), (server,))


def _samba(host: HostFolder) -> DaemonSetup:
    folder = host.folder("samba")
    dirs = {
        name: host.folder(f"samba/{name}")
        for name in ("private", "lock", "state", "cache", "run", "ncalrpc", "bind-dns", "share")
    }
    config = host.write(
        "samba/smb.conf",
        "[global]\n  workgroup = LAB\n  netbios name = SMB\n  server role = standalone server\n"
        "  map to guest = never\n  smb ports = 445 139\n"
        f"  private dir = {dirs['private']}\n  lock directory = {dirs['lock']}\n"
        f"  state directory = {dirs['state']}\n  cache directory = {dirs['cache']}\n"
        f"  pid directory = {dirs['run']}\n  ncalrpc dir = {dirs['ncalrpc']}\n"
        f"  binddns dir = {dirs['bind-dns']}\n  log file = {folder}/log.%m\n"
        "  load printers = no\n  printing = bsd\n  printcap name = /dev/null\n"
        "  disable spoolss = yes\n"
        f"[lab]\n  path = {dirs['share']}\n  read only = yes\n",
    )
    server = Command(
        "smbd",
        (
            "/usr/sbin/smbd",
            "--foreground",
            "--no-process-group",
            f"--configfile={config}",
            "--debug-stdout",
        ),
    )
    return DaemonSetup((), (server,))


def _bind(host: HostFolder) -> DaemonSetup:
    folder = host.folder("named", owner="bind", mode=0o750)
    zone = host.write(
        "named/lab.zone",
        "$TTL 300\n@ IN SOA ns.lab. admin.lab. 1 3600 600 86400 300\n@ IN NS ns.lab.\n"
        f"ns IN A {host.address}\n{host.name} IN A {host.address}\n",
    )
    config = host.write(
        "named/named.conf",
        f'options {{\n  directory "{folder}";\n  pid-file "{folder}/named.pid";\n'
        f'  session-keyfile "{folder}/session.key";\n  listen-on port 53 {{ any; }};\n'
        "  listen-on-v6 { none; };\n  recursion no;\n  allow-query { any; };\n};\n"
        "controls { };\n"
        f'zone "lab" {{ type primary; file "{zone}"; }};\n',
    )
    server = Command("named", ("/usr/sbin/named", "-f", "-u", "bind", "-c", str(config)))
    return DaemonSetup((), (server,))


def _snmpd(host: HostFolder) -> DaemonSetup:
    folder = host.folder("snmpd")
    config = host.write(
        "snmpd/snmpd.conf",
        f"agentAddress udp:161\nrocommunity {secrets.token_hex(8)} {LAB_SUBNET}\n"
        f"sysLocation Surveyor daemon lab\nsysContact admin@{host.name}.lab\n",
        mode=0o600,
    )
    server = Command(
        "snmpd",
        (
            "/usr/sbin/snmpd",
            "-f",
            "-Lo",
            "-C",
            "-c",
            str(config),
            "-p",
            f"{folder}/snmpd.pid",
            f"--persistentDir={host.folder('snmpd/persist')}",
            *["-M", str(folder), "-m", ""],  # no MIB files: nothing to load or warn about
        ),
    )
    return DaemonSetup((), (server,))


SETUPS: dict[str, Callable[[HostFolder], DaemonSetup]] = {
    OPENSSH.key: _openssh,
    NGINX.key: _nginx,
    APACHE.key: _apache,
    LIGHTTPD.key: _lighttpd,
    EXIM.key: _exim,
    DOVECOT.key: _dovecot,
    VSFTPD.key: _vsftpd,
    MARIADB.key: _mariadb,
    POSTGRESQL.key: _postgresql,
    REDIS.key: _redis,
    SAMBA.key: _samba,
    BIND.key: _bind,
    SNMPD.key: _snmpd,
}


def setup(daemon: Daemon, host: HostFolder) -> DaemonSetup:
    """Write `daemon`'s configuration into the host's folder; return how to prepare and run it."""
    return SETUPS[daemon.key](host)
