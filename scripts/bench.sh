#!/usr/bin/env bash
# Measures what each strategy's check costs a real server under load, next to a bare actix-web
# server doing the same HS256 verify, then writes docs/benchmarks.md. A release build serves on
# loopback with its default settings (RUST_LOG unset); wrk (Debian's package, installed when
# missing) loads it from the same machine.
#
#   scripts/bench.sh                 embedded default (SQLite, in-process stores)
#   scripts/bench.sh --scale-out     also PostgreSQL + Redis, and PostgreSQL alone (127.0.0.1:5432
#                                    and :6379), with propagation between two instances
#   scripts/bench.sh --propagation   only that propagation, replacing its section of the output
#   scripts/bench.sh --logins        only log-in throughput and /api/version/me beside it, likewise
#
# Propagation is measured three ways: push on with the instances idle, push on while wrk loads
# both instances' /api/version/me (BENCH_LOAD_CONNECTIONS each), and push cut (the poll alone).
#
# Parts, each bounded in time: throughput (bare server, /healthz, every strategy's /me with the
# in-process revocation cache on and off), log-in throughput against the argon2id bound and the
# p99 of /api/version/me while log-ins saturate the CPU, memory and per-check cost with seeded
# rows, and propagation of revocations between two instances. Defaults keep the whole run with
# --scale-out under about 15 minutes on 2 cores; BENCH_DURATION=1s BENCH_ROUNDS=1
# BENCH_REVOCATIONS=5 BENCH_CUT_REVOCATIONS=3 BENCH_SEED_ROWS=1000 BENCH_CHECK_SIZES="1000 10000"
# makes a smoke run of a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
# The servers and the examples that mint or verify tokens beside them must agree on `iss`.
export JWT_ISSUER="${JWT_ISSUER:-revocable}"
# /compare's measurement at start-up would run beside what is counted.
export COMPARE_AT_START=off

DURATION="${BENCH_DURATION:-4s}"
ROUNDS="${BENCH_ROUNDS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
REVOCATIONS="${BENCH_REVOCATIONS:-500}"
CUT_REVOCATIONS="${BENCH_CUT_REVOCATIONS:-100}"
SEED_ROWS="${BENCH_SEED_ROWS:-100000}"
CHECK_SIZES="${BENCH_CHECK_SIZES:-1000 100000 1000000}"
PORT="${BENCH_PORT:-18080}"
PORT_B="${BENCH_PORT_B:-18082}"
BARE_PORT="${BENCH_BARE_PORT:-18081}"
PG_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
OUT="${BENCH_OUTPUT:-docs/benchmarks.md}"
LOAD_CONNECTIONS="${BENCH_LOAD_CONNECTIONS:-16}"
scale_out=false
propagation_only=false
logins_only=false
[ "${1:-}" = "--scale-out" ] && scale_out=true
[ "${1:-}" = "--propagation" ] && scale_out=true && propagation_only=true
[ "${1:-}" = "--logins" ] && logins_only=true
command_line="scripts/bench.sh${*:+ $*}"

install_missing() { # command package
  command -v "$1" >/dev/null && return 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
install_missing wrk wrk
install_missing bc bc
install_missing sqlite3 sqlite3
install_missing /usr/bin/time time
$scale_out && install_missing psql postgresql-client

# BENCH_PROFILE=dev only checks the script itself quickly: its figures mean nothing.
profile="${BENCH_PROFILE:-release}"
# BENCH_BUILD=0 uses the build already there (docs/benchmarks.md is compiled in, so a run of another
# benchmark script just before makes this build a long one).
[ "${BENCH_BUILD:-1}" = 0 ] || cargo build --profile "$profile" --quiet --bin revocable --example bare_server \
  --example propagation --example argon2_cost --example mint_tokens
target_dir="$PWD/target/$([ "$profile" = dev ] && echo debug || echo "$profile")"
binary="$target_dir/revocable"
examples="$target_dir/examples"
base="http://127.0.0.1:$PORT"
base_b="http://127.0.0.1:$PORT_B"
bare="http://127.0.0.1:$BARE_PORT"
work=$(mktemp -d)
secret=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')
servers=()
databases=()
prefix="bench$$:"
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "${databases[@]}"; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  if $scale_out && command -v redis-cli >/dev/null; then # only this run's keys, never a flush
    redis-cli -u "$REDIS" --scan --pattern "$prefix*" | xargs -r -n 500 redis-cli -u "$REDIS" DEL >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # url pid log
  for _ in $(seq 1 150); do
    kill -0 "$2" 2>/dev/null || break
    curl -sf "$1" >/dev/null && return 0
    sleep 0.1
  done
  cat "$3" >&2; echo "the server behind $1 did not start" >&2; exit 1
}
free() { # url
  if curl -s "$1" >/dev/null; then echo "something already answers on $1: stop it first" >&2; exit 1; fi
}

