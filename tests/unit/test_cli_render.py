"""The CLI shows text from users and the network safely: hidden characters as styled
escapes, Rich markup as the characters it is made of, JSON with escapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from surveyor.cli.render import (
    HIDDEN_STYLE,
    events_table,
    print_json,
    shown,
    task_panel,
    task_table,
)

NAME = "invoice\u202egpj.exe"


def rendered(renderable: Any) -> str:
    console = Console(width=200, record=True, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def a_task(**fields: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "name": NAME,
        "type": "scan",
        "status": "new",
        "site_id": 1,
        "created_at": "2026-03-01T12:00:00Z",
        "created_by": "eve\u200b@example.test",
        "progress": {"collect": 0, "process": 0},
        **fields,
    }


def test_a_hidden_character_is_an_escape_in_a_style_of_its_own() -> None:
    text = shown(NAME)

    assert text.plain == "invoice\\u202egpj.exe"
    styled = [text.plain[span.start : span.end] for span in text.spans]
    assert {span.style for span in text.spans} == {HIDDEN_STYLE}
    assert styled == ["\\u202e"]


def test_markup_in_names_is_shown_as_typed() -> None:
    assert rendered(shown("[bold red]urgent[/] scan")).strip() == "[bold red]urgent[/] scan"


def test_task_tables_and_panels_show_names_with_escapes() -> None:
    sites = {1: "Bra\u200bnch"}
    table = rendered(task_table([a_task()], sites))
    panel = rendered(task_panel(a_task(description="a\x1b[2Jb", error="bad\u2066thing"), sites))

    for output in (table, panel):
        assert "\u202e" not in output
        assert "\u200b" not in output
        assert "invoice\\u202egpj.exe" in output
        assert "Bra\\u200bnch" in output
        assert "eve\\u200b@example.test" in output
    assert "a\\u001b[2Jb" in panel
    assert "bad\\u2066thing" in panel


def test_event_messages_and_actors_show_escapes() -> None:
    event = {
        "at": "2026-03-01T12:00:00Z",
        "kind": "waiting",
        "actor": "explorer:probe\u202e1",
        "message": "waiting for its explorer to come online ('probe\u202e1')",
    }

    output = rendered(events_table([event]))

    assert "\u202e" not in output
    assert "('probe\\u202e1')" in output


def test_json_output_escapes_hidden_characters_and_keeps_the_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {"name": NAME, "tag": "\U000e0041", "plain": "Zürich"}

    print_json(data)

    printed = capsys.readouterr().out
    assert "\u202e" not in printed
    assert "\\u202e" in printed
    assert "Zürich" in printed
    assert json.loads(printed) == data
