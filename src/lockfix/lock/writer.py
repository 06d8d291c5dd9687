"""Apply a plan to lock text: untouched blocks keep every byte, changed ones get uv's layout.

Only the ``[[package]]`` blocks that change are rewritten, and inside them only the
dependency tables; new packages are rendered in uv's own layout and inserted in uv's
sort order. The result is re-read before it is returned, so a plan that would produce a
lock uv cannot parse never reaches the disk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from lockfix.dist.simple import IndexFile
from lockfix.lock.edits import MAIN, AddedPackage, LockEdits, PackagePlan, Table
from lockfix.lock.lockfile import (
    KNOWN_REVISIONS,
    Dependency,
    Lock,
    LockError,
    PackageId,
    parse_lock,
    split_blocks,
)

INDENT = "    "
EXTRAS_HEADER = "[package.optional-dependencies]"
GROUPS_HEADER = "[package.dev-dependencies]"


@functools.cache
def _key_line() -> re.Pattern[str]:
    return re.compile(r"^([A-Za-z0-9_-]+|\"[^\"]*\") = ")


def toml_string(value: str) -> str:
    import tomlkit  # only where a lock is written: a check that writes nothing never loads it

    return tomlkit.string(value).as_string()


def render_dependency(dep: Dependency) -> str:
    parts = [f"name = {toml_string(dep.name)}"]
    if dep.version is not None:
        parts.append(f"version = {toml_string(dep.version)}")
    if dep.source is not None:
        parts.append(f"source = {{ {dep.source.kind} = {toml_string(dep.source.location)} }}")
    if dep.extras:
        parts.append("extra = [" + ", ".join(toml_string(e) for e in dep.extras) + "]")
    if dep.marker:
        parts.append(f"marker = {toml_string(dep.marker)}")
    return "{ " + ", ".join(parts) + " }"


def render_array(key: str, items: list[str]) -> str:
    if not items:
        return f"{key} = []\n"
    body = "".join(f"{INDENT}{item},\n" for item in items)
    return f"{key} = [\n{body}]\n"


def _table_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)


def format_upload_time(value: str | None) -> str | None:
    """uv's form: milliseconds at most, trailing zeros trimmed (``…14.860767Z`` → ``…14.86Z``)."""
    if not value:
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", value)
    if not match:
        return value
    stamp, fraction, zone = match.groups()
    fraction = (fraction or "")[:3].rstrip("0")
    zone = "Z" if zone in (None, "+00:00") else zone
    return f"{stamp}{'.' + fraction if fraction else ''}{zone}"


def render_artifact(file: IndexFile) -> str:
    parts = [f"url = {toml_string(file.url)}"]
    if "sha256" in file.hashes:
        parts.append(f"hash = {toml_string('sha256:' + file.hashes['sha256'])}")
    elif file.hashes:
        algorithm, digest = sorted(file.hashes.items())[0]
        parts.append(f"hash = {toml_string(f'{algorithm}:{digest}')}")
    if file.size is not None:
        parts.append(f"size = {file.size}")
    upload_time = format_upload_time(file.upload_time)
    if upload_time:
        parts.append(f"upload-time = {toml_string(upload_time)}")
    return "{ " + ", ".join(parts) + " }"


def render_package(added: AddedPackage, tables: dict[Table, list[Dependency]]) -> str:
    package_id = added.id
    lines = ["[[package]]\n", f"name = {toml_string(package_id.name)}\n"]
    if package_id.version is not None:
        lines.append(f"version = {toml_string(package_id.version)}\n")
    lines.append(f"source = {package_id.source.to_toml()}\n")
    if added.resolution_markers:
        markers = [toml_string(m) for m in added.resolution_markers]
        lines.append(render_array("resolution-markers", markers))
    if tables.get(MAIN):
        lines.append(render_array("dependencies", [render_dependency(d) for d in tables[MAIN]]))
    if added.sdist is not None:
        lines.append(f"sdist = {render_artifact(added.sdist)}\n")
    if added.wheels:
        lines.append(render_array("wheels", [render_artifact(w) for w in added.wheels]))
    extras = sorted((t[1] or "", deps) for t, deps in tables.items() if t[0] == "extra" and deps)
    if extras:
        lines.append("\n[package.optional-dependencies]\n")
        for name, deps in extras:
            lines.append(render_array(_table_key(name), [render_dependency(d) for d in deps]))
    return "".join(lines)


