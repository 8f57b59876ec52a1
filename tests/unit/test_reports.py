"""Reports' pure parts: what is public, when a site stands out, the CSV long form, and the
SVG charts (well-formed, named, escaped, and drawn for edge cases)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from surveyor.console.report_charts import chart
from surveyor.core import kinds, reports
from surveyor.core.reports import (
    AssetGroup,
    Inventory,
    is_public_address,
    is_public_name,
    section,
    stands_out,
    top_rows,
)

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("1.1.1.1", True),
        ("2606:4700::1111", True),
        ("100.64.1.2", False),
        ("100.64.0.1", False),  # shared address space
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("203.0.113.5", False),  # documentation
        ("224.0.0.1", False),
        ("fe80::1", False),
        ("not an address", False),
    ],
)
def test_public_addresses_are_the_globally_routable_ones(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    ("name", "public"),
    [
        ("www.acme.com", True),
        ("shop.example.co.uk.", True),
        ("printer.local", False),
        ("nas.home.arpa", False),
        ("web01.lab", False),
        ("db.corp", False),
        ("fileserver", False),  # a single label
        ("host.123", False),  # the last label is no top-level domain
        ("1.0.0.127.in-addr.arpa", False),
    ],
)
def test_public_names_are_qualified_and_outside_private_suffixes(name: str, public: bool) -> None:
    assert is_public_name(name) is public


def test_a_share_stands_out_when_far_enough_and_in_proportion() -> None:
    assert stands_out(0.0, 16.7)  # none where the organization has some
    assert stands_out(30.0, 10.0)
    assert not stands_out(25.0, 16.7)  # 1.5 times is not reached
    assert not stands_out(2.0, 6.0)  # too few points apart, whatever the ratio


def test_top_rows_sum_the_rest_as_other() -> None:
    counts = Counter({f"s{n:02}": 100 - n for n in range(15)})
    rows = top_rows(counts, 3)
    assert rows[:3] == [["s00", 100], ["s01", 99], ["s02", 98]]
    assert rows[3] == ["Other", sum(100 - n for n in range(3, 15))]


def test_the_csv_long_form_has_one_value_a_line() -> None:
    groups = [
        AssetGroup(1, "Ubuntu Linux", "", True, 3, 6, 1, 0),
        AssetGroup(2, "", "printer", False, 2, 0, 0, 1),
    ]
    result = reports.overview(Inventory({1: "HQ", 2: "Lab"}, groups, ()), NOW)
    rows = list(reports.csv_rows(result))
    assert ["summary", "Assets", "value", 5] in rows
    assert ["by_site", "HQ", "Online", 3] in rows
    assert ["by_site", "Lab", "Offline", 2] in rows
    assert ["by_type", "Printer", "Assets", 2] in rows
    assert all(len(row) == 4 for row in rows)


def _parsed(markup: str) -> Element:
    parsed: Element = fromstring(markup)
    return parsed


@pytest.mark.parametrize("kind", ["bars", "stacked", "series"])
def test_each_chart_is_a_named_image_with_its_labels_escaped(kind: str) -> None:
    part = section(
        "s",
        'Hosts <script>alert("x")</script>',
        ["Label", "A", "B"],
        [["2026-12-01", 3, 1], ['<b>"odd"</b>', 0, 0], ["2026-12-03", 7, 2]],
        chart=kind,
    )
    svg = _parsed(str(chart(part)))
    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    assert "<script>" in (svg.get("aria-label") or "")  # as text, not markup
    assert svg.find(f".//{SVG}script") is None
    assert "<script" not in str(chart(part)).replace("&lt;script", "")


def test_a_series_of_one_day_or_all_zero_is_still_drawn() -> None:
    one = section("t", "One day", ["Day", "New"], [["2026-12-05", 0]], chart="series")
    svg = _parsed(str(chart(one)))
    assert svg.findall(f".//{SVG}polyline")


def test_a_section_without_rows_or_chart_draws_nothing() -> None:
    assert str(chart(section("e", "Empty", ["A", "B"], [], chart="bars"))) == ""
    assert str(chart(section("t", "Table", ["A", "B"], [["x", 1]]))) == ""


def test_bars_are_as_long_as_their_share_of_the_largest() -> None:
    part = section("b", "Bars", ["Label", "N"], [["a", 10], ["b", 5], ["c", 0]], chart="bars")
    widths = [
        float(rect.get("width") or 0) for rect in _parsed(str(chart(part))).iter(f"{SVG}rect")
    ]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert widths[2] == 0


def test_a_report_task_is_summed_up_by_its_first_figures() -> None:
    outcome = kinds.REPORT.outcome
    assert outcome is not None
    stats = {"Assets": 6, "Online": 5, "Offline": 1, "Sites": 2}
    assert outcome({"stats": stats}) == "6 assets · 5 online · 1 offline"
    assert outcome({"stats": {}}) == ""
