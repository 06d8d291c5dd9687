#!/usr/bin/env bash
# The suite on the lowest Python pyproject.toml allows and on the newest, at once.
#
#   scripts/ci.sh LOWEST NEWEST        e.g. scripts/ci.sh 3.11 3.13   (make test)
#
# LOWEST runs the whole suite. NEWEST runs it at the same time (niced, so that the whole
# suite keeps the cores it needs), without tests/scenarios, whose time goes into uv
# resolving scenario locks and real installers: they compare the lock lockfix writes with
# the one uv writes, which depends on uv and on lockfix's planner, not on the interpreter;
# the planner's own tests (tests/analysis, tests/markers), every command-line, network,
# signal, process and packaging test run on both.
#
# Each run spreads its test files over WORKERS pytest-xdist processes (default 4: the tests
# mostly wait on loopback servers, subprocesses and retries, so more workers than cores
# keep the cores busy). `--dist loadfile` keeps a file's tests in one process, so that a
# module's fixture (a scenario index, the locks uv writes against it) is built once.
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
  -n "$workers" --dist loadfile --ignore=tests/scenarios >"$log" 2>&1 &
second=$!

echo "== Python $lowest: the whole suite (Python $newest runs beside it)"
".venv-$lowest/bin/python" -m pytest -q -n "$workers" --dist loadfile
first_status=$?
echo "== Python $lowest: exit $first_status after $((SECONDS - started)) s"

wait "$second"
second_status=$?
echo "== Python $newest: the suite without the uv scenario files:" \
  "exit $second_status after $((SECONDS - started)) s"
cat "$log"
if ((first_status != 0)); then
  exit "$first_status"
fi
exit "$second_status"