# start_server NAME PORT [VAR=value…]: revocable with its default settings plus the given ones.
start_server() {
  local name=$1 port=$2; shift 2
  free "http://127.0.0.1:$port/healthz"
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env -u RUST_LOG BIND="127.0.0.1:$port" JWT_SECRET="$secret" \
    LOGIN_RATE_PER_MINUTE=100000 ACCESS_TTL=15m "$@" "$binary" >"$work/$name.log" 2>&1) &
  eval "pid_$name=$!"
  servers+=("$!")
  wait_for "http://127.0.0.1:$port/healthz" "$!" "$work/$name.log"
}
stop_server() { # NAME
  local pid_var="pid_$1"
  kill "${!pid_var}" 2>/dev/null || true
  wait "${!pid_var}" 2>/dev/null || true
}

start_bare() {
  free "$bare/me"
  JWT_SECRET="$secret" BIND="127.0.0.1:$BARE_PORT" "$examples/bare_server" >"$work/bare.log" 2>&1 &
  pid_bare=$!
  servers+=("$!")
  for _ in $(seq 1 100); do curl -s "$bare/me" >/dev/null && return 0; sleep 0.1; done
  echo "the bare server did not start" >&2; exit 1
}

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh # the scripts run from the repository root (cd above)

# wrk_run ARGS…: prints "requests/s p50_ms p99_ms"
wrk_run() {
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v
    }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }

# measure LABEL ARGS…: one wrk run, appended to $work/runs as "label rps p50 p99".
measure() {
  local label=$1; shift
  local result
  result=$(wrk_run "$@")
  echo "$label $result" >>"$work/runs"
  echo "  $label: $result (requests/s p50_ms p99_ms)" >&2
}
measure_check() { # label strategy
  if [ "$2" = cookie ]; then
    measure "$1" -H "Cookie: revocable_session=$cookie" "$base/api/cookie/me"
  else
    measure "$1" -H "Authorization: Bearer $token" "$base/api/$2/me"
  fi
}

# throughput BACKEND_LABEL VAR=value…: the bare server, /healthz and every strategy, cache on and
# off, ROUNDS interleaved rounds; writes the table rows to $work/table.
throughput() {
  local backend=$1; shift
  : >"$work/runs"
  for round in $(seq 1 "$ROUNDS"); do
    echo "$backend, round $round" >&2
    start_server a "$PORT" REVOCATION_CACHE=on "$@"
    [ "$round" = 1 ] && log_in "$base"
    measure bare -H "Authorization: Bearer $token" "$bare/me"
    measure healthz "$base/healthz"
    for strategy in stateless version denylist allowlist cookie; do measure_check "$strategy/on" "$strategy"; done
    stop_server a
    start_server a "$PORT" REVOCATION_CACHE=off "$@"
    for strategy in stateless version denylist allowlist cookie; do measure_check "$strategy/off" "$strategy"; done
    stop_server a
  done
  field() { awk -v l="$1" -v f="$2" '$1 == l { print $f }' "$work/runs" | median; }
  local bare_rps stateless_rps
  bare_rps=$(field bare 2)
  stateless_rps=$(field stateless/on 2)
  row() { # name label cache
    local rps p50 p99
    rps=$(field "$2" 2); p50=$(field "$2" 3); p99=$(field "$2" 4)
    printf '| %s | %s%s | %s | %s | %s | %s | %s |\n' "$backend" "$1" "$3" "$rps" "$p50" "$p99" \
      "$(ratio "$rps" "$stateless_rps")" "$(ratio "$rps" "$bare_rps")" >>"$work/table"
  }
  row "bare actix-web + HS256 (\`examples/bare_server\`)" bare ""
  row "\`/healthz\`" healthz ""
  for strategy in stateless version denylist allowlist cookie; do
    row "\`/api/$strategy/me\`" "$strategy/on" ", cache on"
    row "\`/api/$strategy/me\`" "$strategy/off" ", cache off"
  done
}

