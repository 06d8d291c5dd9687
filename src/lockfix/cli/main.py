"""The command line: ``check``, ``repair``, ``explain`` and ``cache``. Thin by design."""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from lockfix import __version__
from lockfix.errors import InputError
from lockfix.safeio import check_output, read_lock_text, write_atomically

if TYPE_CHECKING:
    from lockfix.engine import Analysis
    from lockfix.lock.lockfile import Lock
    from lockfix.settings import Settings

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_UNVERIFIED = 3
PROGRESS_AFTER = 1.0  # seconds before a progress line appears


class Unverified(click.ClickException):
    exit_code = EXIT_UNVERIFIED

    def show(self, file: IO[Any] | None = None) -> None:
        from lockfix.cli.report import printable  # the message may quote what an index sent
        from lockfix.urls import redact_text

        message = redact_text(self.format_message())
        click.echo(printable(f"lockfix: could not verify {message}"), err=True)


class BadInput(click.ClickException):
    """An :class:`~lockfix.errors.InputError` as the command line shows it."""

    exit_code = EXIT_INPUT

    def show(self, file: IO[Any] | None = None) -> None:
        from lockfix.urls import redact_text  # the message may quote a URL of the lock

        click.echo(f"lockfix: error: {redact_text(self.format_message())}", err=True)


@contextmanager
def _input_errors() -> Iterator[None]:
    """Show lockfix's :class:`~lockfix.errors.InputError` as click shows its own errors."""
    try:
        yield
    except InputError as error:
        raise BadInput(str(error)) from None


@dataclass(slots=True)
class RunOptions:
    """The command line's options as given; :func:`lockfix.settings.resolve` turns them and
    the project's ``[tool.lockfix]`` into the settings the pipeline takes."""

    cache_dir: Path | None
    no_cache: bool
    offline: bool
    concurrency: int | None
    output_format: str
    quiet: bool
    verbose: bool
    keep_going: bool = False
    single_wheel: bool = False  # wheels that disagree: uv's one-wheel view


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


def _cache_root(run: RunOptions) -> Path:
    import platformdirs  # lockfix.index.cache would pull in the whole metadata layer

    return run.cache_dir or platformdirs.user_cache_path("lockfix")


def _warn_old_uv(run: RunOptions) -> None:
    if run.quiet:
        return
    from lockfix.cli.uvversion import old_uv_warning, uv_version

    warning = old_uv_warning(uv_version(None if run.no_cache else _cache_root(run)))
    if warning is not None:
        click.echo(warning, err=True)


@contextmanager
def _progress(run: RunOptions) -> Iterator[Callable[[int, int], None] | None]:
    """A ``[n/N]`` line on a terminal's stderr, once a run has taken longer than a second."""
    if run.quiet or run.verbose or not sys.stderr.isatty():
        yield None
        return
    started = time.monotonic()
    shown = False

    def update(done: int, total: int) -> None:
        nonlocal shown
        if time.monotonic() - started < PROGRESS_AFTER:
            return
        shown = True
        sys.stderr.write(f"\rlockfix: [{done}/{total}] packages checked")
        sys.stderr.flush()

    try:
        yield update
    finally:
        if shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _verbose(analysis: Analysis) -> None:
    from lockfix.cli.report import index_label, printable, unverified_status

    plan = analysis.plan
    wrong = {f.package for f in [*plan.findings, *analysis.artifact_findings]}
    for package in sorted(analysis.lock.packages, key=lambda p: p.id.sort_key()):
        if not package.source.is_registry:
            continue
        label = f"{package.name} {package.version} ({index_label(package.source.location)})"
        if package.id in plan.unverified:
            status = unverified_status(plan, package.id)
            verdict = "skipped" if status == "skipped" else "not verified"
            line = f"lockfix: {verdict}: {label}: {plan.unverified[package.id]}"
        elif package.id in wrong:
            line = f"lockfix: wrong: {label}"
        else:
            line = f"lockfix: verified: {label}"
        click.echo(printable(line), err=True)
    shared = " (in 2 processes)" if analysis.processes > 1 else ""
    click.echo(f"lockfix: {analysis.requests} request(s) to the indexes{shared}", err=True)


