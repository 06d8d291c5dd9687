"""Findings for people (grouped by package) and for machines (JSON)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from lockfix.planner import Finding, Plan

JSON_SCHEMA_VERSION = 1


def index_label(location: str) -> str:
    """A short name for an index: ``pypi.org``, ``127.0.0.1:8765/cpu``, ``wheels``."""
    label = location.split("://", 1)[-1].rstrip("/")
    label = label.rsplit("@", 1)[-1]
    if label.endswith("/simple"):
        label = label[: -len("/simple")]
    return label


def human_report(
    plan: Plan, warnings: Iterable[Finding] = (), artifact_findings: Iterable[Finding] = ()
) -> str:
    lines: list[str] = []
    grouped: dict[str, list[Finding]] = {}
    errors = [*plan.findings, *artifact_findings]  # artifact findings: issue 9
    for finding in [*errors, *warnings]:
        package = finding.package
        key = f"{package.name} {package.version} ({index_label(package.source.location)})"
        grouped.setdefault(key, []).append(finding)
    for key in sorted(grouped):
        lines.append(key)
        for finding in grouped[key]:
            lines.append(f"  {finding.kind}: {finding.message}")
    wrong = len({f.package for f in errors})
    unverified = len(plan.unverified)
    for package_id, reason in sorted(plan.unverified.items(), key=lambda kv: kv[0].sort_key()):
        lines.append(f"{package_id.name} {package_id.version}: not verified — {reason}")
    summary = f"{wrong} package{'s' if wrong != 1 else ''} wrong, {plan.verified} verified"
    if unverified - len(plan.failed):
        summary += f", {unverified - len(plan.failed)} unverifiable (dynamic sdist)"
    if plan.failed:
        summary += f", {len(plan.failed)} could not be checked (index or network failure)"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "package": finding.package.name,
        "version": finding.package.version,
        "source": finding.package.source.location,
        "kind": finding.kind,
        "message": finding.message,
        "target": finding.target,
        "requirement": finding.requirement,
        "fix": finding.fix,
    }


def json_report(
    plan: Plan,
    warnings: Iterable[Finding],
    *,
    changed: bool | None,
    artifact_findings: Iterable[Finding] = (),
) -> str:
    document = {
        "schema": JSON_SCHEMA_VERSION,
        "findings": [_finding_json(f) for f in [*plan.findings, *artifact_findings]],
        "warnings": [_finding_json(f) for f in warnings],
        "unverified": [
            {"package": p.name, "version": p.version, "source": p.source.location, "reason": r}
            for p, r in sorted(plan.unverified.items(), key=lambda kv: kv[0].sort_key())
        ],
        "verified": plan.verified,
        "changed": changed,
    }
    return json.dumps(document, indent=2) + "\n"


def unified_diff(old: str, new: str, path: str, *, color: bool) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    if not color:
        return "".join(lines)
    out = []
    for line in lines:
        if line.startswith("+") and not line.startswith("+++"):
            out.append(f"\x1b[32m{line}\x1b[0m")
        elif line.startswith("-") and not line.startswith("---"):
            out.append(f"\x1b[31m{line}\x1b[0m")
        elif line.startswith("@@"):
            out.append(f"\x1b[36m{line}\x1b[0m")
        else:
            out.append(line)
    return "".join(out)