# logins: successful POST /api/token per second against the argon2id bound measured in the same
# run, then the p99 of /api/version/me beside log-ins and alone. Embedded default.
#
# Only log-ins answered 200 count, counted by wrk's own script as the answers arrive (wrk's
# requests/s counts every answer: a 429 or a 401 comes back in microseconds and would count as a
# log-in far faster than argon2 allows; the server's own counter would also count the log-ins
# still in flight when wrk stops, answered to nobody). The bound is
# `examples/argon2_cost` verifying a password with the server's own verification on every core at
# once. LOGIN_ROUNDS log-in runs alternate with LOGIN_ROUNDS + 1 bound runs, and each log-in run
# is compared with the mean of the bound runs just before and just after it, so that both see the
# same machine, shared or not. Two ratios per round:
# - wall clock: log-ins/s ÷ verifications/s, what the log-in target is stated in;
# - CPU: the argon2_cost process's CPU time per verification ÷ the server's CPU time per
#   successful log-in (all its threads, user and system, from /proc): how much of what a log-in
#   costs the server is the hash itself. Other work on shared cores slows both runs' clocks
#   unevenly and charges neither process's CPU time, so this ratio moves less, but CPU time per
#   instruction moves with what shares the caches too: only the instruction count repeats.
LOGIN_ROUNDS="${BENCH_LOGIN_ROUNDS:-3}"
LOGIN_DURATION="${BENCH_LOGIN_DURATION:-8s}"
# cpu_ms PID: the CPU time of every thread of PID so far, user and system, in ms.
cpu_ms() { awk -v tick="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000 / tick }' "/proc/$1/stat"; }
# settle PID: waits (at most 10 s) until PID stops using CPU: the log-ins still queued when wrk
# stopped are hashed for nobody, and would otherwise slow the bound measured next.
settle() {
  local before after
  for _ in $(seq 1 50); do
    before=$(cpu_ms "$1"); sleep 0.2; after=$(cpu_ms "$1")
    [ $((after - before)) -lt 20 ] && return 0
  done
}
# bound_run: "verifications_per_s cpu_ms_per_verification median_ms", every core hashing for 3 s.
bound_run() {
  local out
  out=$(/usr/bin/time -f '%U %S' "$examples/argon2_cost" "$(nproc)" 3 2>&1)
  awk 'NR == 1 { median = $1; rate = $2; count = $4 } NR == 2 { cpu = ($1 + $2) * 1000 }
    END { printf "%.1f %.2f %.2f\n", rate, cpu / count, median }' <<<"$out"
}
# login_run CONNECTIONS: log-ins for LOGIN_DURATION; prints
# "logins_per_s other_answers p50_ms p99_ms server_cpu_ms_per_login".
login_run() {
  local cpu_before cpu_after
  cpu_before=$(cpu_ms "$pid_a")
  wrk -t1 -c"$1" -d"$LOGIN_DURATION" --latency -s "$work/login.lua" "$base/api/token" >"$work/login-run"
  cpu_after=$(cpu_ms "$pid_a")
  settle "$pid_a"
  awk -v cpu=$((cpu_after - cpu_before)) '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v
    }
    / requests in / { total = $1; seconds = substr($4, 1, length($4) - 2) + 0 }
    /^successful / { ok = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    END { printf "%.1f %d %.3f %.3f %.2f\n", ok / seconds, total - ok, p50, p99, (ok > 0 ? cpu / ok : 0) }' "$work/login-run"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

logins() {
  local cores
  cores=$(nproc)
  start_server a "$PORT" REVOCATION_CACHE=on
  log_in "$base"
  # One account per connection, taken in turn: an account counts each password attempt before
  # checking it (auth::throttle), so more than ACCOUNT_LOCK_AFTER log-ins to one account at once
  # are refused with 429 whatever the password, and would measure that limit, not argon2.
  local accounts=$CONNECTIONS prefix="bench-login-$RANDOM$RANDOM"
  for index in $(seq 0 $((accounts - 1))); do
    curl -sf -XPOST "$base/api/register" -H 'content-type: application/json' \
      -d "{\"email\":\"$prefix-$index@example.com\",\"password\":\"benchmark password\"}" >/dev/null
  done
  cat >"$work/login.lua" <<LUA
local sent = 0
request = function()
  sent = sent + 1
  local body = '{"email":"$prefix-' .. (sent % $accounts) .. '@example.com","password":"benchmark password"}'
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) successful = 0 end
function response(status, headers, body) if status == 200 then successful = successful + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("successful") end
  io.write(string.format("successful %d\\n", total))
end
LUA
  local previous current round wall_ratios="" cpu_ratios="" other=0 rows=""
  previous=$(bound_run)
  for round in $(seq 1 "$LOGIN_ROUNDS"); do
    local login
    login=$(login_run "$CONNECTIONS")
    current=$(bound_run)
    local line
    line=$(awk -v p="$previous" -v c="$current" -v l="$login" 'BEGIN {
      split(p, a, " "); split(c, b, " "); split(l, x, " ")
      rate = (a[1] + b[1]) / 2; cpu = (a[2] + b[2]) / 2
      printf "%.1f %.1f %.2f %.2f %.2f %.2f %d %.3f %.3f\n", x[1], rate, x[1] / rate, x[5], cpu, cpu / x[5], x[2], x[3], x[4]
    }')
    echo "  round $round: log-ins/s, bound/s, ratio, server CPU ms per log-in, argon2 CPU ms per verification, ratio, other answers, p50, p99: $line" >&2
    set -- $line
    wall_ratios+=" $3"; cpu_ratios+=" $6"; other=$((other + $7))
    rows+="| $round | $1 | $2 | **$3** | $4 | $5 | **$6** | $8 | $9 |"$'\n'
    previous=$current
  done
  local wall cpu
  wall=$(median <<<"$wall_ratios"); cpu=$(median <<<"$cpu_ratios")
  [ "$other" = 0 ] || echo "  $other log-in requests were not answered 200: not counted" >&2
  # /api/version/me beside log-ins, then alone.
  login_run "$CONNECTIONS" >"$work/login-together" &
  local loader=$!
  sleep 0.5
  local together_version quiet_version together_login
  together_version=$(CONNECTIONS=4 wrk_run -H "Authorization: Bearer $token" "$base/api/version/me")
  wait "$loader"
  together_login=$(cut -d' ' -f1 "$work/login-together")
  quiet_version=$(CONNECTIONS=4 wrk_run -H "Authorization: Bearer $token" "$base/api/version/me")
  stop_server a
  {
    echo "Successful log-ins (\`POST /api/token\` answered 200, counted by wrk as the answers arrived;"
    echo "$other other answers, not counted) on $CONNECTIONS connections for"
    echo "$LOGIN_DURATION per round, against the argon2id bound: \`examples/argon2_cost\` running the server's own"
    echo "verification (m=19456 KiB, t=2, p=1, working memory reused) on $cores threads at once for 3 s"
    echo "before and after each round, the round compared with the mean of the two. wrk ran on the same"
    echo "$cores cores. The wall-clock ratio is log-ins/s ÷ verifications/s; the CPU ratio is the CPU time"
    echo "argon2_cost spent per verification ÷ the CPU time the server (every thread, user and system)"
    echo "spent per successful log-in: the share of a log-in's cost that is the hash."
    echo
    echo "| round | log-ins/s | bound/s | ÷ bound | server CPU ms per log-in | argon2 CPU ms per verification | CPU ratio | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s' "$rows"
    echo
    echo "Median of the rounds: **$wall×** the bound by the wall clock, **$cpu×** by CPU time. The"
    echo "ratios move from round to round with whatever else shares the cores (other processes, the"
    echo "hypervisor's steal), the wall-clock one most: CPU time per instruction moves too. The count that"
    echo "repeats exactly is in *Instructions per log-in*."
    echo
    echo "| \`/api/version/me\`, 4 connections | requests/s | p50 ms | p99 ms |"
    echo "|---|---|---|---|"
    set -- $together_version
    echo "| beside log-ins ($together_login successful log-ins/s) | $1 | $2 | $3 |"
    set -- $quiet_version
    echo "| no log-ins | $1 | $2 | $3 |"
  } >"$work/logins"
}

# seed DB_FILE ROWS: ROWS live token login sessions of one user and ROWS denylisted jtis, inserted
# straight into the SQLite file (the schema comes from `revocable migrate`).
seed() {
  local file=$1 rows=$2
  (cd "$(dirname "$file")" && env -u RUST_LOG DATABASE_URL="sqlite://$file?mode=rwc" "$binary" migrate >/dev/null)
  local now far
  now=$(($(date +%s) * 1000)); far=$((now + 86400000))
  sqlite3 "$file" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
INSERT INTO users (id, email, email_normalized, password_hash, token_version, created_at, password_changed_at)
VALUES ('seed-user', 'seed@example.com', 'seed@example.com', 'not-a-hash', 0, $now, $now);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $rows)
INSERT INTO login_sessions (id, user_id, kind, user_agent, ip, created_at, last_seen_at, expires_at, idle_expires_at)
SELECT 'seed-session-' || i, 'seed-user', 'token', 'bench', '127.0.0.1', $now, $now, $far, $far FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $rows)
INSERT INTO denylist (jti, expires_at, created_at) SELECT 'seed-denied-' || i, $far, $now FROM n;
COMMIT;
SQL
}
vmrss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# tokens_lua FILE COUNT ROWS: a wrk script that sends each of COUNT tokens (sessions spread over
# ROWS) once per round, in turn.
tokens_lua() {
  local file=$1 count=$2 rows=$3
  JWT_SECRET="$secret" "$examples/mint_tokens" seed-user seed-session- "$count" "$rows" >"$file.tokens"
  cat >"$file" <<LUA
local tokens = {}
for line in io.lines("$file.tokens") do tokens[#tokens + 1] = line end
local next_token = 0
request = function()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[next_token] })
end
LUA
}

