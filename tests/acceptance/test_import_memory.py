"""An import's memory does not grow with its file: a big nmap file is read, converted and
checked (all an import does before its task exists) in a child process whose peak RSS is
the same as for a small one. `bench/imports.py --memory-gb 1` does the same at 1 GB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from surveyor.testing.nmapxml import hosts_for_size, write_scan_file

#: What the whole import of a 1 GB file may use (issue 13); a test file stays far below.
MAX_RSS_BYTES = 200 << 20
#: How much more a file ten times bigger may cost (buffers that fill up, not data kept).
MAX_GROWTH_BYTES = 24 << 20

CHILD = """
import json, sys
from pathlib import Path
from surveyor.core.jsonl_limits import DEFAULT_LIMITS
from surveyor.service.imports import check_file

checked = check_file(Path(sys.argv[1]), named_format=None, limits=DEFAULT_LIMITS)
checked.path.unlink()
# VmHWM is this program's peak alone: ru_maxrss would keep the peak of the forked parent
# from before exec (getrusage(2)), which a test process of many tests makes large.
status = Path("/proc/self/status").read_text()
peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"hosts": checked.hosts, "format": checked.format, "peak": peak}))
"""


def _import_in_child(path: Path) -> dict[str, int]:
    source = str(Path(__file__).resolve().parents[2] / "src")
    env = os.environ | {"PYTHONPATH": source}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=600,
    )
    found: dict[str, int] = json.loads(done.stdout)
    return found


def test_a_ten_times_bigger_nmap_file_imports_in_the_same_memory(tmp_path: Path) -> None:
    small, big = tmp_path / "small.xml", tmp_path / "big.xml"
    small_hosts = hosts_for_size(8 << 20)
    write_scan_file(small, small_hosts)
    write_scan_file(big, small_hosts * 10)
    assert big.stat().st_size > 75 << 20

    small_run = _import_in_child(small)
    big_run = _import_in_child(big)

    assert small_run["hosts"] == small_hosts
    assert big_run["hosts"] == small_hosts * 10
    assert big_run["peak"] < MAX_RSS_BYTES, big_run
    assert big_run["peak"] - small_run["peak"] < MAX_GROWTH_BYTES, (small_run, big_run)