def _segments(lines: list[str]) -> list[list[str]]:
    """Group lines into key/value segments (a multi-line array is one segment)."""
    segments: list[list[str]] = []
    open_array = False
    for line in lines:
        if not open_array and (_key_line().match(line) or line.startswith("[") or not line.strip()):
            segments.append([line])
            stripped = line.rstrip()
            open_array = bool(_key_line().match(line)) and stripped.endswith("[")
        else:
            segments[-1].append(line)
            if open_array and line.rstrip() == "]":
                open_array = False
    return segments


def _segment_key(segment: list[str]) -> str | None:
    match = _key_line().match(segment[0])
    return match.group(1).strip('"') if match else None


def rewrite_block(block: str, edit: PackagePlan) -> str:
    """New text of one package block with its dependency tables replaced."""
    lines = block.splitlines(keepends=True)
    trailing: list[str] = []
    while lines and not lines[-1].strip():
        trailing.insert(0, lines.pop())
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        if line.startswith("[") and not line.startswith("[["):
            sections.append((line.strip(), [line]))
        else:
            sections[-1][1].append(line)

    main_lines = sections[0][1]
    if edit.resolution_markers is not None:
        segments = _segments(main_lines)
        keys = [_segment_key(s) for s in segments]
        markers = [toml_string(m) for m in edit.resolution_markers]
        new = render_array("resolution-markers", markers) if markers else ""
        if "resolution-markers" in keys:
            segments[keys.index("resolution-markers")] = [new] if new else []
        elif new:
            segments.insert(keys.index("source") + 1 if "source" in keys else 0, [new])
        main_lines = [line for s in segments for line in s]
    if MAIN in edit.tables or MAIN in edit.removed_tables:
        segments = _segments(main_lines)
        deps = edit.tables.get(MAIN, [])
        new = render_array("dependencies", [render_dependency(d) for d in deps]) if deps else ""
        keys = [_segment_key(s) for s in segments]
        if "dependencies" in keys:
            segments[keys.index("dependencies")] = [new] if new else []
        elif new:
            anchor = "resolution-markers" if "resolution-markers" in keys else "source"
            segments.insert(keys.index(anchor) + 1 if anchor in keys else len(segments), [new])
        main_lines = [line for s in segments for line in s]

    out = main_lines
    edits: dict[str, tuple[dict[str | None, list[Dependency]], set[str | None]]] = {}
    for kind, header in (("extra", EXTRAS_HEADER), ("group", GROUPS_HEADER)):
        changed = {t[1]: deps for t, deps in edit.tables.items() if t[0] == kind}
        removed = {t[1] for t in edit.removed_tables if t[0] == kind}
        if changed or removed:
            edits[header] = (changed, removed)
    if EXTRAS_HEADER in edits and not any(name == EXTRAS_HEADER for name, _ in sections[1:]):
        sections.insert(1, (EXTRAS_HEADER, [EXTRAS_HEADER + "\n"]))
    if GROUPS_HEADER in edits and not any(name == GROUPS_HEADER for name, _ in sections[1:]):
        # a member's groups: after the extras, before its metadata
        at = 1 + sum(1 for name, _ in sections[1:] if name == EXTRAS_HEADER)
        sections.insert(at, (GROUPS_HEADER, [GROUPS_HEADER + "\n"]))
    for name, section_lines in sections[1:]:
        if name in edits:
            gap = bool(section_lines) and not section_lines[-1].strip()
            section_lines = _rewrite_extras(section_lines, *edits[name])
            while section_lines and out and not out[-1].strip():
                out.pop()  # the rewritten section brings its own blank line (found by fuzzing)
            if gap and section_lines:
                section_lines.append("\n")  # before the section that follows
        out += section_lines
    text = "".join(out)
    return text + "".join(trailing)


def _rewrite_extras(
    section: list[str], edits: dict[str | None, list[Dependency]], removed: set[str | None]
) -> list[str]:
    segments = _segments([line for line in section[1:] if line.strip()])
    entries: dict[str, str] = {}
    for segment in segments:
        key = _segment_key(segment)
        if key is not None:
            entries[key] = "".join(segment)
    for name in removed:
        entries.pop(name or "", None)
    for name, deps in edits.items():
        if deps:
            entries[name or ""] = render_array(
                _table_key(name or ""), [render_dependency(d) for d in deps]
            )
        else:
            entries.pop(name or "", None)
    if not entries:
        return []
    return ["\n", section[0], *(entries[k] for k in sorted(entries))]