# memory: VmRSS of one instance holding SEED_ROWS live sessions and SEED_ROWS denylisted jtis, and
# the cost of a check at each of CHECK_SIZES rows. Embedded default.
memory() {
  mkdir -p "$work/memory"
  local file="$work/memory/revocable.db"
  seed "$file" "$SEED_ROWS"
  (cd "$work/memory" && exec env -u RUST_LOG BIND="127.0.0.1:$PORT" JWT_SECRET="$secret" \
    DATABASE_URL="sqlite://$file" REVOCATION_CACHE=on "$binary" >"$work/memory.log" 2>&1) &
  local pid=$!
  servers+=("$pid")
  wait_for "$base/healthz" "$pid" "$work/memory.log"
  local started warmed
  started=$(vmrss_kib "$pid")
  tokens_lua "$work/memory/warm.lua" "$SEED_ROWS" "$SEED_ROWS"
  # One request per session fills the session cache; the denylist is loaded whole at start.
  wrk -t1 -c8 -d60s -s "$work/memory/warm.lua" "$base/api/allowlist/me" >/dev/null &
  local warm=$!
  local wanted=$((SEED_ROWS + SEED_ROWS / 10)) served=0
  for _ in $(seq 1 600); do
    served=$(curl -sf "$base/metrics" | awk '/revocable_http_requests_total.*allowlist/ { s += $NF } END { print s + 0 }')
    [ "$served" -ge "$wanted" ] && break
    sleep 0.1
  done
  kill "$warm" 2>/dev/null || true; wait "$warm" 2>/dev/null || true
  warmed=$(vmrss_kib "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  {
    echo "| state | VmRSS |"
    echo "|---|---|"
    echo "| started on $SEED_ROWS live sessions + $SEED_ROWS denylisted jtis | $((started / 1024)) MiB |"
    echo "| after checking every session once ($served \`/api/allowlist/me\` requests) | $((warmed / 1024)) MiB |"
  } >"$work/memory-table"

  : >"$work/check-table"
  for rows in $CHECK_SIZES; do
    rm -rf "$work/checks"; mkdir -p "$work/checks"
    seed "$work/checks/revocable.db" "$rows"
    local count=$((rows < 100000 ? rows : 100000))
    tokens_lua "$work/checks/checks.lua" "$count" "$rows"
    for cache in on off; do
      (cd "$work/checks" && exec env -u RUST_LOG BIND="127.0.0.1:$PORT" JWT_SECRET="$secret" \
        DATABASE_URL="sqlite://$work/checks/revocable.db" REVOCATION_CACHE=$cache "$binary" >"$work/checks.log" 2>&1) &
      pid=$!
      servers+=("$pid")
      wait_for "$base/healthz" "$pid" "$work/checks.log"
      for strategy in denylist allowlist; do
        set -- $(wrk_run -s "$work/checks/checks.lua" "$base/api/$strategy/me")
        echo "| $rows | $strategy | $cache | $count | $1 | $2 | $3 |" >>"$work/check-table"
        echo "  $rows rows, $strategy, cache $cache: $1 requests/s" >&2
      done
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
}

