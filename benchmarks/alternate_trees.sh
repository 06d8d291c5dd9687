#!/usr/bin/env bash
# make bench for two checkouts of lockfix, alternating, in one session:
#
#   benchmarks/alternate_trees.sh BEFORE_DIR AFTER_DIR [ROUNDS] [-- benchmarks.run options]
#
# Each directory needs its own .venv (make venv) and .tools (make tools). The tables go to
# stdout; the runs' JSON to /tmp/bench-{before,after}-ROUND.json.
set -euo pipefail
before=$1 after=$2 rounds=${3:-2}
shift $(($# < 3 ? $# : 3))
[[ ${1:-} == -- ]] && shift
options=("$@")
((${#options[@]})) || options=(--sizes 5000 --real --reps 5 --cold-reps 2)
for round in $(seq "$rounds"); do
  for side in before after; do
    dir=${!side}
    echo "=== round $round: $side ($(git -C "$dir" log --oneline -1)) $(date +%T)"
    (cd "$dir" && .venv/bin/python -m benchmarks.run "${options[@]}" \
      --json "/tmp/bench-$side-$round.json" 2>/dev/null)
  done
done
