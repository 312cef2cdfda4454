#!/usr/bin/env bash
# Instructions per request of each middleware configuration (benches/stack.rs),
# counted by callgrind: repeatable on a noisy machine. Usage: bench/stack_instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
bin=$(cargo bench --bench stack --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="stack" and m.get("executable"): print(m["executable"])' | tail -n1)
count() { STACK_COUNT=$1 STACK_N=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --bench 2>&1 | awk '/Collected :/ {print $4}'; }
printf '%-24s %12s\n' config instr/request
for c in none request_id access_log http_metrics security_headers cors body_limit timeout catch_panic request_id+access_log full; do
  base=$(count "$c" 0); loaded=$(count "$c" "$n")
  printf '%-24s %12d\n' "$c" $(( (loaded - base) / n ))
done