# propagation BACKEND_LABEL VAR=value…: two instances on the same stores; revocations on A,
# refusals observed on B, with the push path on and cut.
propagation() {
  local backend=$1; shift
  for mode in idle loaded cut; do
    local push=on count=$REVOCATIONS load=none
    [ "$mode" = cut ] && push=off && count=$CUT_REVOCATIONS
    start_server a "$PORT" REVOCATION_PUSH=$push "$@"
    start_server b "$PORT_B" REVOCATION_PUSH=$push "$@"
    local loaders=()
    if [ "$mode" = loaded ]; then
      # Bounded: the loaders are stopped as soon as the measurement ends, at the latest after 10 min.
      log_in "$base"
      for target in "$base" "$base_b"; do
        wrk -t1 -c"$LOAD_CONNECTIONS" -d600s -H "Authorization: Bearer $token" "$target/api/version/me" \
          >"$work/load-$mode-$RANDOM" 2>&1 &
        loaders+=("$!")
        servers+=("$!")
      done
      load="wrk -c$LOAD_CONNECTIONS on each"
      sleep 1
    fi
    "$examples/propagation" "$base" "$base_b" "$count" | while read -r strategy samples p50 p99 max unrefused unavailable; do
      echo "| $backend | $strategy | $push | $load | $samples | $p50 | $p99 | $max | $unrefused | $unavailable |"
    done >>"$work/propagation"
    for pid in "${loaders[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    stop_server a
    stop_server b
  done
}

