"""``lockfix explain``: what the index declares for one package against what the lock says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lockfix.analysis.findings import Finding
from lockfix.cli.report import finding_json, index_label, printable, redact_document
from lockfix.dist.metadata import CoreMetadata
from lockfix.dist.names import canonicalize_name
from lockfix.engine import Analysis
from lockfix.lock.lockfile import Dependency, Package, PackageId
from lockfix.urls import redact_text

SHOWN_FILES = 3


class NotInLock(LookupError):
    """The lock has no package of that name (and version)."""


@dataclass(slots=True)
class DeclaredGroup:
    """Files of one package whose metadata declares the same requirements."""

    files: list[str]
    requires_dist: tuple[str, ...]
    provides_extra: tuple[str, ...]


@dataclass(slots=True)
class Explanation:
    package: PackageId
    from_index: bool
    declared: list[DeclaredGroup]
    locked: list[tuple[str, Dependency]]
    findings: list[Finding]
    warnings: list[Finding]
    unverified: str | None


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``torch`` or ``torch==2.7.1`` → (canonical name, version or None)."""
    name, _, version = spec.partition("==")
    return canonicalize_name(name.strip()), version.strip() or None


def _table_label(kind: str | None, name: str | None) -> str:
    return "main" if kind is None else f"{kind} {name}"


def _groups(per_file: dict[str, CoreMetadata]) -> list[DeclaredGroup]:
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], DeclaredGroup] = {}
    for filename in sorted(per_file):
        metadata = per_file[filename]
        key = (tuple(sorted(metadata.requires_dist)), tuple(sorted(metadata.provides_extra)))
        group = groups.setdefault(key, DeclaredGroup([], *key))
        group.files.append(filename)
    return list(groups.values())


def explain(analysis: Analysis, name: str, version: str | None = None) -> list[Explanation]:
    packages: list[Package] = [
        p for p in analysis.lock.named(name) if version is None or p.version == version
    ]
    ids = [p.id for p in packages]
    plan = analysis.plan
    errors = [*plan.findings, *analysis.artifact_findings]
    for finding in errors:
        added = finding.kind == "missing-package" and finding.package.name == name
        if added and (version is None or finding.package.version == version):
            ids.append(finding.package)
    if not ids:
        wanted = f"{name}=={version}" if version else name
        raise NotInLock(f"no package {wanted} in the lock")
    explanations = []
    for package_id in ids:
        package = analysis.lock.package(package_id)
        explanations.append(
            Explanation(
                package=package_id,
                from_index=package_id.source.is_registry,
                declared=_groups(analysis.wheel_metadata.get(package_id, {})),
                locked=[
                    (_table_label(kind, table), dep)
                    for kind, table, dep in (package.edges() if package else ())
                ],
                findings=[f for f in errors if f.package == package_id],
                warnings=[f for f in analysis.warnings if f.package == package_id],
                unverified=plan.unverified.get(package_id),
            )
        )
    return explanations


def _dependency_text(dep: Dependency) -> str:
    text = dep.name + (f"[{','.join(dep.extras)}]" if dep.extras else "")
    if dep.version:
        text += f" {dep.version}"
    if dep.source is not None:
        text += f" ({index_label(dep.source.location)})"
    if dep.marker:
        text += f" ; {dep.marker}"
    return text


def explain_text(explanations: list[Explanation]) -> str:
    lines: list[str] = []
    for item in explanations:
        package = item.package
        where = index_label(package.source.location) if item.from_index else str(package.source)
        lines.append(f"{package.name} {package.version} ({where})")
        if not item.from_index:
            lines.append("  not from an index: the lock's edges are taken as they are")
        elif item.unverified is not None:
            lines.append(f"  not verified — {item.unverified}")
        for group in item.declared:
            shown = ", ".join(group.files[:SHOWN_FILES])
            if len(group.files) > SHOWN_FILES:
                shown += f" and {len(group.files) - SHOWN_FILES} more"
            count = len(group.files)
            lines.append(f"  the index declares, in {count} file{'s' if count != 1 else ''}:")
            lines.append(f"    ({shown})")
            if group.provides_extra:
                lines.append(f"    Provides-Extra: {', '.join(group.provides_extra)}")
            lines.extend(f"    {r}" for r in group.requires_dist)
            if not group.requires_dist:
                lines.append("    (no dependencies)")
        if item.locked:
            lines.append("  the lock says:")
            lines.extend(f"    [{table}] {_dependency_text(dep)}" for table, dep in item.locked)
        else:
            lines.append("  the lock says: (no dependencies)")
        if item.findings or item.warnings:
            lines.append("  findings:")
            lines.extend(f"    {f.kind}: {f.message}" for f in [*item.findings, *item.warnings])
        else:
            lines.append("  findings: none")
    return "".join(f"{printable(redact_text(line))}\n" for line in lines)


def explain_json(explanations: list[Explanation]) -> list[dict[str, Any]]:
    redacted: list[dict[str, Any]] = redact_document(_explain_json(explanations))
    return redacted


def _explain_json(explanations: list[Explanation]) -> list[dict[str, Any]]:
    return [
        {
            "package": item.package.name,
            "version": item.package.version,
            "source": item.package.source.location,
            "declared": [
                {
                    "files": g.files,
                    "requires_dist": list(g.requires_dist),
                    "provides_extra": list(g.provides_extra),
                }
                for g in item.declared
            ],
            "locked": [
                {
                    "table": table,
                    "name": dep.name,
                    "version": dep.version,
                    "source": dep.source.location if dep.source else None,
                    "extras": list(dep.extras),
                    "marker": dep.marker,
                }
                for table, dep in item.locked
            ],
            "findings": [finding_json(f) for f in item.findings],
            "warnings": [finding_json(f) for f in item.warnings],
            "unverified": item.unverified,
        }
        for item in explanations
    ]
