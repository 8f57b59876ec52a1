"""The `surveyor` executable: `surveyor --version` answers without loading the commands
(nor the server, the HTTP client or SQLAlchemy); everything else is `cli/main.py`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from surveyor.cli.version import print_version

        print_version()
        return
    from surveyor.cli.main import main as run

    run()
