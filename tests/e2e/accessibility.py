"""axe-core in the browser tests: the WCAG 2.1 A and AA rules, run on a page as a user sees it.

axe-core comes from npm (`package.json` at the repository root, installed by `make test`);
it is a test tool only and never part of the console. The script is injected into the page
under test, which needs a browser context made with `bypass_csp=True`: the console's
Content-Security-Policy rightly refuses inline scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_RUN_AXE = """
(tags) => axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})
  .then((result) => result.violations.map((v) => ({
    rule: v.id,
    impact: v.impact || "unknown",
    help: v.help,
    targets: v.nodes.map((node) => node.target.join(" ")),
  })))
"""


@dataclass(frozen=True)
class Violation:
    """One axe rule a page breaks, where."""

    where: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:8])
        more = f" (+{len(self.targets) - 8} more)" if len(self.targets) > 8 else ""
        return f"{self.where}: {self.rule} [{self.impact}] {self.help}: {shown}{more}"


def axe_violations(page: Page, where: str) -> list[Violation]:
    """The WCAG 2.1 A/AA violations axe-core finds on the page as it is now."""
    if not AXE_SCRIPT.is_file():
        pytest.fail(
            f"axe-core is not installed ({AXE_SCRIPT} is missing): the browser tests check "
            "every page with it. Install it with `npm ci` at the repository root "
            "(`make test` does), after `scripts/install-system-deps` for node and npm."
        )
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=AXE_SCRIPT)
    found: list[dict[str, Any]] = page.evaluate(_RUN_AXE, WCAG_21_AA_TAGS)
    return [Violation(where, v["rule"], v["impact"], v["help"], tuple(v["targets"])) for v in found]


def report(violations: list[Violation]) -> str:
    """A readable list for a failing assertion: each violation, then counts by rule."""
    by_rule: dict[str, int] = {}
    for violation in violations:
        by_rule[violation.rule] = by_rule.get(violation.rule, 0) + len(violation.targets)
    counts = ", ".join(f"{rule}: {count}" for rule, count in sorted(by_rule.items()))
    lines = "\n".join(f"  {violation}" for violation in violations)
    return f"{len(violations)} WCAG 2.1 A/AA violations (elements by rule: {counts}):\n{lines}"
