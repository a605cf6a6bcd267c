"""The gradebook: one row per learner in CSV and JSON, and the class summary (score distribution, most-failed checks)."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from securecart_lab import __version__
from securecart_lab.grading.runner import Row

FORMAT_VERSION = 1
BANDS = ((90, "90-100%"), (70, "70-89%"), (50, "50-69%"), (0, "0-49%"))


@dataclass
class Summary:
    learners: int
    by_status: dict[str, int]
    distribution: list[tuple[str, int]]  # (band, learners)
    most_failed: list[tuple[str, int]]  # ("lab01/happy-path", learners who failed it)
    mean_percent: float | None


def percent(row: Row) -> float | None:
    return round(100 * row.earned / row.points, 1) if row.points else None


def summarize(rows: list[Row]) -> Summary:
    bands = Counter()
    for row in rows:
        score = percent(row)
        if score is None:
            continue
        bands[next(label for floor, label in BANDS if score >= floor)] += 1
    failed = Counter(check for row in rows for check in set(row.failed_checks))
    scores = [p for p in map(percent, rows) if p is not None]
    return Summary(
        learners=len(rows),
        by_status=dict(Counter(row.status for row in rows)),
        distribution=[(label, bands[label]) for _, label in BANDS],
        most_failed=sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))[:10],
        mean_percent=round(sum(scores) / len(scores), 1) if scores else None,
    )


def lab_numbers(rows: list[Row]) -> list[int]:
    return sorted({n for row in rows for n in row.labs})


def write(out: Path, rows: list[Row], run: dict) -> tuple[Path, Path]:
    """DIR/gradebook.csv and DIR/gradebook.json; `run` says how the grades were produced."""
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r.id)
    numbers = lab_numbers(rows)
    csv_path = out / "gradebook.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *(f"lab{n:02d}_{k}" for n in numbers for k in ("earned", "possible")),
                         "total_earned", "total_possible", "status", "reason", "seconds"])
        for row in rows:
            cells = []
            for n in numbers:
                lab = row.labs.get(n)
                cells += [lab["earned"], lab["points"]] if lab else ["", ""]
            writer.writerow([row.id, *cells, row.earned, row.points, row.status, row.reason or "", f"{row.seconds:.1f}"])
    summary = summarize(rows)
    document = {
        "format_version": FORMAT_VERSION,
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "kit_version": __version__,
        "run": run,
        "labs": numbers,
        "learners": [
            {
                "id": row.id,
                "source": row.source,
                "status": row.status,
                "reason": row.reason,
                "seconds": row.seconds,
                "earned": row.earned,
                "possible": row.points,
                "labs": {str(n): lab for n, lab in sorted(row.labs.items())},
                "failed_checks": row.failed_checks,
                "report": f"reports/{row.id}.json" if row.report is not None else None,
            }
            for row in rows
        ],
        "summary": {
            "by_status": summary.by_status,
            "mean_percent": summary.mean_percent,
            "distribution": dict(summary.distribution),
            "most_failed_checks": [{"check": c, "learners": n} for c, n in summary.most_failed],
        },
    }
    json_path = out / "gradebook.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return csv_path, json_path


def write_markdown(out: Path, rows: list[Row]) -> Path:
    """DIR/summary.md: the scores and the most-failed checks, for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY)."""
    rows = sorted(rows, key=lambda r: r.id)
    numbers = lab_numbers(rows)
    lines = ["## securecart-lab grade", "",
             "| Learner | " + " | ".join(f"Lab {n}" for n in numbers) + " | Total | Status | Reason |",
             "| --- | " + " | ".join("---" for _ in numbers) + " | --- | --- | --- |"]
    for row in rows:
        cells = [f"{row.labs[n]['earned']}/{row.labs[n]['points']}" if n in row.labs else "-" for n in numbers]
        reason = (row.reason or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row.id} | " + " | ".join(cells) + f" | {row.earned}/{row.points} | {row.status} | {reason} |")
    most_failed = summarize(rows).most_failed
    if most_failed:
        lines += ["", "Failed checks: " + ", ".join(f"`{c}` ({n} of {len(rows)})" for c, n in most_failed)]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
