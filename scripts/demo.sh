#!/usr/bin/env bash
# The visitor-counter demo (samples/counter/README.md): builds the binaries, starts the sample
# function and `eddy run samples/counter/module.yaml`, waits for the greetings of the visits
# in samples/counter/visitors.jsonl, sends one more visit with `eddy send`, shows its greeting,
# then stops everything with SIGTERM. Needs only cargo and bash. Exit 0 on success.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/debug
FN_ADDR=127.0.0.1:9000
INGRESS=http://127.0.0.1:8090
WAIT_SECONDS=${DEMO_WAIT_SECONDS:-30}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/eddy-demo.XXXXXX")
FN_PID=""
EDDY_PID=""

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[31m' PLAIN=$'\033[0m'; else BOLD="" RED="" PLAIN=""; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
info() { printf '    %s\n' "$*"; }
fail() {
  printf '\n%sdemo failed: %s%s\n' "$RED" "$*" "$PLAIN" >&2
  for log in "$WORK/counter.log" "$WORK/eddy.log" "$WORK/eddy.out"; do
    if [[ -s $log ]]; then
      printf -- '--- last lines of %s ---\n' "$log" >&2
      tail -n 20 "$log" >&2
    fi
  done
  exit 1
}

# True while process $1 runs (a zombie waiting to be reaped counts as exited).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# Stops one child with SIGTERM (SIGKILL after 15 s); sets STOP_STATUS to its exit status.
stop() {
  local pid=$1 deadline=$((SECONDS + 15))
  STOP_STATUS=0
  kill -TERM "$pid" 2>/dev/null || true
  while running "$pid"; do
    if ((SECONDS >= deadline)); then
      echo "    pid $pid ignored SIGTERM for 15s: sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || STOP_STATUS=$?
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $EDDY_PID ]]; then stop "$EDDY_PID"; fi
  if [[ -n $FN_PID ]]; then stop "$FN_PID"; fi
  if [[ $status -eq 0 ]]; then
    rm -rf "$WORK"
  else
    echo "logs kept in $WORK" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# True if something accepts TCP connections on host:port.
listening() {
  local host=${1%:*} port=${1##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# wait_for DESCRIPTION COMMAND...: runs COMMAND until it succeeds, failing after
# $WAIT_SECONDS or as soon as one of the children has exited.
wait_for() {
  local description=$1
  shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@"; do
    if [[ -n $FN_PID ]] && ! running "$FN_PID"; then
      fail "eddy-sample-counter exited while waiting for $description"
    fi
    if [[ -n $EDDY_PID ]] && ! running "$EDDY_PID"; then
      fail "eddy exited while waiting for $description"
    fi
    if ((SECONDS >= deadline)); then
      fail "timed out after ${WAIT_SECONDS}s waiting for $description"
    fi
    sleep 0.1
  done
}

greeted() { grep -qF "\"Hello $1! You are visitor #$2.\"" "$WORK/eddy.out"; }

all_greeted() {
  local expected
  for expected in "$@"; do
    greeted "${expected% *}" "${expected#* }" || return 1
  done
}

step "building the binaries (cargo build --bins)"
cargo build --bins
for binary in eddy eddy-sample-counter; do
  [[ -x $BIN/$binary ]] || fail "$BIN/$binary was not built"
done

for addr in "$FN_ADDR" "${INGRESS#http://}"; do
  if listening "$addr"; then
    fail "$addr is already in use: stop whatever listens there (an earlier demo?) and retry"
  fi
done

step "starting the function: eddy-sample-counter --listen $FN_ADDR --egress eddy.demo/greetings"
info "it serves eddy.demo/counter: one count per visitor, a greeting per visit"
"$BIN/eddy-sample-counter" --listen "$FN_ADDR" --egress eddy.demo/greetings \
  >"$WORK/counter.log" 2>&1 &
FN_PID=$!
wait_for "the function to listen on $FN_ADDR" listening "$FN_ADDR"
info "listening (pid $FN_PID)"

step "starting the state tier: eddy run samples/counter/module.yaml"
info "the file ingress replays samples/counter/visitors.jsonl:"
sed 's/^/      /' samples/counter/visitors.jsonl
"$BIN/eddy" run samples/counter/module.yaml --dead-letters "$WORK/dead-letters.jsonl" \
  >"$WORK/eddy.out" 2>"$WORK/eddy.log" &
EDDY_PID=$!

EXPECTED=("alice 1" "bob 1" "alice 2" "carol 1" "bob 2" "alice 3" "dave 1")
step "waiting for the ${#EXPECTED[@]} greetings on eddy's stdout egress (eddy.demo/greetings)"
wait_for "the greetings of visitors.jsonl" all_greeted "${EXPECTED[@]}"
sed 's/^/    /' "$WORK/eddy.out"
info "each visitor's count lives in eddy (state \"count\"), not in the function process"

step "one more visit through the HTTP ingress: eddy send eddy.demo/counter/alice --string hi"
wait_for "the HTTP ingress on $INGRESS" listening "${INGRESS#http://}"
"$BIN/eddy" send eddy.demo/counter/alice --string hi --ingress "$INGRESS" ||
  fail "eddy send was rejected (exit $?)"
wait_for "alice's fourth greeting" greeted alice 4
grep -F '"Hello alice! You are visitor #4."' "$WORK/eddy.out" | sed 's/^/    /'

if [[ -s $WORK/dead-letters.jsonl ]]; then
  fail "dead letters were written: $(head -c 500 "$WORK/dead-letters.jsonl")"
fi

if command -v curl >/dev/null 2>&1; then
  step "the runtime's counters: curl $INGRESS/v1/stats"
  info "$(curl -s --max-time 5 "$INGRESS/v1/stats")"
fi

step "stopping eddy and the function with SIGTERM"
stop "$EDDY_PID"
EDDY_PID=""
[[ $STOP_STATUS -eq 0 ]] || fail "eddy exited with status $STOP_STATUS after SIGTERM"
info "eddy drained and exited 0"
stop "$FN_PID"
FN_PID=""
[[ $STOP_STATUS -eq 0 ]] || fail "eddy-sample-counter exited with status $STOP_STATUS after SIGTERM"
info "eddy-sample-counter exited 0"

step "demo complete"
