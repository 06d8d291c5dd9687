from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The test files that take longest, longest first. Under `--dist loadfile` a file runs whole
# in one worker, so one of these taken up last keeps the run going while the other workers
# are done: they are collected first, and pytest-xdist hands files out in collection order
# (see pytest_configure). The other files follow in their usual order; a file not named
# here only loses its head start.
LONGEST_FIRST = (
    "tests/reliability/test_faults.py",
    "tests/reliability/test_bad_input.py",
    "tests/test_facts.py",
    "tests/scenarios/test_wheels.py",
    "tests/scenarios/test_lock_scenarios.py",
    "tests/cli/test_features.py",
    "tests/reliability/test_interrupt.py",
    "tests/cli/test_integrations.py",
    "tests/markers/test_markers.py",
    "tests/cli/test_verdicts.py",
    "tests/test_carryover.py",
    "tests/analysis/test_artifacts.py",
    "tests/reliability/test_hostile.py",
    "tests/dist/test_names.py",
    "tests/test_shard.py",
)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist (3.8 and later: --no-loadscope-reorder) would otherwise start with the
    # files of most tests, whatever their length
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    # stable: the tests of a file keep their order
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
