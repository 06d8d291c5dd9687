"""What the ``check`` command does, and what every command shares to check a lock, without
click: :mod:`lockfix.cli._entry` runs the plain form of ``check`` with this module alone,
and :mod:`lockfix.cli.main` (click) runs the others. Messages, exit codes and output are
the command line's own, as click would print them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lockfix.errors import InputError
from lockfix.safeio import read_lock_text

if TYPE_CHECKING:
    from lockfix.engine import Analysis
    from lockfix.lock.lockfile import Lock
    from lockfix.settings import Settings

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_UNVERIFIED = 3
PROGRESS_AFTER = 1.0  # seconds before a progress line appears


class CommandError(Exception):
    """An error the command line reports in one line on stderr, ending with ``exit_code``
    (as click shows its own errors, without importing click)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def format_message(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message

    def show(self) -> None:
        echo(f"Error: {self.format_message()}", err=True)


class Unverified(CommandError):
    exit_code = EXIT_UNVERIFIED

    def show(self) -> None:
        from lockfix.cli.report import printable  # the message may quote what an index sent
        from lockfix.urls import redact_text

        message = redact_text(self.format_message())
        echo(printable(f"lockfix: could not verify {message}"), err=True)


class BadInput(CommandError):
    """An :class:`~lockfix.errors.InputError` as the command line shows it."""

    exit_code = EXIT_INPUT

    def show(self) -> None:
        from lockfix.urls import redact_text  # the message may quote a URL of the lock

        echo(f"lockfix: error: {redact_text(self.format_message())}", err=True)


@contextmanager
def input_errors() -> Iterator[None]:
    """Show lockfix's :class:`~lockfix.errors.InputError` as click shows its own errors."""
    try:
        yield
    except InputError as error:
        raise BadInput(str(error)) from None


class RunOptions:
    """The command line's options as given; :func:`lockfix.settings.resolve` turns them and
    the project's ``[tool.lockfix]`` into the settings the pipeline takes."""

    __slots__ = (
        "cache_dir",
        "concurrency",
        "keep_going",
        "missed_verdict",
        "no_cache",
        "offline",
        "output_format",
        "quiet",
        "single_wheel",
        "verbose",
    )

    def __init__(
        self,
        cache_dir: Path | None,
        no_cache: bool,
        offline: bool,
        concurrency: int | None,
        output_format: str,
        quiet: bool,
        verbose: bool,
        keep_going: bool = False,
        single_wheel: bool = False,  # wheels that disagree: uv's one-wheel view
        # the verdict key of the one lock to check, already looked up and missed (by the
        # command line's fast path): neither the lock's digest nor the lookup is repeated
        missed_verdict: str | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.no_cache = no_cache
        self.offline = offline
        self.concurrency = concurrency
        self.output_format = output_format
        self.quiet = quiet
        self.verbose = verbose
        self.keep_going = keep_going
        self.single_wheel = single_wheel
        self.missed_verdict = missed_verdict


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Write ``message`` to stdout (``err``: stderr) and flush, as ``click.echo`` does.

    click itself writes what it would change: ANSI codes it strips from a stream that is not
    a terminal, and a stream it would re-open (ASCII, or no encoding)."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    encoding = getattr(stream, "encoding", None)
    if "\x1b" in message or not encoding or getattr(stream, "errors", None) is None:
        plain = False
    else:
        import codecs

        try:
            plain = codecs.lookup(encoding).name != "ascii"
        except LookupError:
            plain = True
    if not plain:
        import click

        click.echo(message, err=err, nl=nl)
        return
    out = f"{message}\n" if nl else message
    if out:
        stream.write(out)
    stream.flush()


def _cache_root(run: RunOptions) -> Path:
    if run.cache_dir is not None:
        return run.cache_dir
    import platformdirs  # lockfix.index.cache would pull in the whole metadata layer

    return platformdirs.user_cache_path("lockfix")


def warn_old_uv(run: RunOptions) -> None:
    if run.quiet:
        return
    from lockfix.cli.uvversion import old_uv_warning, uv_version

    warning = old_uv_warning(uv_version(None if run.no_cache else _cache_root(run)))
    if warning is not None:
        echo(warning, err=True)


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
        echo(printable(line), err=True)
    shared = " (in 2 processes)" if analysis.processes > 1 else ""
    echo(f"lockfix: {analysis.requests} request(s) to the indexes{shared}", err=True)


def analyze(
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
    # Against a cache no check has used yet, the second process is started first, so that
    # its start-up overlaps ours; start_shard gives it work, or it is ended unused. Against
    # a used cache most blocks are known and the process would mostly be ended unused (a
    # tenth of a second spent): _analyze_text starts it once it has seen enough new blocks.
    wanted = _shard.wanted(len(text), run.offline)
    forced = _shard.setting() == "2"
    early = wanted and (forced or not package_facts or not _cache_used(run))
    spawned = _shard.Worker.spawn() if early else None
    try:
        return _analyze_text(path, text, run, spawned, write, package_facts, late=wanted)
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


# new blocks (packages a check has not seen) worth a second process started after parsing
LATE_SHARD_BLOCKS = 40


def _cache_used(run: RunOptions) -> bool:
    """Whether a check has stored package facts in the run's cache."""
    from lockfix.facts import FACTS_DATABASE
    from lockfix.index.cache import default_cache_dir

    if run.no_cache:
        return False
    root = run.cache_dir if run.cache_dir is not None else default_cache_dir()
    return (root / FACTS_DATABASE).is_file()


def _late_worker(new_blocks: int) -> Any:
    """A second process, when ``new_blocks`` are enough to be worth it."""
    if new_blocks < LATE_SHARD_BLOCKS:
        return None
    from lockfix import _shard

    return _shard.Worker.spawn()


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
        echo(
            f"lockfix: warning: {lock_dir / 'pyproject.toml'}: unknown [tool.lockfix] "
            f"key(s) ignored: {', '.join(file.unknown)}",
            err=True,
        )
    return settings


def _analyze_text(
    path: Path,
    text: str,
    run: RunOptions,
    spawned: Any,
    write: bool,
    package_facts: bool,
    *,
    late: bool = False,
) -> Analysis:
    """Parse and check ``text``; ``late``: start a second process (unless ``spawned``
    already is one) when the lock has enough blocks new to the cache."""
    from lockfix.engine import analyze_lock, start_shard
    from lockfix.lock.lockfile import LockError, parse_lock

    blocks = _block_store(run) if package_facts else None
    try:
        lock = parse_lock(text, blocks)
        if late and spawned is None and blocks is not None:
            spawned = _late_worker(blocks.new_records)
    except LockError as error:
        raise InputError(f"{path}: {error}") from None
    finally:
        if blocks is not None:
            blocks.close()
    lock_dir = path.resolve().parent
    try:
        settings = _settings(lock_dir, lock, run, write=write, package_facts=package_facts)
        worker = start_shard(lock, lock_dir, settings, spawned) if spawned is not None else None
        with _progress(run) as progress:
            analysis = analyze_lock(lock, lock_dir, settings, progress=progress, worker=worker)
    finally:
        if spawned is not None:
            spawned.close()  # the worker start_shard gave work to, or one started here
    if run.verbose:
        _verbose(analysis)
    return analysis


def report_failed(path: Path, analysis: Analysis) -> None:
    """One line on stderr when packages could not be verified (the report is on stdout)."""
    if analysis.plan.failed:
        from lockfix.cli.report import printable
        from lockfix.engine import failed_summary
        from lockfix.urls import redact_text

        line = f"lockfix: could not verify {path}: {failed_summary(analysis.plan)}"
        echo(printable(redact_text(line)), err=True)


def _verdict_cache(path: Path, run: RunOptions) -> tuple[Any, str | None]:
    """The verdict cache and this check's key, or (None, None) when it must not be used."""
    from lockfix._files import read_regular
    from lockfix.cli.verdicts import VerdictCache, reusable, verdict_key

    if run.no_cache or run.offline or run.verbose or not reusable():
        return None, None
    if run.missed_verdict is not None:
        return VerdictCache(_cache_root(run)), run.missed_verdict
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


def _lineage(path: Path, run: RunOptions) -> tuple[Any, str] | None:
    """The lock summaries and this check's lineage (:mod:`lockfix.carryover`); None when
    summaries are not kept (as verdicts, and not without stored package facts)."""
    from lockfix.carryover import SummaryStore
    from lockfix.cli.verdicts import lineage_key
    from lockfix.facts import enabled

    if not enabled():
        return None
    lineage = lineage_key(
        str(path),
        output_format=run.output_format,
        single_wheel=run.single_wheel,
        concurrency=run.concurrency,
    )
    return SummaryStore(_cache_root(run)), lineage


def _remember_summary(path: Path, run: RunOptions, analysis: Analysis, report: Any) -> None:
    """Keep the summary of a lock found clean, for the check of its next version."""
    from lockfix.carryover import summarize

    found = _lineage(path, run)
    if found is None:
        return
    summary = summarize(analysis, report)
    if summary is not None:
        summaries, lineage = found
        summaries.put(lineage, summary)


def _carried_over(path: Path, run: RunOptions, verdicts: Any, key: str) -> Any | None:
    """The report of the lock at ``path`` when the last clean check of an earlier version
    carries over to it (:mod:`lockfix.carryover`), with its verdict (``key`` in
    ``verdicts``) and summary stored; None when it must be checked in full (which also
    reports any error)."""
    from lockfix import carryover
    from lockfix.engine import check_packages
    from lockfix.errors import IndexClientError
    from lockfix.facts import LoweredByDigest
    from lockfix.index.http import TLSSettingsError
    from lockfix.lock.lockfile import (
        LockError,
        block_keys,
        parse_lock,
        recorded_packages,
        split_blocks,
    )
    from lockfix.settings import SettingsError, check_environment

    try:
        check_environment()
    except SettingsError:
        return None  # reported by the full check
    found = _lineage(path, run)
    if found is None:
        return None
    summaries, lineage = found
    summary = summaries.get(lineage)
    if summary is None or (run.output_format == "github" and summary.report):
        return None  # github: its annotations name lines, which move with changed blocks
    store = _block_store(run)
    if store is None:
        return None
    lock_dir = path.resolve().parent

    def check(part: Lock) -> Any:
        settings = _settings(lock_dir, part, run, write=False, package_facts=True)
        return check_packages(part, lock_dir, settings, part.packages, store)

    try:
        blocks = split_blocks(read_lock_text(path))
        outcome = carryover.carry_over(
            summary,
            blocks,
            block_keys(blocks),
            lambda text: parse_lock(text, store, references=False),
            lambda keys: recorded_packages(store, keys),
            check,
            lambda rules: LoweredByDigest(store, rules),
        )
    except (LockError, InputError, IndexClientError, TLSSettingsError):
        return None  # the full check reports it
    finally:
        store.close()
    if outcome.summary is None:
        return None
    summaries.put(lineage, outcome.summary)
    verdicts.put(key, outcome.report, outcome.summary.fresh_until)
    return outcome.report


def _emit(report: Any, documents: list[Any], run: RunOptions) -> None:
    if run.output_format == "json":
        documents.append(report)
    elif run.output_format == "github" or not run.quiet:
        echo(report, nl=False)


# Several paths: an input error outranks findings, which outrank "could not verify".
_SEVERITY = {EXIT_CLEAN: 0, EXIT_UNVERIFIED: 1, EXIT_FINDINGS: 2, EXIT_INPUT: 3}


def for_each_path(
    paths: tuple[Path, ...], run: RunOptions, one: Callable[[Path, list[Any]], int]
) -> NoReturn:
    """Run ``one`` on every path (default ``uv.lock``), print JSON, exit with the worst code."""
    import json

    paths = paths or (Path("uv.lock"),)
    codes: list[int] = []
    documents: list[Any] = []
    for path in paths:
        if len(paths) > 1 and run.output_format == "text" and not run.quiet:
            echo(f"==> {path} <==")
        try:
            with input_errors():
                codes.append(one(path, documents))
        except CommandError as error:
            error.show()
            codes.append(error.exit_code)
            if run.output_format == "github":
                from lockfix.cli.report import github_error

                echo(github_error(str(path), error.format_message()))
    if run.output_format == "json" and documents:
        document = documents[0] if len(paths) == 1 else documents
        echo(json.dumps(document, indent=2))
    sys.exit(max(codes, key=_SEVERITY.__getitem__))


def check_paths(paths: tuple[Path, ...], run: RunOptions) -> NoReturn:
    """The ``check`` command: report where each lock disagrees with its indexes."""
    warn_old_uv(run)

    def one(path: Path, documents: list[Any]) -> int:
        verdicts, key = _verdict_cache(path, run)
        if verdicts is not None and key is not None and key != run.missed_verdict:
            stored = verdicts.get(key)
            if stored is not None:
                _emit(stored, documents, run)
                return EXIT_CLEAN
        carried = _carried_over(path, run, verdicts, key) if verdicts is not None and key else None
        if carried is not None:
            _emit(carried, documents, run)
            return EXIT_CLEAN
        # not at the top: a reused verdict needs none of the pipeline
        from lockfix.cli.report import github_report, human_report, json_document

        analysis = analyze(path, run)
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
        report_failed(path, analysis)
        if plan.findings or artifacts:
            return EXIT_FINDINGS
        if plan.failed:
            return EXIT_UNVERIFIED
        if verdicts is not None and key is not None:
            verdicts.put(key, report, analysis.fresh_until)
            _remember_summary(path, run, analysis, report)
        return EXIT_CLEAN

    for_each_path(paths, run, one)
