#!/usr/bin/env bash
# Counts the instructions each route costs per request, under valgrind's callgrind: the same count
# for the same binary and inputs whatever else the machine does, where requests/s on two shared
# cores moves by ±10 % between runs. A release build of revocable (embedded default: SQLite,
# in-process stores) and the bare actix-web + HS256 server (`examples/bare_server`) each run under
# callgrind; after WARMUP requests the counters are zeroed, REQUESTS more are sent over one
# keep-alive connection (curl), and the dump's total is divided by REQUESTS. Every strategy, on
# HS256 and EdDSA, with the in-process caches on (revocation cache and verified-token cache), with
# only the revocation cache on (every token verified), and with both off.
#
#   scripts/bench-instructions.sh          writes its sections of docs/benchmarks.md
#   scripts/bench-instructions.sh --logins only the log-in's count (a minute)
#
# A log-in is counted the same way: LOGINS sequential `POST /api/token` after 2 to warm up, with
# the share of them spent in the server's argon2id verification (`auth::password::verify_blocking`,
# inclusive, from callgrind_annotate): what a log-in costs beyond the hash, repeatably.
#
# BENCH_REQUESTS (2000), BENCH_WARMUP (200), BENCH_LOGINS (10); BENCH_OUTPUT names another file. About 8 minutes on
# 2 cores. Default RUST_LOG (info), so the request log line is counted too.
set -euo pipefail
cd "$(dirname "$0")/.."
# The servers and the examples that mint or verify tokens beside them must agree on `iss`.
export JWT_ISSUER="${JWT_ISSUER:-revocable}"
# /compare's measurement at start-up would run beside what is counted.
export COMPARE_AT_START=off

REQUESTS="${BENCH_REQUESTS:-2000}"
LOGINS="${BENCH_LOGINS:-10}"
logins_only=false
[ "${1:-}" = "--logins" ] && logins_only=true
WARMUP="${BENCH_WARMUP:-200}"
PORT="${BENCH_PORT:-18090}"
BARE_PORT="${BENCH_BARE_PORT:-18091}"
OUT="${BENCH_OUTPUT:-docs/benchmarks.md}"
command_line="scripts/bench-instructions.sh${*:+ $*}"

for tool in valgrind callgrind_control callgrind_annotate curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (Debian: valgrind, curl, python3)" >&2; exit 2; }
done

