"""JSON and JUnit XML reports: both name the engine, its version and what it simulates."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path

from securecart_lab.reporting import LabReport, RunInfo


def to_json(reports: list[LabReport], info: RunInfo) -> dict:
    return {
        "format_version": 1,
        "run": asdict(info),
        "ok": all(r.ok for r in reports),
        "labs": [
            {
                "lab": r.lab,
                "title": r.title,
                "deployed_from": r.deployed_from,
                "passed": r.passed,
                "failed": r.failed,
                "skipped": r.skipped,
                "earned": r.earned,
                "points": r.points,
                "seconds": r.seconds,
                "checks": [o.to_dict() for o in r.outcomes],
            }
            for r in reports
        ],
    }


def write_json(path: Path, reports: list[LabReport], info: RunInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(reports, info), indent=2) + "\n", encoding="utf-8")


def to_junit(reports: list[LabReport], info: RunInfo) -> ET.ElementTree:
    suites = ET.Element(
        "testsuites",
        name="securecart-lab",
        tests=str(sum(len(r.outcomes) for r in reports)),
        failures=str(sum(r.failed for r in reports)),
        skipped=str(sum(r.skipped for r in reports)),
        time=f"{sum(r.seconds for r in reports):.3f}",
    )
    for r in reports:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"lab{r.lab:02d}",
            tests=str(len(r.outcomes)),
            failures=str(r.failed),
            skipped=str(r.skipped),
            errors="0",
            time=f"{r.seconds:.3f}",
            timestamp=info.started_at,
        )
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("engine", info.engine),
            ("engine_version", info.engine_version),
            ("time_scale", f"{info.time_scale:g}"),
            ("score", f"{r.earned}/{r.points}"),
            *((("deployed_from", r.deployed_from),) if r.deployed_from else ()),
            ("graded_state", info.graded_state),
            ("kit_version", info.kit_version),
            ("iam", info.iam),
            *(("simulated", s) for s in info.simulated),
            *_provenance_properties(info.provenance, r.lab),
        ):
            ET.SubElement(props, "property", name=name, value=value)
        for o in r.outcomes:
            case = ET.SubElement(suite, "testcase", classname=f"lab{r.lab:02d}", name=f"{o.id}: {o.title}",
                                 time=f"{o.seconds:.3f}")
            if o.status == "fail":
                failure = ET.SubElement(case, "failure", message=o.message or "failed")
                failure.text = "\n".join(
                    line for line in (
                        o.message,
                        o.expected is not None and f"expected: {o.expected}",
                        o.actual is not None and f"found: {o.actual}",
                        f"hint: {o.hint}",
                    ) if line
                )
            elif o.status == "skip":
                ET.SubElement(case, "skipped", message=o.message)
    ET.indent(suites)
    return ET.ElementTree(suites)


def _provenance_properties(provenance: dict, lab: int) -> list[tuple[str, str]]:
    """What `grade` recorded about this lab: where it (and each lab it builds on) was deployed from, and the
    SHA-256 of each graded file."""
    entry = provenance.get("labs", {}).get(str(lab), {})
    props = [("submission", provenance["submission"])] if provenance.get("submission") else []
    props += [(f"lab{int(n):02d}_deployed_from", source) for n, source in sorted(entry.get("deployed_from", {}).items())]
    props += [(f"sha256:{name}", digest) for name, digest in sorted(provenance.get("files", {}).items())
              if name.startswith(f"lab{lab:02d}/")]
    return props


def write_junit(path: Path, reports: list[LabReport], info: RunInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    to_junit(reports, info).write(path, encoding="utf-8", xml_declaration=True)
