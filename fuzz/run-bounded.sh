#!/usr/bin/env bash
# Bounded fuzz pass (CI and local): installs cargo-fuzz if missing, builds every target once
# (optimised, no sanitizer: see SECURITY.md §Fuzzing for why) and runs each from its seeds for
# FUZZ_RUNS executions or FUZZ_SECONDS seconds, whichever comes first.
#
# The whole pass, including the install and the build, stays within FUZZ_BUDGET_SECONDS: a step
# that would not fit is skipped with a notice and the script exits 0. Only a finding (a crash, a
# failed invariant, a timeout or an out-of-memory in a target) fails it: exit 1, with the input
# saved under fuzz/artifacts/<target>/ and the log under fuzz/logs/.
#
#   fuzz/run-bounded.sh                                  # CI defaults: 200k runs or 20 s per target, 480 s budget
#   FUZZ_RUNS=10000000 FUZZ_SECONDS=300 FUZZ_BUDGET_SECONDS=7200 fuzz/run-bounded.sh   # the SECURITY.md campaign
#   FUZZ_TARGETS="rfc3339 sts_response" fuzz/run-bounded.sh
#
# Needs only a stable toolchain: RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz passes.
set -uo pipefail
cd "$(dirname "$0")"

RUNS=${FUZZ_RUNS:-200000}
PER_TARGET=${FUZZ_SECONDS:-20}
BUDGET=${FUZZ_BUDGET_SECONDS:-480}
TARGETS=${FUZZ_TARGETS:-"credentials_json config_file sts_response iam_response subject_token rfc3339"}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN=target/$TRIPLE/release
export RUSTC_BOOTSTRAP=1
START=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - START))); }
skip() { echo "fuzz: $1; skipped (budget ${BUDGET}s, $(left)s left)"; exit 0; }

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== fuzz: installing cargo-fuzz"
  timeout "$(left)" cargo install cargo-fuzz --locked >/dev/null 2>&1 || skip "cargo-fuzz could not be installed in time"
fi

# Reserve what the runs need (each target at most PER_TARGET s plus start-up) before building.
NTARGETS=$(wc -w <<<"$TARGETS")
RESERVE=$((NTARGETS * (PER_TARGET + 3)))
[ "$(left)" -gt "$RESERVE" ] || skip "no time left to build"
echo "== fuzz: build (cargo fuzz build -O --sanitizer none)"
BUILD_START=$(date +%s)
timeout "$(( $(left) - RESERVE ))" cargo fuzz build -O --sanitizer none >build.log 2>&1
rc=$?
if [ $rc = 124 ]; then skip "the build did not finish in time"; fi
if [ $rc != 0 ]; then tail -40 build.log; echo "fuzz: build failed"; exit 1; fi
echo "fuzz: build took $(( $(date +%s) - BUILD_START ))s"

mkdir -p logs
status=0
printf '%-18s %12s %8s %6s %6s  %s\n' target executions seconds cov ft result
for t in $TARGETS; do
  secs=$PER_TARGET
  [ "$(left)" -gt 2 ] || { echo "fuzz: budget exhausted before $t; skipped"; continue; }
  [ "$(left)" -gt $((secs + 2)) ] || secs=$(( $(left) - 2 ))
  mkdir -p "corpus/$t" "artifacts/$t"
  t0=$(date +%s)
  "$BIN/$t" -runs="$RUNS" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -dict=fuzz.dict \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" "seeds/$t" >"logs/$t.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "logs/$t.log" | tail -1 | cut -d' ' -f2)
  if [ $rc = 0 ]; then result=ok; else result="FINDING (exit $rc, see fuzz/logs/$t.log)"; status=1; fi
  printf '%-18s %12s %8s %6s %6s  %s\n' "$t" "${execs:-?}" "$(( $(date +%s) - t0 ))" "${cov:-?}" "${ft:-?}" "$result"
  [ $rc = 0 ] || grep -E 'panicked|ERROR|SUMMARY' -A3 "logs/$t.log" | head -20
done
exit $status
