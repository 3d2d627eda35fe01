#!/usr/bin/env bash
# Runs test files that need Docker in two lanes at once, each lane one file at a time:
# the files that start JVM servers (they import test/helpers/cassandra.ts or
# elasticsearch.ts) in one lane, so the machine never holds more than one Elasticsearch
# and two Cassandra JVMs; every other file in the other. Most of an end-to-end test's time
# is waiting (servers starting, containers, fsync), so the lanes overlap well even on two
# cores. Files that start a second Docker Engine with the whole example stack (they import
# test/helpers/second-engine.ts: every datastore at once) run alone once both lanes are done.
# Each line of output is prefixed with its lane; the run fails if any lane fails.
#   scripts/test-lanes.sh <node> <test file>...      TEST_LANES=1: one lane (debugging)
set -uo pipefail
node=$1
shift
jvm=() rest=() alone=()
for f in "$@"; do
  if [ "${TEST_LANES:-2}" = 1 ]; then rest+=("$f")
  elif grep -qE "helpers/second-engine\.ts" "$f"; then alone+=("$f")
  elif grep -qE "helpers/(cassandra|elasticsearch)\.ts" "$f"; then jvm+=("$f")
  else rest+=("$f"); fi
done
lane() {
  local name=$1
  shift
  [ $# -gt 0 ] || return 0
  "$node" --test --test-concurrency=1 --test-reporter=spec "$@" 2>&1 | sed -u "s/^/[$name] /" | tee -a "$log"
  return "${PIPESTATUS[0]}"
}
# Every lane's output is also kept here so that the end of the run can name what failed
# (CI shows only the tail of a long run).
log=$(mktemp /tmp/snapagent-lanes.XXXXXX)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
lane jvm "${jvm[@]}" & a=$!
lane main "${rest[@]}" & b=$!
wait $a; ra=$?
wait $b; rb=$?
lane alone "${alone[@]}"; rc=$?
if grep -q "✖" "$log"; then
  echo "[lanes] failed tests (the spec reporter's details are above, in the failing lane):"
  grep "✖" "$log" | sed 's/^/[lanes]   /' | head -40
fi
echo "[lanes] jvm lane exit $ra (${#jvm[@]} files), main lane exit $rb (${#rest[@]} files), alone exit $rc (${#alone[@]} files), $(( $(date +%s) - start )) s"
[ "$ra" = 0 ] && [ "$rb" = 0 ] && [ "$rc" = 0 ]
