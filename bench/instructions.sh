#!/usr/bin/env bash
# Instructions per request of a server binary, counted by valgrind's callgrind:
# repeatable whatever else the machine is doing (wall-clock figures are not).
#
#   bench/instructions.sh [route] [GET|POST]   # default: /healthz GET
#
# Builds the example service and the plain axum program with the `profiling`
# profile, runs each under callgrind twice (idle, then under 8 s of wrk load),
# and prints (load - idle) / requests for both, and their ratio. Routes under
# /api/v1/widgets carry a bench user's bearer token and find 100 widgets stored
# (set up before the measured runs, without valgrind); POST sends the load
# harness's widget body. KEEP=dir keeps the callgrind files in dir.
set -euo pipefail
cd "$(dirname "$0")/.."
route=${1:-/healthz}
method=${2:-GET}
cargo build --quiet --profile profiling --example widget_service --example plain_axum
target=${CARGO_TARGET_DIR:-target}/profiling/examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
secret=bench-secret-bench-secret-bench-secret!
widget='{"name":"widget","size":3}'
token=""

launch() { # port [wrapper...]: starts the server on its own database
  local port=$1; shift
  # The rate limit stays on (its cost is measured) but never refuses the load.
  PORT=$port DATABASE_NAME="$work/$port.db" JWT_SECRET=$secret LOG_LEVEL=info RATE_LIMIT_REQUESTS=1000000000 "$@" >/dev/null 2>&1 &
  for _ in $(seq 1 240); do curl -s -o /dev/null "127.0.0.1:$port/healthz" && return 0; sleep 0.5; done
  echo "server on :$port did not start" >&2; exit 1
}

setup() { # binary port: the admin (one argon2 hash), a token and 100 widgets, not measured
  [ -e "$work/$2.ready" ] && return 0
  launch "$2" env ADMIN_EMAIL=bench@example.com ADMIN_PASSWORD=bench-password-1 "$1"
  if [[ $route == /api/v1/widgets* ]] && [ -z "$token" ]; then
    token=$(curl -sf "127.0.0.1:$2/api/v1/auth/login" -H 'Content-Type: application/json' \
      -d '{"username":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  fi
  if [[ $route == /api/v1/widgets* ]]; then
    for _ in $(seq 1 100); do
      curl -sf -o /dev/null "127.0.0.1:$2/api/v1/widgets" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "$widget"
    done
  fi
  pkill -f "$1" || true
  wait 2>/dev/null || true
  touch "$work/$2.ready"
}

count() { # binary port phase -> "instructions requests"
  local bin=$1 port=$2 phase=$3 requests=0 args=(-t1 -c4 -d8s)
  launch "$port" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$port.$phase" "$bin"
  # One request in both phases: one-time costs (first-use initialisation) cancel out.
  local once=(-sf -o /dev/null -X "$method")
  [ -n "$token" ] && once+=(-H "Authorization: Bearer $token")
  [ "$method" = POST ] && once+=(-H 'Content-Type: application/json' -d "$widget")
  curl "${once[@]}" "127.0.0.1:$port$route"
  if [ "$phase" = load ]; then
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    if [ "$method" = POST ]; then
      printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
        "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$widget")" >"$work/post.lua"
      args+=(-s "$work/post.lua")
    fi
    requests=$(taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port$route" | awk '/requests in/{print $1}')
  fi
  callgrind_control -d "$(pgrep -f "callgrind-out-file=$work/cg.$port.$phase")" >/dev/null 2>&1
  sleep 1
  pkill -9 -f "callgrind-out-file=$work/cg.$port.$phase" || true
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$work"/cg."$port"."$phase"* "$KEEP"/
  local total=0 file calibration
  for file in "$work"/cg."$port"."$phase"*; do
    # quanta calibrates its clock (for the metrics recorder) in a loop that runs
    # for a while, not a number of times: its instruction count differs from
    # run to run by millions, so it is left out of both phases.
    calibration=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$file" 2>/dev/null |
      awk '/quanta-[0-9.]+\/src\/lib.rs:once_cell::imp::OnceCell<T>::initialize::\{\{closure\}\}/{gsub(",","",$1); print $1; exit}')
    total=$((total + $(awk '/^totals:/{print $2}' "$file") - ${calibration:-0}))
  done
  echo "$total $requests"
}

per_request() { # binary port
  local idle load requests
  setup "$1" "$2"
  read -r idle _ < <(count "$1" "$2" idle)
  read -r load requests < <(count "$1" "$2" load)
  echo $(( (load - idle) / requests ))
}

# The kernel first: its login gives the token both servers accept.
setup "$target/widget_service" 18300
kernel=$(per_request "$target/widget_service" 18300)
plain=$(per_request "$target/plain_axum" 18301)
echo "$method $route instructions per request: kernel $kernel, plain axum $plain, ratio $(python3 -c "print(f'{$kernel/$plain:.2f}')")"
