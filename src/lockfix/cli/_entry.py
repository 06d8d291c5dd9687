"""The ``lockfix`` command's entry point.

A pre-commit hook runs ``lockfix check`` on every commit, mostly on a lock that was already
found clean. Such a check is answered here from the verdict cache (:mod:`lockfix.cli.verdicts`)
before the command line (click) or any of the pipeline is imported, which halves its start-up.
On a cache miss, the plain forms are checked here too, by :mod:`lockfix.cli.checking`, still
without click; anything else goes to :mod:`lockfix.cli.main`. Both print the same.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False  # the start-up path does not import typing

if TYPE_CHECKING:
    from typing import Any, NoReturn

_FORMATS = ("text", "json", "github")


def _plain_check(argv: list[str]) -> dict[str, Any] | None:
    """The options of ``check [--cache-dir D] [--format F] [--concurrency N] [--offline] [-q]
    [PATH]``.

    None for anything else: those go to click, which also owns every error message."""
    if not argv or argv[0] != "check" or os.environ.get("LOCKFIX_OFFLINE"):
        return None
    parsed: dict[str, Any] = {
        "cache_dir": os.environ.get("LOCKFIX_CACHE_DIR") or None,
        "format": "text",
        "concurrency": None,
        "quiet": False,
        "offline": False,
    }
    paths: list[str] = []
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in ("-q", "--quiet"):
            parsed["quiet"] = True
            continue
        if argument == "--offline":
            parsed["offline"] = True
            continue
        name, equals, value = argument.partition("=")
        if name not in ("--cache-dir", "--format", "--concurrency"):
            if argument.startswith("-") or not argument:
                return None
            paths.append(argument)
            continue
        if not equals:
            value = next(arguments, "")
        if name == "--cache-dir":
            if not value:
                return None
            parsed["cache_dir"] = value
        elif name == "--format":
            if value not in _FORMATS:
                return None
            parsed["format"] = value
        else:
            if not value.isdigit() or not 1 <= int(value) <= 256:
                return None
            parsed["concurrency"] = int(value)
    if len(paths) > 1:
        return None
    parsed["path"] = paths[0] if paths else "uv.lock"
    return parsed


def reused_verdict(parsed: dict[str, Any]) -> bool:
    """Answer a plain ``check`` from a stored clean verdict; False when it can't be answered
    (after a lookup that missed, its key is left in ``parsed["missed_verdict"]``)."""
    if parsed["offline"]:
        return False  # a verdict rests on fresh index pages, which --offline never reads
    from lockfix._files import read_regular
    from lockfix.cli.verdicts import VerdictCache, reusable, verdict_key

    if not reusable():
        return False
    try:
        # never open() a FIFO (it blocks) or read a device (it may never end)
        data = read_regular(parsed["path"])
    except OSError:
        return False  # the CLI reports it
    root = parsed["cache_dir"]
    if root is None:
        import platformdirs

        root = platformdirs.user_cache_path("lockfix")
    key = verdict_key(
        data, parsed["path"], output_format=parsed["format"], concurrency=parsed["concurrency"]
    )
    report = VerdictCache(root).get(key)
    if report is None or (
        parsed["format"] != "json" and (not isinstance(report, str) or "\x1b" in report)
    ):
        parsed["missed_verdict"] = key
        return False
    if not parsed["quiet"]:
        from lockfix.cli.uvversion import old_uv_warning, uv_version

        warning = old_uv_warning(uv_version(root))
        if warning is not None:
            print(warning, file=sys.stderr)
    if parsed["format"] == "json":
        import json

        print(json.dumps(report, indent=2))
    elif parsed["format"] == "github" or not parsed["quiet"]:
        sys.stdout.write(report)
    return True


EXIT_INTERRUPTED = 130  # Ctrl-C, as Python and uv report it (128 + SIGINT)


_exit_status = 1  # what the process ends with: an uncaught exception's 1 until main() decides


# Modules that run at start-up and may register exit handlers before main() does (coverage's
# subprocess hook is one): with any of them loaded, the process exits normally.
_START_UP_HOOKS = ("sitecustomize", "usercustomize", "coverage")


def _end_without_teardown() -> None:
    """The last exit handler to run (handlers run in reverse order of registration, and
    :func:`main` registers it first): every other handler has run, so end the process here,
    skipping the interpreter's teardown, which frees a full analysis object by object."""
    status = _exit_status
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: what Python itself reports as 120
            status = status or 120
    os._exit(status)


