"""Findings for people (grouped by package) and for machines (JSON)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from lockfix.analysis.findings import Finding, Plan
from lockfix.lock.lockfile import Lock, PackageId
from lockfix.urls import redact_text

# Bump only on incompatible changes; new fields may appear without a bump.
JSON_SCHEMA_VERSION = 1


# What a terminal or a log viewer would act on rather than show: C0 controls but tab (ESC
# starts escape sequences, CR and LF fake lines), DEL, C1 controls (0x9b is a CSI), and the
# Unicode line separators and bidirectional overrides.
@functools.cache
def _unprintable() -> re.Pattern[str]:
    return re.compile(
        r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
    )


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """One line of ``text``, with every character a terminal would act on (escape sequences
    from index data, line breaks) written as a ``\\xNN`` or ``\\uNNNN`` escape."""
    return _unprintable().sub(_escape, text)


def unverified_status(plan: Plan, package_id: PackageId) -> str:
    """``failed`` (index/network), ``skipped`` (configuration), ``unreadable`` (metadata
    with a line lockfix cannot read), ``artifact`` (a locked file disagrees with its index)
    or ``dynamic`` (no metadata)."""
    return str(plan.statuses.get(package_id, "dynamic"))


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
    errors = [*plan.findings, *artifact_findings]  # the locked-file findings count as findings
    for finding in [*errors, *warnings]:
        package = finding.package
        key = f"{package.name} {package.version} ({index_label(package.source.location)})"
        grouped.setdefault(key, []).append(finding)
    for key in sorted(grouped):
        lines.append(key)
        for finding in grouped[key]:
            lines.append(f"  {finding.kind}: {finding.message}")
    wrong = len({f.package for f in errors})
    for package_id, reason in sorted(plan.unverified.items(), key=lambda kv: kv[0].sort_key()):
        lines.append(f"{package_id.name} {package_id.version}: not verified — {reason}")
    summary = f"{wrong} package{'s' if wrong != 1 else ''} wrong, {plan.verified} verified"
    statuses = [unverified_status(plan, p) for p in plan.unverified]
    if skipped := statuses.count("skipped"):
        summary += f", {skipped} skipped"
    if unreadable := statuses.count("unreadable"):
        summary += f", {unreadable} with metadata lockfix cannot read"
    if artifact := statuses.count("artifact"):
        summary += f", {artifact} unread (a locked file disagrees with its index)"
    if dynamic := statuses.count("dynamic"):
        summary += f", {dynamic} unverifiable (dynamic sdist)"
    if plan.failed:
        summary += f", {len(plan.failed)} could not be checked (index or network failure)"
    lines.append(summary)
    return "".join(f"{printable(redact_text(line))}\n" for line in lines)


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "package": finding.package.name,
        "version": finding.package.version,
        "source": finding.package.source.location,
        **finding.detail(),
    }


def redact_document(value: Any) -> Any:
    """``value`` (JSON data) with the credentials of every URL in its strings masked: a
    lock may name its index as ``https://user:password@host/simple``."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_document(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_document(item) for key, item in value.items()}
    return value


def json_document(
    plan: Plan,
    warnings: Iterable[Finding],
    *,
    changed: bool | None,
    artifact_findings: Iterable[Finding] = (),
    path: str | None = None,
) -> dict[str, Any]:
    """The report as data; the schema is documented in README.md under "JSON schema"."""
    document: dict[str, Any] = {"schema": JSON_SCHEMA_VERSION}
    if path is not None:
        document["path"] = path
    document.update(
        {
            "findings": [finding_json(f) for f in [*plan.findings, *artifact_findings]],
            "warnings": [finding_json(f) for f in warnings],
            "unverified": [
                {
                    "package": p.name,
                    "version": p.version,
                    "source": p.source.location,
                    "reason": r,
                    "status": unverified_status(plan, p),
                }
                for p, r in sorted(plan.unverified.items(), key=lambda kv: kv[0].sort_key())
            ],
            "verified": plan.verified,
            "changed": changed,
        }
    )
    return redact_document(document)


def json_report(
    plan: Plan,
    warnings: Iterable[Finding],
    *,
    changed: bool | None,
    artifact_findings: Iterable[Finding] = (),
    path: str | None = None,
) -> str:
    document = json_document(
        plan, warnings, changed=changed, artifact_findings=artifact_findings, path=path
    )
    return json.dumps(document, indent=2) + "\n"


def block_lines(lock: Lock) -> dict[PackageId, int]:
    """The 1-based line of each package's ``[[package]]`` header in the lock text."""
    starts: list[int] = []
    line = 1
    for block in lock.blocks:
        starts.append(line)
        line += block.count("\n")
    return {p.id: starts[p.block] for p in lock.packages if 0 < p.block < len(starts)}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_error(path: str, message: str) -> str:
    """One ``::error`` annotation for a lock that could not be checked at all."""
    properties = f"file={_escape_property(path)},title=lockfix"
    return printable(f"::error {properties}::{_escape_data(redact_text(message))}")


def github_report(
    lock: Lock,
    path: str,
    plan: Plan,
    warnings: Iterable[Finding] = (),
    artifact_findings: Iterable[Finding] = (),
) -> str:
    """GitHub Actions workflow commands: one ``::error``/``::warning`` per finding.

    Packages the lock lacks (``missing-package``) point at line 1.
    """
    lines_of = block_lines(lock)
    out: list[str] = []

    def annotate(level: str, package_id: PackageId, title: str, message: str) -> None:
        properties = ",".join(
            (
                f"file={_escape_property(path)}",
                f"line={lines_of.get(package_id, 1)}",
                f"title={_escape_property(title)}",
            )
        )
        out.append(f"::{level} {properties}::{_escape_data(redact_text(message))}")

    for finding in [*plan.findings, *artifact_findings]:
        annotate("error", finding.package, f"lockfix {finding.kind}", finding.message)
    for finding in warnings:
        annotate("warning", finding.package, f"lockfix {finding.kind}", finding.message)
    for package_id in sorted(plan.failed, key=PackageId.sort_key):
        reason = plan.unverified.get(package_id, "")
        annotate(
            "warning",
            package_id,
            "lockfix could-not-verify",
            f"{package_id.name} {package_id.version}: not verified — {reason}",
        )
    out.append(human_report(plan, warnings, artifact_findings).rstrip("\n").rsplit("\n", 1)[-1])
    return "".join(f"{printable(line)}\n" for line in out)


def unified_diff(old: str, new: str, path: str, *, color: bool) -> str:
    """The change as a unified diff, credentials in URLs masked (it is printed, maybe to a
    CI log; the lock itself is written as it is)."""
    import difflib  # only repair --diff shows one

    diff = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    lines = [redact_text(line) for line in diff]
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