def _analyze(
    path: Path, run: RunOptions, *, write: bool = False, package_facts: bool = True
) -> Analysis:
    """Check the lock at ``path``; lockfix's errors come back as click's (exit 2 or 3)."""
    from lockfix.engine import ResolutionError
    from lockfix.errors import IndexClientError
    from lockfix.index.http import TLSSettingsError
    from lockfix.lock.project import ProjectError

    try:
        return _analyze_path(path, run, write, package_facts)
    except InputError as error:
        raise BadInput(str(error)) from None
    except ResolutionError as error:
        raise BadInput(f"{path}: {error}") from None
    except (TLSSettingsError, ProjectError) as error:
        raise BadInput(str(error)) from None
    except IndexClientError as error:
        raise Unverified(f"{path}: {error}") from None


def _analyze_path(path: Path, run: RunOptions, write: bool, package_facts: bool) -> Analysis:
    from lockfix import _shard
    from lockfix.settings import SettingsError, check_environment

    try:
        check_environment()
    except SettingsError as error:
        raise InputError(str(error)) from None
    text = read_lock_text(path)
    # The second process is started first, so that its start-up overlaps ours; start_shard
    # gives it work, or it is ended unused.
    spawned = _shard.Worker.spawn() if _shard.wanted(len(text), run.offline) else None
    try:
        return _analyze_text(path, text, run, spawned, write, package_facts)
    finally:
        if spawned is not None:
            spawned.close()


def _check_project_files(lock_dir: Path) -> None:
    """A ``pyproject.toml`` or ``uv.toml`` beside the lock must be a regular file (or
    absent): a FIFO would block the read, a device might never end it."""
    import stat

    from lockfix._files import kind

    for name in ("pyproject.toml", "uv.toml"):
        try:
            mode = (lock_dir / name).stat().st_mode
        except OSError:
            continue  # absent (or unreadable: reported where it is read)
        if not stat.S_ISREG(mode):
            raise InputError(f"{lock_dir / name}: {kind(mode)}, not a regular file")


def _block_store(run: RunOptions) -> Any:
    """Where the documents of lock blocks seen before are kept; None without a cache."""
    from lockfix.facts import FactsStore, enabled
    from lockfix.index.cache import default_cache_dir

    if run.no_cache or not enabled():
        return None
    return FactsStore(run.cache_dir if run.cache_dir is not None else default_cache_dir())


def _settings(lock_dir: Path, lock: Lock, run: RunOptions, **given: bool) -> Settings:
    """The run's settings: the command line's, the environment's and ``[tool.lockfix]``;
    the project's configuration is read here too, so that its errors come first."""
    from lockfix.lock.project import ProjectError, load_config
    from lockfix.settings import SettingsError, load_file_settings, resolve

    _check_project_files(lock_dir)
    try:
        file = load_file_settings(lock_dir)
        settings = resolve(
            file,
            cache_dir=run.cache_dir,
            no_cache=run.no_cache,
            offline=run.offline,
            concurrency=run.concurrency,
            single_wheel=run.single_wheel,
            keep_going=run.keep_going,
            **given,
        )
        load_config(lock_dir, lock)  # its errors before any request or second process
    except (SettingsError, ProjectError) as error:
        raise InputError(str(error)) from None
    if file.unknown and not run.quiet:
        click.echo(
            f"lockfix: warning: {lock_dir / 'pyproject.toml'}: unknown [tool.lockfix] "
            f"key(s) ignored: {', '.join(file.unknown)}",
            err=True,
        )
    return settings


def _analyze_text(
    path: Path, text: str, run: RunOptions, spawned: Any, write: bool, package_facts: bool
) -> Analysis:
    from lockfix.engine import analyze_lock, start_shard
    from lockfix.lock.lockfile import LockError, parse_lock

    blocks = _block_store(run) if package_facts else None
    try:
        lock = parse_lock(text, blocks)
    except LockError as error:
        raise InputError(f"{path}: {error}") from None
    finally:
        if blocks is not None:
            blocks.close()
    lock_dir = path.resolve().parent
    settings = _settings(lock_dir, lock, run, write=write, package_facts=package_facts)
    import asyncio  # not at the top: commands that run no check never load it

    worker = start_shard(lock, lock_dir, settings, spawned) if spawned is not None else None
    try:
        with _progress(run) as progress:
            coroutine = analyze_lock(lock, lock_dir, settings, progress=progress, worker=worker)
            analysis = asyncio.run(coroutine)
    finally:
        if worker is not None:
            worker.close()
    if run.verbose:
        _verbose(analysis)
    return analysis


