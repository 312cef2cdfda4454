#!/usr/bin/env bash
# Instructions per request of a server binary, counted by valgrind's callgrind:
# repeatable whatever else the machine is doing (wall-clock figures are not).
#
#   bench/instructions.sh [route]          # default /healthz
#
# Builds the example service and the plain axum program with the `profiling`
# profile, runs each under callgrind twice (idle, then under 8 s of wrk load),
# and prints (load - idle) / requests for both, and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
route=${1:-/healthz}
cargo build --quiet --profile profiling --example widget_service --example plain_axum
target=${CARGO_TARGET_DIR:-target}/profiling/examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() { # binary port phase -> "instructions requests"
  local bin=$1 port=$2 phase=$3 requests=0
  PORT=$port DATABASE_NAME="$work/$port.db" JWT_SECRET=bench-secret-bench-secret-bench-secret! LOG_LEVEL=info \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$port.$phase" "$bin" >/dev/null 2>&1 &
  for _ in $(seq 1 240); do curl -s -o /dev/null "127.0.0.1:$port/healthz" && break; sleep 0.5; done
  if [ "$phase" = load ]; then
    requests=$(taskset -c 1 wrk -t1 -c4 -d8s "http://127.0.0.1:$port$route" | awk '/requests in/{print $1}')
  fi
  callgrind_control -d "$(pgrep -f "callgrind-out-file=$work/cg.$port.$phase")" >/dev/null
  sleep 1
  pkill -9 -f "callgrind-out-file=$work/cg.$port.$phase" || true
  wait 2>/dev/null || true
  echo "$(cat "$work"/cg."$port"."$phase"* | awk '/^totals:/{s+=$2} END{print s}') $requests"
}

per_request() { # binary port
  local idle load requests
  read -r idle _ < <(count "$1" "$2" idle)
  read -r load requests < <(count "$1" "$2" load)
  echo $(( (load - idle) / requests ))
}

kernel=$(per_request "$target/widget_service" 18300)
plain=$(per_request "$target/plain_axum" 18301)
echo "GET $route instructions per request: kernel $kernel, plain axum $plain, ratio $(python3 -c "print(f'{$kernel/$plain:.2f}')")"
