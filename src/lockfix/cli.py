"""The command line: ``lockfix check`` and ``lockfix repair``. Thin by design."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from lockfix import __version__
from lockfix.safeio import InputError, read_lock_text, write_atomically

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_UNVERIFIED = 3


def _keep_going(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    ctx.meta["lockfix.keep_going"] = value  # read by lockfix.engine (issue 7)


def _common(function):  # type: ignore[no-untyped-def]
    options = [
        click.argument("path", type=click.Path(path_type=Path), default=Path("uv.lock")),
        click.option(
            "--cache-dir",
            type=click.Path(path_type=Path),
            envvar="LOCKFIX_CACHE_DIR",
            help="Cache folder (default: the user cache dir).",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
        click.option(
            "--offline", is_flag=True, envvar="LOCKFIX_OFFLINE", help="Answer from the cache only."
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=16,
            show_default=True,
            help="Requests in flight at once.",
        ),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
        ),
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors."),
        click.option(
            "--keep-going",
            is_flag=True,
            expose_value=False,
            callback=_keep_going,
            help="Repair what could be verified, report the rest, exit 3 (issue 7).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _analyze(path: Path, cache_dir: Path | None, no_cache: bool, offline: bool, concurrency: int):  # type: ignore[no-untyped-def]
    from lockfix.collector import IndexClientError
    from lockfix.engine import Options, ResolutionError, analyze_lock
    from lockfix.lockfile import LockError, parse_lock

    text = read_lock_text(path)
    try:
        lock = parse_lock(text)
    except LockError as error:
        raise InputError(f"{path}: {error}") from None
    options = Options(
        cache_dir=cache_dir, no_cache=no_cache, offline=offline, concurrency=concurrency
    )
    try:
        return asyncio.run(analyze_lock(lock, path.resolve().parent, options))
    except ResolutionError as error:
        raise InputError(f"{path}: {error}") from None
    except IndexClientError as error:
        click.echo(f"lockfix: could not verify {path}: {error}", err=True)
        sys.exit(EXIT_UNVERIFIED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lockfix")
def main() -> None:
    """Check a uv.lock against the package indexes it was resolved from, and repair it."""


@main.command()
@_common
def check(
    path: Path,
    cache_dir: Path | None,
    no_cache: bool,
    offline: bool,
    concurrency: int,
    output_format: str,
    quiet: bool,
) -> None:
    """Report where the lock disagrees with its indexes; exit 1 if it does."""
    from lockfix.report import human_report, json_report

    analysis = _analyze(path, cache_dir, no_cache, offline, concurrency)
    plan = analysis.plan
    artifacts = analysis.artifact_findings  # issue 9
    if output_format == "json":
        click.echo(
            json_report(plan, analysis.warnings, changed=None, artifact_findings=artifacts),
            nl=False,
        )
    elif not quiet:
        click.echo(human_report(plan, analysis.warnings, artifacts), nl=False)
    if plan.findings or artifacts:
        sys.exit(EXIT_FINDINGS)
    if plan.failed:
        sys.exit(EXIT_UNVERIFIED)


@main.command()
@_common
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the repaired lock here instead of in place.",
)
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of the change.")
@click.option("--dry-run", is_flag=True, help="Do not write anything.")
@click.option(
    "--accept-index-artifacts",
    is_flag=True,
    help="Replace locked sdists/wheels that disagree with the index by the index's entries.",
)
def repair(
    path: Path,
    cache_dir: Path | None,
    no_cache: bool,
    offline: bool,
    concurrency: int,
    output_format: str,
    quiet: bool,
    output: Path | None,
    show_diff: bool,
    dry_run: bool,
    accept_index_artifacts: bool,
) -> None:
    """Rewrite the lock's dependency edges and packages to match its indexes."""
    from lockfix.lockfile import LockError
    from lockfix.report import human_report, json_report, unified_diff
    from lockfix.writer import apply_plan, replace_lock_artifacts

    analysis = _analyze(path, cache_dir, no_cache, offline, concurrency)
    plan = analysis.plan
    # issue 9: locked artifacts the index disagrees with are only replaced on request.
    artifacts = analysis.artifact_findings
    refuse = bool(artifacts) and not accept_index_artifacts
    try:
        new_text = apply_plan(analysis.lock, plan)
        if artifacts and not refuse:
            new_text = replace_lock_artifacts(new_text, analysis.artifact_replacements)
    except LockError as error:
        raise InputError(f"{path}: refusing to write: {error}") from None
    changed = new_text != analysis.lock.text and not refuse
    if output_format == "json":
        report = json_report(plan, analysis.warnings, changed=changed, artifact_findings=artifacts)
        click.echo(report, nl=False)
    elif not quiet:
        click.echo(human_report(plan, analysis.warnings, artifacts), nl=False, err=show_diff)
    if refuse:
        click.echo(
            f"lockfix: refusing to write {path}: {len(artifacts)} locked artifact finding(s); "
            "check them, then pass --accept-index-artifacts to lock the index's files",
            err=True,
        )
        sys.exit(EXIT_FINDINGS)
    if artifacts and not quiet and output_format == "text":
        from lockfix.artifacts import describe_replacements

        lines = describe_replacements(analysis.lock.packages, analysis.artifact_replacements)
        click.echo("".join(f"{line}\n" for line in lines), nl=False, err=True)
    if show_diff and changed:
        color = sys.stdout.isatty()
        click.echo(unified_diff(analysis.lock.text, new_text, str(path), color=color), nl=False)
    if dry_run:
        return
    destination = output or path
    if changed or (output is not None):
        write_atomically(destination, new_text)
        if not quiet and output_format == "text":
            click.echo(f"wrote {destination}", err=True)
    if plan.failed:  # --keep-going (issue 7): the verified part is written, not the rest
        sys.exit(EXIT_UNVERIFIED)


if __name__ == "__main__":
    main()
