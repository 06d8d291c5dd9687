"""The command line: ``check``, ``repair``, ``explain`` and ``cache``. Thin by design."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lockfix import __version__
from lockfix.cli.checking import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_UNVERIFIED,
    BadInput,
    CommandError,
    RunOptions,
    analyze,
    check_paths,
    for_each_path,
    input_errors,
    report_failed,
    warn_old_uv,
)
from lockfix.errors import InputError
from lockfix.safeio import check_output, write_atomically

if TYPE_CHECKING:
    from lockfix.engine import Analysis


def _options(formats: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    options = [
        click.option(
            "--cache-dir",
            type=click.Path(path_type=Path),
            envvar="LOCKFIX_CACHE_DIR",
            help="Cache folder (default: the user cache dir; env LOCKFIX_CACHE_DIR).",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
        click.option(
            "--offline",
            is_flag=True,
            envvar="LOCKFIX_OFFLINE",
            help="Answer from the cache only (env LOCKFIX_OFFLINE=1).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=None,
            help="Requests in flight at once (env LOCKFIX_CONCURRENCY, "
            "[tool.lockfix] concurrency; default 50, as uv).",
        ),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(formats),
            default="text",
            show_default=True,
            help="Report format.",
        ),
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors."),
        click.option(
            "--keep-going",
            is_flag=True,
            help="Repair what could be verified, report the rest, exit 3.",
        ),
        click.option(
            "-v", "--verbose", is_flag=True, help="Print each package's verdict on stderr."
        ),
        click.option(
            "--single-wheel",
            is_flag=True,
            help="Check against one wheel's metadata per version, as uv does "
            "(default: every locked wheel's, each where an installer picks it).",
        ),
    ]

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _paths_argument(function: Callable[..., Any]) -> Callable[..., Any]:
    # readable=False: an unreadable lock is reported by safeio in one line
    paths = click.Path(path_type=Path, readable=False)
    return click.argument("paths", nargs=-1, type=paths)(function)


class _Group(click.Group):
    """Reports a :class:`~lockfix.cli.checking.CommandError` as click reports its own
    errors: shown on stderr, ending the command with its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommandError as error:
            error.show()
            ctx.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lockfix")
def main() -> None:
    """Check a uv.lock against the package indexes it was resolved from, and repair it."""


@main.command()
@_paths_argument
@_options(("text", "json", "github"))
def check(paths: tuple[Path, ...], **raw: Any) -> None:
    """Report where the lock disagrees with its indexes.

    Exit 0: clean; 1: findings; 2: usage or input error; 3: some package could not be
    verified (index or network failure).
    """
    check_paths(paths, RunOptions(**raw))


@main.command()
@_paths_argument
@_options(("text", "json", "github"))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the repaired lock here instead of in place.",
)
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of the change.")
@click.option("--dry-run", is_flag=True, help="Do not write anything.")
@click.option(
    "--exit-non-zero-on-fix",
    is_flag=True,
    help="Exit 1 when the lock needed a repair (for pre-commit).",
)
@click.option(
    "--accept-index-artifacts",
    is_flag=True,
    help="Replace locked sdists/wheels that disagree with the index by the index's entries.",
)
def repair(
    paths: tuple[Path, ...],
    output: Path | None,
    show_diff: bool,
    dry_run: bool,
    exit_non_zero_on_fix: bool,
    accept_index_artifacts: bool,
    **raw: Any,
) -> None:
    """Rewrite the lock's dependency edges and packages to match its indexes."""
    run = RunOptions(**raw)
    if output is not None and len(paths) > 1:
        raise click.UsageError("-o/--output takes a single lock")
    if output is not None and not dry_run:
        with input_errors():
            check_output(output)  # before any work: a FIFO or a device is never written
    warn_old_uv(run)
    job = _Repair(run, output, show_diff, dry_run, exit_non_zero_on_fix, accept_index_artifacts)
    for_each_path(paths, run, job.one)


