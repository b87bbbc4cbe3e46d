#!/usr/bin/env bash
# What trusting revocable's tokens in another service costs, and how fast a revocation reaches it:
#
#   1. /api/stateless/me and /api/version/me on revocable under HS256 and under EdDSA;
#   2. the example resource server (examples/resource_server.rs, revocable-verifier inside):
#      /hello (signature + revocation from the feed) against /hello/signature-only;
#   3. POST /oauth/introspect: requests/s and p99;
#   4. feed propagation (examples/feed_propagation.rs): p50/p99/max over REVOCATIONS revocations.
#
# Release builds on loopback only; wrk (Debian's package, installed when missing) loads them from
# the same machine, so compare ratios measured in one run rather than absolute figures. Bounded:
# each wrk run lasts BENCH_DURATION (5 s), the propagation run at most 5 s per revocation.
#
#   scripts/bench-verifier.sh                       the full run
#   BENCH_DURATION=1s REVOCATIONS=20 scripts/bench-verifier.sh    a smoke test
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${BENCH_DURATION:-5s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
REVOCATIONS="${REVOCATIONS:-300}"
PORT="${BENCH_PORT:-18180}"
EXAMPLE_PORT="${BENCH_EXAMPLE_PORT:-18190}"

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet --bin revocable --example resource_server --example feed_propagation
binary="$PWD/target/release/revocable"
examples="$PWD/target/release/examples"
base="http://127.0.0.1:$PORT"
example_base="http://127.0.0.1:$EXAMPLE_PORT"
work=$(mktemp -d)
server=""
example=""
cleanup() {
  for pid in $example $server; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # url, pid, log
  for _ in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || break
    curl -sf "$1" >/dev/null && return 0
    sleep 0.1
  done
  cat "$3"; echo "nothing answered on $1" >&2; exit 1
}

start_server() { # JWT_ALG
  if curl -sf "$base/healthz" >/dev/null; then
    echo "something already answers on $base: stop it first" >&2; exit 1
  fi
  rm -f "$work"/bench.db*
  (cd "$work" && exec env BIND="127.0.0.1:$PORT" LOGIN_RATE_PER_MINUTE=100000 RUST_LOG=warn \
    DATABASE_URL="sqlite://$work/bench.db?mode=rwc" JWT_ALG="$1" "$binary" >"$work/server.log" 2>&1) &
  server=$!
  wait_for "$base/healthz" "$server" "$work/server.log"
}

stop() { # pid variable name
  local pid="${!1}"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  printf -v "$1" '%s' ""
}

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

access_token() {
  local email="bench-$RANDOM-$RANDOM@example.com" password="benchmark password 1"
  curl -sf -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/register" >/dev/null
  curl -sf -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/token" |
    json_field access_token
}

rps() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$@" | awk '/Requests\/sec/ { print $2 }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "wrk -t1 -c$CONNECTIONS -d$DURATION on loopback, $(nproc) cores shared by server and load"
echo
printf '%-8s %-22s %12s\n' "JWT_ALG" "route" "requests/s"
for alg in HS256 EdDSA; do
  start_server "$alg"
  token=$(access_token)
  for route in /api/stateless/me /api/version/me; do
    printf '%-8s %-22s %12s\n' "$alg" "$route" "$(rps -H "Authorization: Bearer $token" "$base$route")"
  done
  [ "$alg" = EdDSA ] || stop server
done

# EdDSA server still running: the example service and introspection against it.
credentials=$(cd "$work" && DATABASE_URL="sqlite://$work/bench.db?mode=rwc" "$binary" clients add bench 2>/dev/null)
client_id=$(printf '%s\n' "$credentials" | awk '/^client_id:/ { print $2 }')
client_secret=$(printf '%s\n' "$credentials" | awk '/^client_secret:/ { print $2 }')
env REVOCABLE_URL="$base" CLIENT_ID="$client_id" CLIENT_SECRET="$client_secret" BIND="127.0.0.1:$EXAMPLE_PORT" \
  RUST_LOG=warn "$examples/resource_server" >"$work/example.log" 2>&1 &
example=$!
wait_for "$example_base/status" "$example" "$work/example.log"
for _ in $(seq 1 100); do
  curl -sf "$example_base/status" | grep -q '"feed"' && break
  sleep 0.1
done
curl -sf "$example_base/status" | grep -q '"feed"' || { echo "the example's feed never became live" >&2; exit 1; }

echo
token=$(access_token)
honoured=$(rps -H "Authorization: Bearer $token" "$example_base/hello")
signature_only=$(rps -H "Authorization: Bearer $token" "$example_base/hello/signature-only")
printf 'example verifier, signature only:            %10s requests/s\n' "$signature_only"
printf 'example verifier, revocation honoured (feed): %9s requests/s  (%s x signature-only)\n' \
  "$honoured" "$(ratio "$honoured" "$signature_only")"

basic=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)
cat >"$work/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
echo
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/introspect.lua" "$base/oauth/introspect" | awk '
  /Requests\/sec/ { rps = $2 }
  $1 == "99%" { p99 = $2 }
  /Non-2xx/ { errors = $NF }
  END {
    printf "POST /oauth/introspect (active access token): %s requests/s, p99 %s\n", rps, p99
    if (errors != "") { print "non-2xx answers: " errors; exit 1 }
  }'

echo
env REVOCABLE_URL="$base" CLIENT_ID="$client_id" CLIENT_SECRET="$client_secret" REVOCATIONS="$REVOCATIONS" \
  RUST_LOG=warn timeout 300 "$examples/feed_propagation"
