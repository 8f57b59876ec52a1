"""Every process takes `--log-format text|json`, and the formatters write what they say."""

from __future__ import annotations

import io
import json
import logging

import pytest
from typer.testing import CliRunner

from surveyor.cli.logs import JsonFormatter, LogFormat, TextFormatter
from surveyor.cli.main import app


@pytest.mark.parametrize("command", [["up"], ["console"], ["worker"], ["explorer"]])
def test_every_process_takes_a_log_format(command: list[str]) -> None:
    shown = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "--log-format" in shown.output
    refused = CliRunner().invoke(app, [*command, "--log-format", "xml"])
    assert refused.exit_code == 2


def _line(formatter: logging.Formatter, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"surveyor.test.{id(formatter)}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning("queue %s is %d deep", "processing", 3, extra=extra)
    logger.removeHandler(handler)
    return stream.getvalue().strip()


def test_a_json_line_has_the_message_level_and_request_id() -> None:
    line = json.loads(_line(JsonFormatter(), request_id="abc-1", status=200))
    assert line["message"] == "queue processing is 3 deep"
    assert line["level"] == "warning"
    assert line["request_id"] == "abc-1"
    assert line["status"] == 200
    assert line["time"].endswith("+00:00")


def test_a_text_line_names_the_request_when_there_is_one() -> None:
    assert "[abc-1]: queue processing is 3 deep" in _line(TextFormatter(), request_id="abc-1")
    assert "[" not in _line(TextFormatter())
    assert LogFormat("json") is LogFormat.JSON