cargo build --release --quiet --bin revocable --example bare_server
binary="$PWD/target/release/revocable"
bare_binary="$PWD/target/release/examples/bare_server"
work=$(mktemp -d)
secret=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# counted NAME PORT PROGRAM [VAR=value…]: PROGRAM under callgrind, serving on PORT; sets $pid.
counted() {
  local name=$1 port=$2 program=$3; shift 3
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env -u RUST_LOG BIND="127.0.0.1:$port" JWT_SECRET="$secret" \
    LOGIN_RATE_PER_MINUTE=100000 "$@" valgrind --tool=callgrind --callgrind-out-file="$work/$name/out" \
    "$program" >"$work/$name.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 600); do
    # revocable has /healthz; the bare server answers /me (401 without a token).
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/me" 2>/dev/null)" = 401 ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  cat "$work/$name.log" >&2; echo "$name did not start under callgrind" >&2; exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh # the scripts run from the repository root (cd above)

# send COUNT URL [HEADER]: COUNT requests over one keep-alive connection; every answer must be 200.
send() {
  local count=$1 url=$2 header=${3:-}
  : >"$work/requests"
  for _ in $(seq 1 "$count"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >>"$work/requests"; done
  local statuses
  if [ -n "$header" ]; then
    statuses=$(curl -s -K "$work/requests" -H "$header" -w '%{http_code}\n')
  else
    statuses=$(curl -s -K "$work/requests" -w '%{http_code}\n')
  fi
  local bad
  bad=$(grep -vc '^200$' <<<"$statuses" || true)
  [ "$bad" = 0 ] || { echo "$url answered $bad non-200 of $count" >&2; exit 1; }
}

# dump_now LABEL: asks the counted server for a dump and prints its path once it is written.
dump_now() {
  local before after
  before=$(find "$work" -name 'out.*' | wc -l)
  callgrind_control --dump="$1" "$pid" >/dev/null
  for _ in $(seq 1 100); do
    after=$(find "$work" -name 'out.*' | wc -l)
    [ "$after" -gt "$before" ] && break
    sleep 0.1
  done
  find "$work" -name 'out.*' -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2-
}

# count LABEL URL [HEADER]: warm up, zero, send REQUESTS, dump; appends "LABEL instructions".
count() {
  local label=$1 url=$2 header=${3:-}
  send "$WARMUP" "$url" "$header"
  callgrind_control --zero "$pid" >/dev/null
  send "$REQUESTS" "$url" "$header"
  local dump total
  dump=$(dump_now "$label")
  total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
  echo "$label $((total / REQUESTS))" >>"$work/counts"
  echo "  $label: $((total / REQUESTS)) instructions/request" >&2
}

# count_logins: writes the "Instructions per log-in" section to $work/logins-section.
count_logins() {
  echo "revocable, log-ins" >&2
  counted logins "$PORT" "$binary"
  local base="http://127.0.0.1:$PORT" body='{"email":"bench-login@example.com","password":"benchmark password"}'
  curl -sf -XPOST "$base/api/register" -H 'content-type: application/json' -d "$body" >/dev/null
  log_in_once() {
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$base/api/token" -H 'content-type: application/json' -d "$body")
    [ "$status" = 200 ] || { echo "a counted log-in answered $status" >&2; exit 1; }
  }
  log_in_once; log_in_once
  callgrind_control --zero "$pid" >/dev/null
  for _ in $(seq 1 "$LOGINS"); do log_in_once; done
  local dump total hashing
  dump=$(dump_now logins)
  stop
  total=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
  hashing=$(callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
    awk '/revocable::auth::password::verify_blocking/ { gsub(",", "", $1); print $1; exit }')
  [ -n "$hashing" ] || { echo "no verify_blocking in the log-in profile" >&2; exit 1; }
  echo "  log-in: $((total / LOGINS)) instructions, $((hashing / LOGINS)) in the argon2id verification" >&2
  awk -v total="$total" -v hashing="$hashing" -v n="$LOGINS" -v command="$command_line" -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" 'BEGIN {
    print "## Instructions per log-in"
    print ""
    printf "Counted by `%s` on %s: callgrind, %d sequential `POST /api/token`\n", command, when, n
    print "(right password, one account) after 2 to warm up, release build, embedded default (SQLite)."
    print ""
    print "| per log-in | M instructions | share |"
    print "|---|---|---|"
    printf "| everything the server did | %.1f | 100 %% |\n", total / n / 1e6
    printf "| argon2id verification (`auth::password::verify_blocking`, m=19456 KiB, t=2, p=1) | %.1f | %.2f %% |\n", hashing / n / 1e6, 100 * hashing / total
    printf "| the rest: HTTP, JSON, the SQLite writes of the login session, refresh token, event and known browser, the JWT | %.2f | %.2f %% |\n", (total - hashing) / n / 1e6, 100 * (total - hashing) / total
    print ""
    printf "A log-in costs **%.3f×** the instructions of the hash alone: the log-in rate can come within\n", total / hashing
    printf "%.1f %% of the argon2id bound wherever the cores are the server'"'"'s.\n", 100 * (total - hashing) / total
  }' >"$work/logins-section"
}

if $logins_only; then
  count_logins
  replace_section "$OUT" "$work/logins-section"
  cat "$work/logins-section"
  exit 0
fi

: >"$work/counts"
echo "bare actix-web + HS256" >&2
# The bare server verifies revocable's own HS256 tokens: one revocable, not counted, signs one.
mkdir -p "$work/signer"
(cd "$work/signer" && exec env -u RUST_LOG BIND="127.0.0.1:$PORT" JWT_SECRET="$secret" "$binary" \
  >"$work/signer.log" 2>&1) &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
log_in "http://127.0.0.1:$PORT"
stop
counted bare "$BARE_PORT" "$bare_binary"
count bare "http://127.0.0.1:$BARE_PORT/me" "Authorization: Bearer $token"
stop

# cache settings: NAME REVOCATION_CACHE VERIFIED_TOKEN_CACHE
cache_settings=("on on 10000" "verify on 0" "off off 0")
for algorithm in HS256 EdDSA; do
  for setting in "${cache_settings[@]}"; do
    read -r cache revocation_cache verified_tokens <<<"$setting"
    echo "revocable, $algorithm, cache $cache" >&2
    counted "$algorithm-$cache" "$PORT" "$binary" JWT_ALG="$algorithm" REVOCATION_CACHE="$revocation_cache" \
      VERIFIED_TOKEN_CACHE="$verified_tokens"
    base="http://127.0.0.1:$PORT"
    log_in "$base"
    count "healthz/$algorithm/$cache" "$base/healthz"
    for strategy in stateless version denylist allowlist; do
      count "$strategy/$algorithm/$cache" "$base/api/$strategy/me" "Authorization: Bearer $token"
    done
    count "cookie/$algorithm/$cache" "$base/api/cookie/me" "Cookie: revocable_session=$cookie"
    stop
  done
done

python3 - "$work/section" "$work/counts" "$command_line" "$REQUESTS" "$WARMUP" <<'PY'
import datetime, sys
path, counts_path, command, requests, warmup = sys.argv[1:6]
counts = dict(line.split() for line in open(counts_path) if line.strip())
counts = {label: int(value) for label, value in counts.items()}
bare = counts["bare"]
lines = [
    "## Instructions per request",
    "",
    f"Counted by `{command}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}: valgrind's",
    f"callgrind, {requests} requests over one keep-alive connection after {warmup} to warm up, default",
    "`RUST_LOG`, embedded default (SQLite, in-process stores). The same count for the same binary and",
    "inputs, whatever else the machine does. `÷ bare` is the bare actix-web + HS256 server's count over",
    "the route's: above 1.00 the route costs less than a bare verify. `÷ stateless` compares with the",
    "same algorithm and cache setting. `cache`: `on` is the default (the in-process revocation cache",
    "and the verified-token cache, `VERIFIED_TOKEN_CACHE=10000`, so the one token sent is verified",
    "once); `verify` keeps the revocation cache and verifies every token (`VERIFIED_TOKEN_CACHE=0`);",
    "`off` turns both off (`REVOCATION_CACHE=off`, every check in the stores).",
    "",
    f"Bare actix-web + HS256 verify (`examples/bare_server`): {bare / 1000:.1f} k instructions/request.",
    "",
]
# Every revocable strategy against stateless: the three Bearer checks, and the cookie check,
# which reads an encrypted cookie and the server-side session state instead of a token.
revocable = ("version", "denylist", "allowlist", "cookie")
targets = [("`stateless` ÷ bare HS256 (HS256, cache on)", bare / counts["stateless/HS256/on"], ">= 1.00")]
for algorithm in ("HS256", "EdDSA"):
    for strategy in revocable:
        targets.append((f"`{strategy}` ÷ `stateless` ({algorithm}, cache on)",
                        counts[f"stateless/{algorithm}/on"] / counts[f"{strategy}/{algorithm}/on"], ">= 0.97"))
targets.append(("EdDSA `stateless` ÷ HS256 `stateless` (cache on)",
                counts["stateless/EdDSA/on"] / counts["stateless/HS256/on"], "<= 1.15"))
lines += ["| target | measured | wanted | met |", "|---|---|---|---|"]
for name, value, wanted in targets:
    bound = float(wanted.split()[1])
    met = value >= bound if wanted.startswith(">=") else value <= bound
    lines.append(f"| {name} | {value:.2f} | {wanted} | {'yes' if met else 'no'} |")
lines += ["", "| route | algorithm | cache | k instructions / request | ÷ bare | ÷ stateless |", "|---|---|---|---|---|---|"]
for algorithm in ("HS256", "EdDSA"):
    for cache in ("on", "verify", "off"):
        stateless = counts[f"stateless/{algorithm}/{cache}"]
        for route in ("healthz", "stateless", "version", "denylist", "allowlist", "cookie"):
            value = counts[f"{route}/{algorithm}/{cache}"]
            name = "`/healthz`" if route == "healthz" else f"`/api/{route}/me`"
            lines.append(
                f"| {name} | {algorithm} | {cache} | {value / 1000:.1f} | {bare / value:.2f} | {stateless / value:.2f} |"
            )
open(path, "w").write("\n".join(lines) + "\n")
PY
replace_section "$OUT" "$work/section"
count_logins
replace_section "$OUT" "$work/logins-section"
cat "$work/section" "$work/logins-section"
