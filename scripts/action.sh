#!/usr/bin/env bash
# The logic of the lockfix GitHub Action (action.yml runs it). It also runs locally in any
# git checkout, which is how tests/cli/test_integrations.py exercises it.
#
# Inputs (environment):
#   INPUT_PATH      the lock, default uv.lock
#   INPUT_MODE      check (exit 1 on findings, GitHub annotations) or repair (commit + push)
#   INPUT_VERSION   lockfix version to pip-install from PyPI; empty: this action's own source
# Switches for local runs and tests:
#   LOCKFIX_SKIP_INSTALL=1   use the `lockfix` on PATH instead of installing one
#   LOCKFIX_NO_PUSH=1        commit the repair but do not push it
set -euo pipefail

lock="${INPUT_PATH:-uv.lock}"
mode="${INPUT_MODE:-check}"
version="${INPUT_VERSION:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "$mode" in
  check | repair) ;;
  *)
    echo "lockfix action: mode must be 'check' or 'repair', not '$mode'" >&2
    exit 2
    ;;
esac

lockfix=lockfix
if [[ "${LOCKFIX_SKIP_INSTALL:-}" != 1 ]]; then
  # A private venv: the runner's system Python refuses pip installs (PEP 668).
  venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/lockfix-action-venv"
  # lockfix needs Python 3.11 or newer; a runner's python3 may be older (ubuntu-22.04: 3.10).
  python=""
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
  if [[ -z "$python" ]]; then
    echo "lockfix action: lockfix needs Python 3.11 or newer (actions/setup-python first)" >&2
    exit 2
  fi
  "$python" -m venv "$venv"
  if [[ -n "$version" ]]; then
    spec="lockfix==$version"
  else
    spec="${GITHUB_ACTION_PATH:-$here}"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
  lockfix="$venv/bin/lockfix"
fi

if [[ "$mode" == check ]]; then
  exec "$lockfix" check --format github "$lock"
fi

status=0
"$lockfix" repair "$lock" || status=$?
if [[ $status -ne 0 ]]; then
  exit "$status"
fi
if git diff --quiet -- "$lock"; then
  echo "lockfix: $lock is correct; nothing to commit"
  echo "changed=false" >>"${GITHUB_OUTPUT:-/dev/null}"
  exit 0
fi
git config user.name "${LOCKFIX_GIT_NAME:-github-actions[bot]}"
git config user.email "${LOCKFIX_GIT_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}"
git add -- "$lock"
git commit --quiet -m "lockfix: repair $lock"
echo "changed=true" >>"${GITHUB_OUTPUT:-/dev/null}"
if [[ "${LOCKFIX_NO_PUSH:-}" == 1 ]]; then
  echo "lockfix: committed $(git rev-parse --short HEAD); not pushing (LOCKFIX_NO_PUSH=1)"
  exit 0
fi
# Pull requests check out a detached merge commit: push to the PR's branch by name.
branch="${GITHUB_HEAD_REF:-${GITHUB_REF_NAME:-$(git rev-parse --abbrev-ref HEAD)}}"
git push origin "HEAD:refs/heads/$branch"
echo "lockfix: pushed the repair to $branch"
