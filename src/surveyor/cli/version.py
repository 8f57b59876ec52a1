"""`surveyor --version`: the package version, the schema revision this code expects, and
the revision of the configured database. Imports only the light store modules (no
SQLAlchemy, no server), creates nothing, and gives up on a database after a few seconds."""

from __future__ import annotations

import os
from collections.abc import Mapping

from surveyor import __version__
from surveyor.store.location import database_location
from surveyor.store.revision import Standing, expected_revision, read_revision, standing

_STANDING_WORDS = {
    Standing.EMPTY: "no schema yet (the console creates it when it starts)",
    Standing.CURRENT: "up to date",
    Standing.BEHIND: "behind this code: run `surveyor db upgrade` (the console also does)",
    Standing.AHEAD: "newer than this code: upgrade Surveyor here to the version that wrote it",
}


def version_text(environ: Mapping[str, str] | None = None) -> str:
    """The lines `surveyor --version` prints."""
    env = os.environ if environ is None else environ
    expected = expected_revision()
    location = database_location(env)
    found = read_revision(location)
    lines = [f"surveyor {__version__}", f"schema revision: {expected}"]
    if not found.exists:
        lines.append(f"database: none yet ({location.shown}; made at the first start)")
    elif found.error is not None:
        lines.append(f"database: cannot be read ({location.shown}): {found.error}")
    else:
        state = _STANDING_WORDS[standing(found.revision)]
        lines.append(f"database revision: {found.revision or 'none'}, {state} ({location.shown})")
    return "\n".join(lines)


def print_version() -> None:
    print(version_text())