propagation_section() {
  echo "## Propagation between two instances"
  echo
  echo "\`examples/propagation\`: log in on A, revoke on A (\`version\`: log out everywhere; \`denylist\`,"
  echo "\`allowlist\`: log out; \`cookie\`: sign the browser out by \`DELETE /api/sessions/{id}\`), then poll B"
  echo "until it refuses. Milliseconds from A's response to B's first refusal. \`push off\` is"
  echo "\`REVOCATION_PUSH=off\` on both instances: only the catch-up poll remains (the worst case)."
  echo "\`load\`: while \`wrk -t1 -cN\` keeps both instances' \`/api/version/me\` busy on the same 2 cores"
  echo "(so the revoking request, the notification and B's refusal all queue behind it)."
  echo "\`unrefused\` counts revocations B still accepted after 5 s. \`503s\`: log-ins and revocations A answered 503 and"
  echo "that were sent again (the database shares the loaded cores; timing starts at the 204)."
  echo
  echo "| stores | strategy | push | load | revocations | p50 ms | p99 ms | max ms | unrefused | 503s |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  cat "$work/propagation"
}

new_pg_database() { # sets $url; dropped on exit
  local db="revocable_bench_$$_$RANDOM"
  psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
  databases+=("$db")
  url="${PG_URL%/*}/$db"
}