@dataclass(slots=True)
class _Repair:
    """``repair``'s options, and the repair of one lock (:meth:`one`)."""

    run: RunOptions
    output: Path | None
    show_diff: bool
    dry_run: bool
    exit_non_zero_on_fix: bool
    accept_index_artifacts: bool

    @property
    def text_output(self) -> bool:
        return self.run.output_format == "text" and not self.run.quiet

    def one(self, path: Path, documents: list[Any]) -> int:
        """Repair the lock at ``path``; its exit code."""
        analysis = analyze(path, self.run, write=True)
        plan = analysis.plan
        # Locked artifacts the index disagrees with are only replaced on request.
        artifacts = analysis.artifact_findings
        refuse = bool(artifacts) and not self.accept_index_artifacts
        new_text = _repaired_text(path, analysis, replace_artifacts=bool(artifacts) and not refuse)
        changed = new_text != analysis.lock.text and not refuse and not plan.unrepairable
        self._report(path, analysis, changed, documents)
        if plan.unrepairable:
            click.echo(f"lockfix: not writing {path}: {'; '.join(plan.unrepairable)}", err=True)
            return EXIT_FINDINGS
        if refuse:
            click.echo(
                f"lockfix: refusing to write {path}: {len(artifacts)} locked artifact "
                "finding(s); check them, then pass --accept-index-artifacts to lock the "
                "index's files",
                err=True,
            )
            return EXIT_FINDINGS
        self._write(path, analysis, new_text, changed)
        if plan.failed:  # --keep-going: the verified part is written, not the rest
            report_failed(path, analysis)
            return EXIT_UNVERIFIED
        return EXIT_FINDINGS if changed and self.exit_non_zero_on_fix else EXIT_CLEAN

    def _report(self, path: Path, analysis: Analysis, changed: bool, documents: list[Any]) -> None:
        from lockfix.cli.report import github_report, human_report, json_document

        plan, artifacts = analysis.plan, analysis.artifact_findings
        if self.run.output_format == "json":
            documents.append(
                json_document(
                    plan,
                    analysis.warnings,
                    changed=changed,
                    artifact_findings=artifacts,
                    path=str(path),
                )
            )
        elif self.run.output_format == "github":
            report = github_report(analysis.lock, str(path), plan, analysis.warnings, artifacts)
            click.echo(report, nl=False, err=self.show_diff)
        elif self.text_output:
            report = human_report(plan, analysis.warnings, artifacts)
            click.echo(report, nl=False, err=self.show_diff)

    def _write(self, path: Path, analysis: Analysis, new_text: str, changed: bool) -> None:
        """Describe the replaced artifacts, show the diff, write the lock (as asked)."""
        from lockfix.cli.report import printable, unified_diff

        if analysis.artifact_findings and self.text_output:
            from lockfix.analysis.artifacts import describe_replacements

            lines = describe_replacements(analysis.lock.packages, analysis.artifact_replacements)
            click.echo("".join(f"{printable(line)}\n" for line in lines), nl=False, err=True)
        if self.show_diff and changed:
            color = sys.stdout.isatty()
            click.echo(unified_diff(analysis.lock.text, new_text, str(path), color=color), nl=False)
        if not self.dry_run:
            destination = self.output or path
            if changed or self.output is not None:
                write_atomically(destination, new_text)
                if self.text_output:
                    click.echo(f"wrote {destination}", err=True)


def _repaired_text(path: Path, analysis: Analysis, *, replace_artifacts: bool) -> str:
    from lockfix.lock.lockfile import LockError
    from lockfix.lock.writer import apply_plan, replace_lock_artifacts

    plan = analysis.plan
    try:
        # no repair in place: two versions of a name are needed in one environment
        new_text = analysis.lock.text if plan.unrepairable else apply_plan(analysis.lock, plan)
        if replace_artifacts:
            new_text = replace_lock_artifacts(new_text, analysis.artifact_replacements)
    except LockError as error:
        raise InputError(f"{path}: refusing to write: {error}") from None
    return new_text


