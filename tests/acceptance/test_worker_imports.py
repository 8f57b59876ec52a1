"""`surveyor import` and `surveyor asset` against a real console, whose in-process worker
merges what is imported (SQLite, as `surveyor up` and `surveyor console` run by default)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import ConsoleProcess, clean_environment
from tests.support.cli_in_process import run_surveyor


def surveyor(console: ConsoleProcess, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`surveyor *args` against the console, run in this process."""
    env = clean_environment() | {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "SURVEYOR_URL": console.url,
        "SURVEYOR_TOKEN": console.token,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return run_surveyor(args, env)


def scan_file(path: Path, hosts: list[dict[str, object]], *, compress: bool = True) -> Path:
    lines = [
        {"type": "config", "targets": "127.0.0.0/29", "excludes": "", "ports": "22,80,8470"},
        *hosts,
        {"type": "summary", "hosts": len(hosts), "finished_at": "2026-03-01T12:00:00Z"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(text) if compress else text)
    return path


def answer(address: str, *ports: int, name: str | None = None) -> dict[str, object]:
    return {
        "type": "host",
        "addresses": [address],
        "mac": None,
        "hostnames": [name] if name else [],
        "services": [
            {
                "port": port,
                "proto": "tcp",
                "state": "open",
                "banner": "SSH-2.0-OpenSSH_9.6p1 Debian-4" if port == 22 else None,
                "http": {"status": 200, "server": "nginx", "title": "Home"} if port == 80 else None,
            }
            for port in ports
        ],
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    return tmp_path


def test_an_imported_scan_is_processed_and_its_assets_are_listed_and_shown(
    console_process: ConsoleProcess, home: Path
) -> None:
    first = scan_file(
        home / "first.jsonl.gz",
        [answer("127.0.0.2", 22, 80, name="web.lab.example"), answer("127.0.0.3", 22)],
    )
    imported = surveyor(console_process, home, "import", str(first), "--site", "Primary", "--wait")
    assert imported.returncode == 0, imported.stderr
    assert "Imported first.jsonl.gz as task" in imported.stdout
    assert "2 new" in imported.stdout

    listed = surveyor(console_process, home, "asset", "list", "port:80")
    assert listed.returncode == 0, listed.stderr
    assert "127.0.0.2" in listed.stdout
    assert "web.lab.example" in listed.stdout
    assert "127.0.0.3" not in listed.stdout

    as_json = surveyor(console_process, home, "asset", "list", "--json")
    items = json.loads(as_json.stdout)
    web = next(item for item in items if item["address"] == "127.0.0.2")
    shown = surveyor(console_process, home, "asset", "show", str(web["id"]))
    assert shown.returncode == 0, shown.stderr
    for expected in ("web.lab.example", "Debian Linux", "80/tcp", "nginx", "HTTP 200 Home", "new"):
        assert expected in shown.stdout


def test_importing_again_after_a_service_stopped_shows_the_asset_changed(
    console_process: ConsoleProcess, home: Path
) -> None:
    before = scan_file(home / "before.jsonl", [answer("127.0.0.4", 22, 8470)], compress=False)
    assert (
        surveyor(console_process, home, "import", str(before), "--site", "1", "--wait").returncode
        == 0
    )
    again = surveyor(console_process, home, "import", str(before), "--site", "1", "--wait")
    assert "1 unchanged" in again.stdout
    after = scan_file(home / "after.jsonl", [answer("127.0.0.4", 8470)], compress=False)
    changed = surveyor(
        console_process, home, "import", str(after), "--site", "1", "--wait", "--json"
    )
    assert changed.returncode == 0, changed.stderr
    task = json.loads(changed.stdout)
    assert task["change_summary"]["changed"] == 1
    report = surveyor(console_process, home, "asset", "list", "address:=127.0.0.4", "--json")
    [asset] = json.loads(report.stdout)
    assert asset["ports"] == ["tcp/8470"]


def test_a_bad_file_is_refused_naming_its_line(console_process: ConsoleProcess, home: Path) -> None:
    bad = home / "bad.jsonl"
    bad.write_text('{"type": "config"}\n{"type": "host", "addresses": ["not-an-ip"]}\n')
    refused = surveyor(console_process, home, "import", str(bad), "--site", "Primary")
    assert refused.returncode == 1
    assert "line 2" in refused.stderr
    assert "not-an-ip" in refused.stderr
    assert "Hint: fix line 2" in refused.stderr


def test_the_inventory_a_task_data_file_and_a_change_report_download_from_the_cli(
    console_process: ConsoleProcess, home: Path
) -> None:
    first = scan_file(
        home / "export.jsonl.gz", [answer("127.0.0.6", 22, name="export.lab.example")]
    )
    imported = surveyor(console_process, home, "import", str(first), "--site", "Primary", "--wait")
    assert imported.returncode == 0, imported.stderr
    task_id = imported.stdout.split("as task ")[1].split()[0]

    exported = surveyor(
        console_process, home, "asset", "export", "--search", "port:22", "-o", str(home / "a.csv")
    )
    assert exported.returncode == 0, exported.stderr
    assert "bytes of CSV" in exported.stderr
    with (home / "a.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    mine = [row for row in rows if row["address"] == "127.0.0.6"]
    assert len(mine) == 1
    assert mine[0]["hostnames"] == "export.lab.example"
    assert all("tcp/22" in row["ports"] for row in rows)  # the search was kept

    jsonl = surveyor(
        console_process, home, "asset", "export", "--format", "jsonl", "-o", str(home / "a.jsonl")
    )
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(line) for line in (home / "a.jsonl").read_text().splitlines()]
    assert "127.0.0.6" in {line["address"] for line in lines}

    data = surveyor(console_process, home, "task", "data", task_id, "-o", str(home / "d.gz"))
    assert data.returncode == 0, data.stderr
    assert (home / "d.gz").read_bytes() == first.read_bytes()

    changes = surveyor(console_process, home, "task", "changes", task_id, "--format", "csv")
    assert changes.returncode == 0, changes.stderr
    report = list(csv.DictReader(io.StringIO(changes.stdout.lstrip("\ufeff"))))
    assert [(row["kind"], row["address"]) for row in report] == [("new", "127.0.0.6")]

    missing = surveyor(console_process, home, "task", "data", "999999", "-o", str(home / "x.gz"))
    assert missing.returncode != 0
    assert "999999" in missing.stderr
    assert not (home / "x.gz").exists()
    assert not list(home.glob(".x.gz.part"))
