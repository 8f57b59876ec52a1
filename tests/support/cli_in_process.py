"""`surveyor ARGS` run inside the test's own process, answering as the executable would.

A fresh `surveyor` process spends most of its time starting Python and importing; the command
itself is a request or two to the console. Run here, the command sees exactly the environment
it is given (nothing else of the test process's), reads `stdin` as its standard input, and
writes its standard output and error apart; it answers with the exit code, output and errors
a process would have had, as a `subprocess.CompletedProcess`. An exception the command lets
escape (which a process would print as a traceback) is raised in the test.

What only a process shows (a terminal, signals, `sys.argv`, the `surveyor` script itself) is
tested with real processes; `test_cli.py` also checks that both ways answer alike.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping

from typer.testing import CliRunner

from surveyor.cli import render
from surveyor.cli.main import app


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """`os.environ` is `env` inside (and the time zone is TZ's), as it was after."""
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)
        time.tzset()


def run_surveyor(
    args: tuple[str, ...] | list[str], env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`surveyor *args` with the environment `env` only, and `stdin` (none when None)."""
    with _environment(env):
        # Rich's consoles read COLUMNS, NO_COLOR and the like when made.
        render.renew_consoles()
        try:
            result = CliRunner().invoke(
                app, list(args), input=stdin or "", catch_exceptions=False, prog_name="surveyor"
            )
        finally:
            render.renew_consoles()
    return subprocess.CompletedProcess(
        ["surveyor", *args], result.exit_code, result.stdout, result.stderr
    )