@main.command()
@click.argument("package")
@click.argument("path", type=click.Path(path_type=Path), default=Path("uv.lock"))
@_options(("text", "json"))
def explain(package: str, path: Path, **raw: Any) -> None:
    """Show, for PACKAGE[==VERSION], what each index declares and what the lock says.

    Per locked file, the Requires-Dist of its metadata (files that agree are grouped), then
    the lock's edges with their markers, then the findings. Exit 1 if there are findings.
    """
    import json

    from lockfix.cli.explain import NotInLock, explain_json, explain_text, parse_spec
    from lockfix.cli.explain import explain as explain_package

    run = RunOptions(**raw)
    name, version = parse_spec(package)
    analysis = analyze(path, run, package_facts=False)  # it shows every file's metadata
    try:
        explanations = explain_package(analysis, name, version)
    except NotInLock as error:
        raise BadInput(f"{path}: {error}") from None
    if run.output_format == "json":
        click.echo(json.dumps(explain_json(explanations), indent=2))
    elif not run.quiet:
        click.echo(explain_text(explanations), nl=False)
    if any(item.findings for item in explanations):
        sys.exit(EXIT_FINDINGS)


@main.group()
def cache() -> None:
    """Show or remove lockfix's cache."""


_cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    envvar="LOCKFIX_CACHE_DIR",
    help="Cache folder (default: the user cache dir; env LOCKFIX_CACHE_DIR).",
)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# The names lockfix gives its entries, in this cache layout and the earlier ones (any
# version number): folders, SQLite files and their journals, a set-aside damaged database,
# the uv version memo and its temporary files.
_CACHE_ENTRY = re.compile(
    r"(?:metadata|pages|verdicts|summaries)-v\d+"
    r"|(?:metadata|pages|facts)-v\d+\.(?:sqlite|db|damaged)(?:-journal|-wal|-shm)?"
    r"|uv-version-v\d+\.json(?:\.\d+\.tmp)?"
    r"|\.uv-version-v\d+\.json\.lockfix-[0-9a-f]+\.tmp"
)


def _cache_entries(root: Path) -> list[Path]:
    """What lockfix itself keeps in the cache folder (anything else there is left alone)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _CACHE_ENTRY.fullmatch(p.name))


def _files(entry: Path) -> list[Path]:
    if entry.is_file():
        return [entry]
    return [p for p in entry.rglob("*") if p.is_file()]


@cache.command("info")
@_cache_dir_option
def cache_info(cache_dir: Path | None) -> None:
    """Print the cache folder, its size and its entries."""
    from lockfix.index.cache import MetadataCache

    cache = MetadataCache(cache_dir)
    root = cache.root
    click.echo(f"cache: {root}")
    if not root.exists():
        click.echo("(empty: the folder does not exist)")
        return
    size = _size(cache.database) if cache.database.exists() else 0
    click.echo(f"metadata entries: {cache.entries()} ({_human_size(size)})")
    cache.close()
    pages = [f for e in _cache_entries(root) if e.name.startswith("pages-v") for f in _files(e)]
    click.echo(f"index pages: {len(pages)} ({_human_size(sum(f.stat().st_size for f in pages))})")
    click.echo(f"total: {_human_size(_size(root))}")


@cache.command("clean")
@_cache_dir_option
def cache_clean(cache_dir: Path | None) -> None:
    """Remove the cache."""
    from lockfix.index.cache import MetadataCache

    root = MetadataCache(cache_dir).root
    entries = _cache_entries(root) if root.is_dir() else []
    freed = sum(_size(p) for p in entries)
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    click.echo(f"removed {root} ({_human_size(freed)} freed)")


if __name__ == "__main__":
    main()