started_at=$(date +%s)
if $logins_only; then
  logins
  {
    echo "## Log-in"
    echo
    cat "$work/logins"
    echo
    echo "Section rewritten by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(($(date +%s) - started_at)) s."
  } >"$work/section"
  replace_section "$OUT" "$work/section"
  cat "$work/section"
  exit 0
fi
if $propagation_only; then
  : >"$work/propagation"
  new_pg_database
  propagation "PostgreSQL + Redis" DATABASE_URL="$url" REDIS_URL="$REDIS" REDIS_PREFIX="$prefix"
  new_pg_database
  propagation "PostgreSQL" DATABASE_URL="$url"
  propagation_section >"$work/section"
  # Replace that section of the output, keeping the rest; note the run in it.
  {
    echo
    echo "Section rewritten by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(($(date +%s) - started_at)) s."
  } >>"$work/section"
  replace_section "$OUT" "$work/section"
  cat "$work/section"
  exit 0
fi
start_bare
: >"$work/table"
: >"$work/propagation"
echo "SQLite, in-process" >&2
throughput "SQLite" DATABASE_URL="sqlite://$work/throughput.db?mode=rwc"
echo "log-ins" >&2
logins
echo "memory and per-check cost" >&2
memory
if $scale_out; then
  echo "PostgreSQL + Redis" >&2
  new_pg_database
  throughput "PostgreSQL + Redis" DATABASE_URL="$url" REDIS_URL="$REDIS" REDIS_PREFIX="$prefix"
  propagation "PostgreSQL + Redis" DATABASE_URL="$url" REDIS_URL="$REDIS" REDIS_PREFIX="$prefix"
  echo "PostgreSQL alone" >&2
  new_pg_database
  throughput "PostgreSQL" DATABASE_URL="$url"
  propagation "PostgreSQL" DATABASE_URL="$url"
fi
elapsed=$(($(date +%s) - started_at))

mkdir -p "$(dirname "$OUT")"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s."
  echo "Machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -m)."
  echo
  echo "A release build with its default settings (2 workers, \`RUST_LOG\` unset, so \`info\`) is loaded"
  echo "by \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency\` on the same machine; each figure is the median"
  echo "of $ROUNDS interleaved rounds. The bare server is \`examples/bare_server\`: actix-web with 2 workers,"
  echo "no middleware, verifying the same HS256 token with the same key, issuer and audience."
  echo "\`cache on|off\` is \`REVOCATION_CACHE\`: \`on\` answers from the in-process revocation cache, \`off\` looks up"
  echo "the stores on every request."
  echo
  echo "## Throughput"
  echo
  echo "| stores | route | requests/s | p50 ms | p99 ms | ÷ stateless | ÷ bare |"
  echo "|---|---|---|---|---|---|---|"
  cat "$work/table"
  echo
  echo "## Log-in"
  echo
  cat "$work/logins"
  echo
  echo "## Memory"
  echo
  echo "Rows seeded straight into SQLite; VmRSS from \`/proc/PID/status\`."
  echo
  cat "$work/memory-table"
  echo
  echo "## Cost of a check by number of rows"
  echo
  echo "SQLite; tokens of distinct sessions spread over the rows, each sent in turn (\`examples/mint_tokens\`);"
  echo "as many denylisted jtis as sessions; the tokens checked are not denylisted (the common answer)."
  echo
  echo "| rows | strategy | cache | distinct tokens | requests/s | p50 ms | p99 ms |"
  echo "|---|---|---|---|---|---|---|"
  cat "$work/check-table"
  if $scale_out; then
    echo
    propagation_section
  fi
} >"$OUT"
cat "$OUT"
