"""The console process settles its heap before serving (`cli/server.py: settle_heap`): what
importing the app made is frozen out of the collector's walks, and the oldest generation
is collected far less often than by default, so few whole-heap walks go over the held
polls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from surveyor.cli.server import GC_THRESHOLDS

PROBE = """
import gc, json
from surveyor.cli.server import settle_heap
from surveyor.console.app import create_app
before = {"frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}
settle_heap()
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "thresholds": gc.get_threshold(),
    "tracked_young": len(gc.get_objects(0)) + len(gc.get_objects(1)),
}))
"""


def test_a_console_process_freezes_what_it_was_built_with_and_collects_the_oldest_rarely() -> None:
    answer = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
    )
    seen = json.loads(answer.stdout)
    assert seen["before"]["frozen"] == 0
    assert tuple(seen["before"]["thresholds"]) != GC_THRESHOLDS
    # importing the console and its app is far more than 100,000 objects, all frozen now
    assert seen["frozen"] > 100_000
    assert seen["tracked_young"] < 1_000
    assert tuple(seen["thresholds"]) == GC_THRESHOLDS
    assert GC_THRESHOLDS[2] >= 1_000  # CPython's default for the oldest generation: 10
