#!/usr/bin/env bash
# Measures what each strategy's check costs a real server under load, and how fast the pages
# answer, then writes docs/benchmarks.md (which /compare charts). A release build serves on
# loopback; wrk (Debian's package, installed when missing) loads it from the same machine.
#
#   scripts/bench.sh                 embedded default (SQLite, in-process stores)
#   scripts/bench.sh --scale-out     also PostgreSQL + Redis (127.0.0.1:5432 and :6379)
#
# Every run is bounded: 3 rounds x 5 s per strategy, 3 s per page, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${BENCH_DURATION:-5s}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
PORT="${BENCH_PORT:-18080}"
PG_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
OUT="${BENCH_OUTPUT:-docs/benchmarks.md}"
scale_out=false
[ "${1:-}" = "--scale-out" ] && scale_out=true

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet
binary="$PWD/target/release/revocable"
base="http://127.0.0.1:$PORT"
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_server() { # extra environment as arguments
  if curl -sf "$base/healthz" >/dev/null; then
    echo "something already answers on $base: stop it first" >&2; exit 1
  fi
  (cd "$work" && exec env BIND="127.0.0.1:$PORT" LOGIN_RATE_PER_MINUTE=100000 RUST_LOG=warn "$@" "$binary" >"$work/server.log" 2>&1) &
  server=$!
  for _ in $(seq 1 100); do
    kill -0 "$server" 2>/dev/null || break
    curl -sf "$base/healthz" >/dev/null && return 0
    sleep 0.1
  done
  cat "$work/server.log"; echo "the server did not start" >&2; exit 1
}
stop_server() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  for _ in $(seq 1 50); do curl -sf "$base/healthz" >/dev/null || return 0; sleep 0.1; done
  echo "the server on $base did not stop" >&2; exit 1
}

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

log_in() {
  email="bench-$RANDOM$RANDOM@example.com"
  curl -sf -XPOST "$base/api/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" >/dev/null
  token=$(curl -sf -XPOST "$base/api/token" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" | json_field access_token)
  jar="$work/cookies"
  rm -f "$jar"
  csrf=$(curl -sf -c "$jar" -b "$jar" "$base/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
  curl -sf -o /dev/null -c "$jar" -b "$jar" -XPOST "$base/login" \
    --data-urlencode "csrf_token=$csrf" --data-urlencode "email=$email" --data-urlencode "password=benchmark password"
  cookie=$(awk '$6 == "revocable_session" { print $7 }' "$jar")
  [ -n "$token" ] && [ -n "$cookie" ] || { echo "could not log in for the benchmark" >&2; exit 1; }
}

# requests/s of one wrk run
rps() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$@" | awk '/Requests\/sec/ { print $2 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run_strategies() { # label
  local label=$1
  declare -A results
  for strategy in stateless version denylist allowlist cookie; do results[$strategy]=""; done
  for round in $(seq 1 "$ROUNDS"); do
    for strategy in stateless version denylist allowlist cookie; do
      if [ "$strategy" = cookie ]; then
        value=$(rps -H "Cookie: revocable_session=$cookie" "$base/api/cookie/me")
      else
        value=$(rps -H "Authorization: Bearer $token" "$base/api/$strategy/me")
      fi
      results[$strategy]+="$value"$'\n'
      echo "  $label round $round: $strategy ${value} requests/s" >&2
    done
  done
  stateless=$(printf '%s' "${results[stateless]}" | median)
  for strategy in stateless version denylist allowlist cookie; do
    value=$(printf '%s' "${results[$strategy]}" | median)
    printf '| %s | %s | %.0f | %.2f |\n' "$strategy" "$label" "$value" "$(echo "$value / $stateless" | bc -l)"
  done
}

page_latency() { # path, extra wrk args
  local path=$1; shift
  wrk -t1 -c4 -d3s --latency "$@" "$base$path" | awk -v path="$path" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    END { printf "| `%s` | %s | %s | %.0f |\n", path, p50, p99, rps }'
}

command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }

echo "embedded default" >&2
start_server
log_in
embedded=$(run_strategies "SQLite, in-process")
curl -sf "$base/compare" >/dev/null
sleep 20 # let the first /compare measurement land before timing the page
pages=$(
  page_latency /login
  page_latency /dashboard -H "Cookie: revocable_session=$cookie"
  page_latency /password -H "Cookie: revocable_session=$cookie"
  page_latency /compare
)
stop_server

scaled=""
if $scale_out; then
  echo "PostgreSQL + Redis" >&2
  db="revocable_bench_$$"
  psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
  start_server DATABASE_URL="${PG_URL%/*}/$db" REDIS_URL="$REDIS" REDIS_PREFIX="bench$$:"
  log_in
  scaled=$(run_strategies "PostgreSQL + Redis")
  stop_server
  psql "$PG_URL" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
fi

mkdir -p "$(dirname "$OUT")"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m)."
  echo "A release build with its default 2 workers is loaded by \`wrk -t1 -c$CONNECTIONS -d$DURATION\` on the same"
  echo "machine; each figure is the median of $ROUNDS interleaved rounds. The route is \`GET /api/{strategy}/me\`."
  echo
  echo "## Throughput per strategy"
  echo
  echo "| strategy | stores | requests/s | ÷ stateless |"
  echo "|---|---|---|---|"
  echo "$embedded"
  [ -n "$scaled" ] && echo "$scaled"
  echo
  echo "## Page latency on the embedded default"
  echo
  echo "\`wrk -t1 -c4 -d3s --latency\`, a logged-in browser's cookie where the page needs one."
  echo
  echo "| page | median | p99 | requests/s |"
  echo "|---|---|---|---|"
  echo "$pages"
} >"$OUT"
cat "$OUT"
