"""The `surveyor` group imports a command's module only when that command runs, and says the
same as a group built from every module."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from surveyor.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"
#: Every module `COMMANDS` names.
SUBCOMMAND_MODULES = {f"surveyor.cli.{lazy.module}" for lazy in main.COMMANDS.values()}


def _loaded_after(*argv: str) -> set[str]:
    """The modules a fresh `surveyor ARGV` process holds when it ends."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    env |= {"PYTHONPATH": str(SRC), "COLUMNS": "200"}
    program = (
        "import json, sys\n"
        f"sys.argv = ['surveyor', *{list(argv)!r}]\n"
        "from surveyor.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    assert stop.code in (0, None), stop.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    )
    *shown, loaded = done.stdout.splitlines()
    assert any("Usage: surveyor" in line for line in shown)
    return set(json.loads(loaded))


def test_the_help_imports_no_subcommand_module() -> None:
    loaded = _loaded_after("--help")

    assert "surveyor.cli.main" in loaded
    assert sorted(loaded & SUBCOMMAND_MODULES) == []
    # Nothing that talks HTTP, serves it or opens a database.
    unused = {
        "httpx2",
        "httpcore2",
        "http.client",
        "socket",
        "ssl",
        "surveyor.cli.client",
        "surveyor.cli.plain_http",
        "uvicorn",
        "fastapi",
        "starlette",
        "sqlalchemy",
        "sqlite3",
        "psycopg",
    }
    assert sorted(loaded & unused) == []
    assert not any(name.startswith(("surveyor.console", "surveyor.store")) for name in loaded)


def test_a_task_command_imports_only_the_task_commands() -> None:
    loaded = _loaded_after("task", "list", "--help")

    assert {"surveyor.cli.tasks", "surveyor.cli.exports"} <= loaded
    others = SUBCOMMAND_MODULES - {"surveyor.cli.tasks", "surveyor.cli.exports"}
    assert sorted(loaded & others) == []
    # Needed only when a command talks to the console, shows a task or follows one.
    assert sorted(loaded & {"httpx2", "surveyor.core.recurrence", "surveyor.core.kinds"}) == []
    assert "rich.progress" not in loaded


@pytest.mark.parametrize("name", list(main.COMMANDS))
def test_each_help_line_is_the_commands_own(name: str) -> None:
    command = main.COMMANDS[name].load(name)

    own = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
    assert command.name == name
    assert main.COMMANDS[name].help == own.strip()


def _eager() -> typer.Typer:
    """The group as it was built before it was lazy: every command added up front."""
    app = typer.Typer(
        name="surveyor",
        help="Surveyor: network asset discovery console.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(main._root)
    for name, lazy in main.COMMANDS.items():
        target = getattr(__import__(f"surveyor.cli.{lazy.module}", fromlist=["_"]), lazy.attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["task", "--help"],
        ["task", "list", "--help"],
        ["task", "changes", "--help"],
        ["asset", "--help"],
        ["asset", "export", "--help"],
        ["audit", "--help"],
        ["doctor", "--help"],
        ["tsk", "list"],
        ["task", "nosuch"],
        ["task", "list", "--limit", "0"],
    ],
)
def test_it_says_what_the_eager_group_says(argv: list[str]) -> None:
    runner = CliRunner()
    lazy = runner.invoke(main.app, argv, env={"COLUMNS": "100"})
    eager = runner.invoke(_eager(), argv, env={"COLUMNS": "100"})

    assert lazy.exit_code == eager.exit_code
    assert lazy.output == eager.output
    assert "Usage: surveyor" in lazy.output


def test_every_names_the_simple_frequencies() -> None:
    from surveyor.cli.tasks import EVERY
    from surveyor.core.recurrence import Frequency

    assert [f.value for f in Frequency if f not in (Frequency.RRULE, Frequency.CRON)] == EVERY


def test_the_help_imports_neither_pydantic_nor_the_parts_of_rich_it_does_not_use() -> None:
    loaded = _loaded_after("--help")

    assert "typer.rich_utils" in loaded
    unused = {"pydantic", "rich.markdown", "rich.traceback", "rich.syntax", "markdown_it"}
    assert sorted(loaded & unused) == []
    assert not any(name.startswith("pygments") for name in loaded)


def _help_of(*argv: str, first: str) -> str:
    """`surveyor ARGV`'s help (or usage error) from a fresh process that ran `first` before."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    env |= {"PYTHONPATH": str(SRC), "COLUMNS": "120", "FORCE_COLOR": "1"}
    program = (
        f"{first}\nimport sys\nsys.argv = ['surveyor', *{list(argv)!r}]\n"
        "from surveyor.cli.entry import main\nmain()\n"
    )
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(
    "argv", [["--help"], ["task", "list", "--help"], ["task", "list", "--limit", "x"], ["tsk"]]
)
def test_the_help_says_the_same_with_the_real_markdown_and_traceback(argv: list[str]) -> None:
    with_stand_ins = _help_of(*argv, first="pass")
    with_real = _help_of(*argv, first="import rich.markdown, rich.traceback")

    assert "Usage: " in with_stand_ins
    assert with_stand_ins == with_real


def test_a_stand_in_is_the_real_class_when_used() -> None:
    program = (
        "import sys\n"
        "import surveyor.cli.main\n"
        "import typer.rich_utils as formatter\n"
        "assert 'rich.markdown' not in sys.modules and 'rich.traceback' not in sys.modules\n"
        "shown = formatter.Markdown('*some* text')\n"
        "import rich.markdown\n"
        "assert type(shown) is rich.markdown.Markdown, type(shown)\n"
        "assert isinstance(shown, formatter.Markdown)\n"
        "assert sys.modules['rich.markdown'].Markdown is rich.markdown.Markdown\n"
        "try:\n"
        "    raise ValueError('x')\n"
        "except ValueError as error:\n"
        "    trace = formatter.Traceback.from_exception(ValueError, error, error.__traceback__)\n"
        "import rich.traceback\n"
        "assert type(trace) is rich.traceback.Traceback, type(trace)\n"
        "print('ok')\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("SURVEYOR_")}
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env | {"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
    )

    assert done.stdout == "ok\n", done.stderr