def apply_plan(lock: Lock, plan: LockEdits) -> str:
    """The new lock text, or the old text unchanged when the plan changes nothing."""
    if not plan.changes:
        return lock.text
    if lock.revision not in KNOWN_REVISIONS:
        raise LockError(
            f"the lock has revision {lock.revision}, a layout newer than lockfix knows "
            f"(up to {max(KNOWN_REVISIONS)}); lockfix will not rewrite it"
        )
    if any(p.block < 0 for p in lock.packages):
        raise LockError("the lock's layout is not the one uv writes; lockfix will not rewrite it")
    # Untouched blocks keep their bytes, line breaks included; what is written anew (a
    # rewritten block, a new package, a gap) takes the lock's line break.
    newline = lock.newline
    blocks = split_blocks(lock.text)
    removed = set(plan.removed)
    entries: list[tuple[tuple[object, ...], str]] = []
    for package in lock.packages:
        if package.id in removed:
            continue
        block = blocks[package.block]
        if package.id in plan.edits:
            block = rewrite_block(block.replace("\r\n", "\n"), plan.edits[package.id])
            block = _with_newline(block, newline)
        entries.append((package.id.sort_key(), block))
    for added in sorted(plan.added, key=lambda a: a.id.sort_key()):
        text = render_package(added, plan.added_edges.get(added.id, {}))
        key = added.id.sort_key()
        position = next((i for i, (k, _) in enumerate(entries) if k > key), len(entries))
        entries.insert(position, (key, _with_newline(text, newline)))
    last = len(entries) - 1
    body = [_ending(text, 1 if i == last else 2, newline) for i, (_, text) in enumerate(entries)]
    header = blocks[0]
    if body and not header.replace("\r\n", "\n").endswith("\n\n"):
        header = _ending(header, 2, newline)
    text = header + "".join(body)
    parse_lock(text)
    return text


def _with_newline(text: str, newline: str) -> str:
    """``text`` (LF line breaks) with ``newline`` line breaks."""
    return text if newline == "\n" else text.replace("\n", newline)


def _ending(block: str, breaks: int, newline: str) -> str:
    """``block`` ending in ``breaks`` line breaks (``2``: a blank line after it): kept as it
    is when it already does, in whichever style, else ended with ``newline``."""
    content = block.rstrip("\r\n")
    tail = block[len(content) :]
    if tail.replace("\r\n", "\n") == "\n" * breaks:
        return block
    return content + newline * breaks


# --- locked artifacts (lockfix repair --accept-index-artifacts) ----------------------------


def replace_artifacts(block: str, files: Sequence[IndexFile]) -> str:
    """One package block with its ``sdist`` and ``wheels`` replaced by ``files``, in uv's
    layout; every other line is kept. The sdist is the first non-wheel file, if any."""
    lines = block.splitlines(keepends=True)
    trailing: list[str] = []
    while lines and not lines[-1].strip():
        trailing.insert(0, lines.pop())
    # Only the main section (before any [package.*] table) holds sdist and wheels.
    end = next(
        (i for i, line in enumerate(lines) if line.startswith("[") and not line.startswith("[[")),
        len(lines),
    )
    segments = _segments(lines[:end])
    keys = [_segment_key(s) for s in segments]
    at = next((i for i, k in enumerate(keys) if k in ("sdist", "wheels")), len(segments))
    kept = [s for s, k in zip(segments, keys, strict=True) if k not in ("sdist", "wheels")]
    at -= sum(1 for k in keys[:at] if k in ("sdist", "wheels"))
    while at > 0 and not "".join(kept[at - 1]).strip():
        at -= 1
    sdist = next((f for f in files if not f.is_wheel), None)
    wheels = [f for f in files if f.is_wheel]
    new: list[list[str]] = []
    if sdist is not None:
        new.append([f"sdist = {render_artifact(sdist)}\n"])
    if wheels:
        new.append([render_array("wheels", [render_artifact(w) for w in wheels])])
    kept[at:at] = new
    return "".join(line for s in kept for line in s) + "".join(lines[end:]) + "".join(trailing)


def replace_lock_artifacts(text: str, replacements: Mapping[PackageId, Sequence[IndexFile]]) -> str:
    """Lock text with the artifacts of the given packages replaced (packages no longer in the
    lock are skipped); re-read before it is returned, like :func:`apply_plan`."""
    lock = parse_lock(text)
    wanted = [p for p in lock.packages if p.id in replacements]
    if not wanted:
        return text
    if any(p.block < 0 for p in lock.packages):
        raise LockError("the lock's layout is not the one uv writes; lockfix will not rewrite it")
    blocks = split_blocks(text)  # the other blocks keep their bytes
    for package in wanted:
        if not replacements[package.id]:
            raise LockError(f"the index lists no file of {package.name} {package.version} to lock")
        block = blocks[package.block].replace("\r\n", "\n")
        block = replace_artifacts(block, replacements[package.id])
        blocks[package.block] = _with_newline(block, lock.newline)
    new_text = "".join(blocks)
    parse_lock(new_text)
    return new_text