def _exit_now(done: SystemExit) -> NoReturn:
    """Exit as ``done`` would; a Ctrl-C from now on no longer changes the exit code."""
    import signal

    global _exit_status
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = done.code
    if code is None or isinstance(code, int):
        _exit_status = code or 0
    else:
        print(code, file=sys.stderr)
        _exit_status = 1
    sys.exit(_exit_status)


def _interrupted() -> NoReturn:
    print("Aborted!", file=sys.stderr)
    _exit_now(SystemExit(EXIT_INTERRUPTED))


def _run(cli: Any) -> int:
    """Run the click command line; what it ends with, as an exit code.

    Not click's standalone mode: that reports Ctrl-C as "Aborted!" with exit 1, the code
    ``check`` uses for findings."""
    import click

    try:
        result = cli.main(prog_name="lockfix", standalone_mode=False)
    except click.Abort as abort:
        if isinstance(abort.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        print("Aborted!", file=sys.stderr)
        return 1
    except click.ClickException as error:
        error.show()
        return error.exit_code
    return result if isinstance(result, int) else 0


class _PipeClosedFlush:
    """A standard stream whose flush ignores a closed pipe, as click leaves stdout and
    stderr when the reader of its output has gone."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as error:
            if error.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _run_plain(parsed: dict[str, Any]) -> int:
    """Run a plain ``check`` (:func:`_plain_check`) without click, as :func:`_run` runs
    click's: the same output, messages and exit codes, Ctrl-C and a closed pipe included."""
    from pathlib import Path

    from lockfix.cli.checking import CommandError, RunOptions, check_paths

    cache_dir = parsed["cache_dir"]
    run = RunOptions(
        cache_dir=None if cache_dir is None else Path(cache_dir),
        no_cache=False,
        offline=parsed["offline"],
        concurrency=parsed["concurrency"],
        output_format=parsed["format"],
        quiet=parsed["quiet"],
        verbose=False,
        missed_verdict=parsed.get("missed_verdict"),
    )
    try:
        check_paths((Path(parsed["path"]),), run)
    except CommandError as error:
        error.show()
        return error.exit_code
    except (EOFError, KeyboardInterrupt) as interrupt:
        print(file=sys.stderr, flush=True)  # the blank line that closes the terminal's ^C
        if isinstance(interrupt, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        print("Aborted!", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno != errno.EPIPE:
            raise
        sys.stdout = _PipeClosedFlush(sys.stdout)
        sys.stderr = _PipeClosedFlush(sys.stderr)
        return 1
    return 0  # not reached: check_paths ends with the exit code


def _main() -> int:
    if os.name != "posix":  # file locks (fcntl), atomic renames and signals as on POSIX
        print("lockfix: error: lockfix runs on POSIX systems only (Linux, macOS)", file=sys.stderr)
        return 2
    try:
        parsed = _plain_check(sys.argv[1:])
        if parsed is not None:
            if reused_verdict(parsed):
                return 0
            import lockfix.cli.checking  # noqa: F401  (as cli.main below: Ctrl-C while loading)
        else:
            from lockfix.cli.main import main as cli
    except KeyboardInterrupt:  # Ctrl-C before the command line has loaded: no traceback
        return EXIT_INTERRUPTED
    if parsed is not None:
        return _run_plain(parsed)
    return _run(cli)


def main() -> None:
    import atexit
    import gc

    # A run is one short process, and what it builds (lock entries, markers, index files)
    # lives until it ends: the cyclic collector's passes would walk all of it for nothing.
    gc.disable()
    if not any(name in sys.modules for name in _START_UP_HOOKS):
        atexit.register(_end_without_teardown)
    try:
        code = _main()
    except SystemExit as done:
        _exit_now(done)
    except KeyboardInterrupt:
        _interrupted()
    _exit_now(SystemExit(code))
