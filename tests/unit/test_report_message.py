"""The message a report task finishes with: its first three figures, in words."""

from __future__ import annotations

from surveyor.processing.reports import stored_message


def test_one_of_a_kind_is_said_in_the_singular() -> None:
    summary = [["Sites", 1], ["Assets", 1], ["Differences", 1], ["Open services", 9]]
    assert stored_message("Comparison", summary) == (
        "Comparison stored: 1 site, 1 asset, 1 difference"
    )


def test_other_counts_keep_the_plural_and_words_that_are_not_nouns_stay() -> None:
    summary = [["Assets", 12], ["Online", 1], ["Offline", 0]]
    assert stored_message("Overview", summary) == "Overview stored: 12 assets, 1 online, 0 offline"
    assert stored_message("Comparison", [["Sites", 0], ["Assets", 2]]) == (
        "Comparison stored: 0 sites, 2 assets"
    )
