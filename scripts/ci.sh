#!/usr/bin/env bash
# The suite on the lowest Python pyproject.toml allows and on the newest, at once.
#
#   scripts/ci.sh LOWEST NEWEST        e.g. scripts/ci.sh 3.11 3.13   (make test)
#
# LOWEST runs the whole suite. NEWEST runs at the same time (niced, so that the whole
# suite keeps the cores it needs) the tests of what depends on the interpreter: asyncio, the
# HTTP session and TLS (tests/index), processes, signals, exit codes and the entry point
# (tests/cli, test_shard.py, reliability/test_interrupt.py, reliability/test_hostile.py),
# SQLite (test_facts.py), the email/JSON/HTML parsers (tests/dist), platform checks and the
# source scans. The marker algebra, the lock model, the planner and the uv scenario runs
# are pure computation on data that does not change with the interpreter: on two cores,
# running them twice would push the whole suite past ten minutes.
# Each run spreads its test files over WORKERS pytest-xdist processes (default 4: the tests
# mostly wait on loopback servers, subprocesses and retries, so more workers than cores
# keep the cores busy). `--dist loadfile` keeps a file's tests in one process, so that a
# module's fixture (a scenario index, the locks uv writes against it) is built once; the
# files are handed out longest first (tests/conftest.py).
#
# Each interpreter is `pythonX.Y` when that runs, else the newest X.Y under pyenv; its
# venv is .venv-X.Y (the uv binaries in .tools are shared).
set -uo pipefail
cd "$(dirname "$0")/.."
lowest=$1
newest=$2
workers=${WORKERS:-4}

find_python() {
  local version=$1 candidate
  if "python$version" -c 'pass' >/dev/null 2>&1; then
    echo "python$version"
    return
  fi
  for candidate in $(ls -d "$(pyenv root 2>/dev/null || echo ~/.pyenv)/versions/$version".* 2>/dev/null | sort -V -r); do
    if [[ -x "$candidate/bin/python$version" ]]; then
      echo "$candidate/bin/python$version"
      return
    fi
  done
  echo "ci: no Python $version (pythonX.Y on PATH or under pyenv)" >&2
  return 1
}

venv() {
  local version=$1 python directory=".venv-$1"
  python=$(find_python "$version") || return 1
  if [[ ! -x "$directory/bin/python" ]]; then
    "$python" -m venv "$directory" || return 1
    "$directory/bin/python" -m pip install --quiet --upgrade pip || return 1
  fi
  "$directory/bin/python" -m pip install --quiet -e '.[test]' || return 1
  # The editable install leaves src/ uncompiled, and the suite starts hundreds of lockfix
  # processes: compiled once here, they load the bytecode instead of compiling every module
  # again each (they cannot write it themselves under PYTHONDONTWRITEBYTECODE).
  "$directory/bin/python" -m compileall -q src fixtures || return 1
  "$directory/bin/python" --version
}

venv "$lowest" &
first_venv=$!
venv "$newest" || exit 1
wait "$first_venv" || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$SECONDS
nice -n 10 ".venv-$newest/bin/python" -m pytest -q -p no:cacheprovider \
  -n "$workers" --dist loadfile tests/index tests/cli tests/dist tests/test_*.py \
  tests/reliability/test_interrupt.py tests/reliability/test_hostile.py >"$log" 2>&1 &
second=$!

echo "== Python $lowest: the whole suite (Python $newest runs beside it)"
".venv-$lowest/bin/python" -m pytest -q -n "$workers" --dist loadfile
first_status=$?
echo "== Python $lowest: exit $first_status after $((SECONDS - started)) s"

wait "$second"
second_status=$?
echo "== Python $newest: the tests of what depends on the interpreter:" \
  "exit $second_status after $((SECONDS - started)) s"
cat "$log"
if ((first_status != 0)); then
  exit "$first_status"
fi
exit "$second_status"
