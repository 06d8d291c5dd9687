"""``python -m benchmarks._lockfix_child <lockfix args>``: run the lockfix CLI unchanged, but
write the index client's own request counters (``RequestStats``) as JSON to the file named by
``$LOCKFIX_BENCH_STATS`` when the client closes (after requests or not), and — with
``$LOCKFIX_BENCH_PROFILE=<file>`` — profile the whole run with cProfile. Used for runs
against real PyPI, where there is no server request log; against the loopback index the
server's log is the source of truth.
"""

from __future__ import annotations

import json
import os
import sys


def _install_stats_hook(path: str) -> None:
    from lockfix.index import http

    original = http.IndexClient.close

    def close(self):  # type: ignore[no-untyped-def]
        original(self)  # called by aclose too: a run with requests ends here as well
        with open(path, "w") as f:
            json.dump(self.stats.as_dict(), f)

    http.IndexClient.close = close  # type: ignore[method-assign]


def main() -> None:
    stats = os.environ.get("LOCKFIX_BENCH_STATS")
    if stats:
        _install_stats_hook(stats)
    profile = os.environ.get("LOCKFIX_BENCH_PROFILE")
    if not profile:
        # as the installed `lockfix` command starts: a plain check runs without click
        from lockfix.cli._entry import main as entry

        sys.argv = ["lockfix", *sys.argv[1:]]
        entry()
        return
    import cProfile

    from lockfix.cli.main import main as cli

    prof = cProfile.Profile()
    try:
        prof.runcall(cli, prog_name="lockfix", standalone_mode=False)
    except SystemExit:
        pass
    finally:
        prof.dump_stats(profile)


if __name__ == "__main__":
    sys.exit(main())