def _report_failed(path: Path, analysis: Analysis) -> None:
    """One line on stderr when packages could not be verified (the report is on stdout)."""
    if analysis.plan.failed:
        from lockfix.cli.report import printable
        from lockfix.engine import failed_summary
        from lockfix.urls import redact_text

        line = f"lockfix: could not verify {path}: {failed_summary(analysis.plan)}"
        click.echo(printable(redact_text(line)), err=True)


def _verdict_cache(path: Path, run: RunOptions) -> tuple[Any, str | None]:
    """The verdict cache and this check's key, or (None, None) when it must not be used."""
    from lockfix._files import read_regular
    from lockfix.cli.verdicts import VerdictCache, reusable, verdict_key

    if run.no_cache or run.offline or run.verbose or not reusable():
        return None, None
    try:
        data = read_regular(path)
    except OSError:
        return None, None  # reported by read_lock_text
    key = verdict_key(
        data,
        str(path),
        output_format=run.output_format,
        single_wheel=run.single_wheel,
        concurrency=run.concurrency,
    )
    return VerdictCache(_cache_root(run)), key


def _emit(report: Any, documents: list[Any], run: RunOptions) -> None:
    if run.output_format == "json":
        documents.append(report)
    elif run.output_format == "github" or not run.quiet:
        click.echo(report, nl=False)


# Several paths: an input error outranks findings, which outrank "could not verify".
_SEVERITY = {EXIT_CLEAN: 0, EXIT_UNVERIFIED: 1, EXIT_FINDINGS: 2, EXIT_INPUT: 3}


def _for_each_path(
    paths: tuple[Path, ...], run: RunOptions, one: Callable[[Path, list[Any]], int]
) -> NoReturn:
    """Run ``one`` on every path (default ``uv.lock``), print JSON, exit with the worst code."""
    import json

    paths = paths or (Path("uv.lock"),)
    codes: list[int] = []
    documents: list[Any] = []
    for path in paths:
        if len(paths) > 1 and run.output_format == "text" and not run.quiet:
            click.echo(f"==> {path} <==")
        try:
            with _input_errors():
                codes.append(one(path, documents))
        except click.ClickException as error:
            error.show()
            codes.append(error.exit_code)
            if run.output_format == "github":
                from lockfix.cli.report import github_error

                click.echo(github_error(str(path), error.format_message()))
    if run.output_format == "json" and documents:
        document = documents[0] if len(paths) == 1 else documents
        click.echo(json.dumps(document, indent=2))
    sys.exit(max(codes, key=_SEVERITY.__getitem__))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    run = RunOptions(**raw)
    _warn_old_uv(run)

    def one(path: Path, documents: list[Any]) -> int:
        verdicts, key = _verdict_cache(path, run)
        if verdicts is not None and key is not None:
            stored = verdicts.get(key)
            if stored is not None:
                _emit(stored, documents, run)
                return EXIT_CLEAN
        # not at the top: a reused verdict needs none of the pipeline
        from lockfix.cli.report import github_report, human_report, json_document

        analysis = _analyze(path, run)
        plan = analysis.plan
        artifacts = analysis.artifact_findings
        report: Any
        if run.output_format == "json":
            report = json_document(
                plan, analysis.warnings, changed=None, artifact_findings=artifacts, path=str(path)
            )
        elif run.output_format == "github":
            report = github_report(analysis.lock, str(path), plan, analysis.warnings, artifacts)
        else:
            report = human_report(plan, analysis.warnings, artifacts)
        _emit(report, documents, run)
        _report_failed(path, analysis)
        if plan.findings or artifacts:
            return EXIT_FINDINGS
        if plan.failed:
            return EXIT_UNVERIFIED
        if verdicts is not None and key is not None:
            verdicts.put(key, report, analysis.fresh_until)
        return EXIT_CLEAN

    _for_each_path(paths, run, one)


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
        with _input_errors():
            check_output(output)  # before any work: a FIFO or a device is never written
    _warn_old_uv(run)
    job = _Repair(run, output, show_diff, dry_run, exit_non_zero_on_fix, accept_index_artifacts)
    _for_each_path(paths, run, job.one)


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
        analysis = _analyze(path, self.run, write=True)
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
            _report_failed(path, analysis)
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
    analysis = _analyze(path, run, package_facts=False)  # it shows every file's metadata
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
    r"(?:metadata|pages|verdicts)-v\d+"
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
