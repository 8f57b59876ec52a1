"""Percentiles, goals, and the table and JSON the benchmark prints."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def p95(samples: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    rows: int
    api_p50: float
    api_p95: float
    sql_p50: float
    sql_p95: float
    goal: str
    met: bool
    api_ms: list[float]
    sql_ms: list[float]

    @property
    def ratio(self) -> float:
        return self.api_p95 / self.sql_p95 if self.sql_p95 > 0 else math.inf

    @property
    def added_p50(self) -> float:
        return self.api_p50 - self.sql_p50


def summarize(api_ms: list[float], sql_ms: list[float]) -> dict[str, float]:
    return {
        "api_p50": statistics.median(api_ms),
        "api_p95": p95(api_ms),
        "sql_p50": statistics.median(sql_ms),
        "sql_p95": p95(sql_ms),
    }


@dataclass(frozen=True)
class BackendReport:
    backend: str
    title: str
    prepared: dict[str, Any]
    rows: list[Row]


def format_table(report: BackendReport) -> str:
    width = max(len("query"), *(len(row.label) for row in report.rows))
    header = (
        f"{'query':<{width}}  {'rows':>7}  {'API p50':>8}  {'API p95':>8}  "
        f"{'SQL p50':>8}  {'SQL p95':>8}  {'API-SQL':>8}  {'API/SQL':>7}  goal (on p95)"
    )
    lines = [report.title, header, "-" * (len(header) + 24)]
    for row in report.rows:
        mark = "✓" if row.met else "✗"
        lines.append(
            f"{row.label:<{width}}  {row.rows:>7,}  {row.api_p50:>8.2f}  {row.api_p95:>8.2f}  "
            f"{row.sql_p50:>8.2f}  {row.sql_p95:>8.2f}  {row.added_p50:>+8.2f}  "
            f"{row.ratio:>6.1f}x  {mark} {row.goal}"
        )
    met = sum(row.met for row in report.rows)
    lines.append(
        f"(times in ms; API-SQL: what the API adds to the SQL, at p50; "
        f"API/SQL: ratio of the p95s; {met}/{len(report.rows)} goals met)"
    )
    return "\n".join(lines)


def write_json(path: Path, reports: list[BackendReport], settings: dict[str, Any]) -> None:
    document = {
        "settings": settings,
        "backends": {
            report.backend: {
                "prepared": report.prepared,
                "results": [
                    {
                        **asdict(row),
                        "ratio_p95": round(row.ratio, 3),
                        "added_p50": round(row.added_p50, 3),
                    }
                    for row in report.rows
                ],
            }
            for report in reports
        },
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
