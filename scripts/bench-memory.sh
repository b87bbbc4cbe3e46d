#!/usr/bin/env bash
# Start-up time and resident memory of one instance holding many denylisted jtis and live login
# sessions, the rows seeded straight into SQLite (embedded default). For each count of denylisted
# jtis in BENCH_DENYLISTED (10⁵ 10⁶ 10⁷): BENCH_SESSIONS (10⁶) live token login sessions and that
# many denylist rows (random 16-byte jtis in URL-safe base64, as revocable issues them) are
# inserted; a release build starts on them, and the script reports how long it took to answer
# /readyz (the denylist is loaded whole before that), VmRSS from /proc then, and VmRSS after
# BENCH_CHECKED (10⁵) distinct sessions were each checked once on /api/allowlist/me (the tokens
# from examples/mint_tokens, sessions spread over all the rows).
#
#   scripts/bench-memory.sh          writes its section of docs/benchmarks.md
#
# BENCH_OUTPUT names another file; BENCH_BUILD=0 skips the build. Seeding 10⁷ rows takes minutes; BENCH_DENYLISTED="100000
# 1000000" leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
export JWT_ISSUER="${JWT_ISSUER:-revocable}"
# /compare's measurement at start-up would add its own instance to the ready time and RSS.
export COMPARE_AT_START=off

DENYLISTED="${BENCH_DENYLISTED:-100000 1000000 10000000}"
SESSIONS="${BENCH_SESSIONS:-1000000}"
CHECKED="${BENCH_CHECKED:-100000}"
PORT="${BENCH_PORT:-18095}"
OUT="${BENCH_OUTPUT:-docs/benchmarks.md}"
command_line="scripts/bench-memory.sh${*:+ $*}"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (Debian: wrk, curl, python3)" >&2; exit 2; }
done
# BENCH_BUILD=0 uses the release build already there (docs/benchmarks.md is compiled in, so a run of
# another benchmark script just before makes this build a long one).
[ "${BENCH_BUILD:-1}" = 0 ] || cargo build --release --quiet --bin revocable --example mint_tokens
binary="$PWD/target/release/revocable"
examples="$PWD/target/release/examples"
base="http://127.0.0.1:$PORT"
work=$(mktemp -d)
secret=$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

vmrss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# seed FILE SESSIONS DENYLISTED: the schema from `revocable migrate`, then the rows.
seed() {
  local file=$1
  (cd "$(dirname "$file")" && env -u RUST_LOG DATABASE_URL="sqlite://$file?mode=rwc" "$binary" migrate >/dev/null)
  python3 - "$@" <<'PY'
import base64, os, sqlite3, sys, time
path, sessions, denylisted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000)
far = now + 86_400_000
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = OFF")
db.execute(
    "INSERT INTO users (id, email, email_normalized, password_hash, token_version, created_at, password_changed_at)"
    " VALUES ('seed-user', 'seed@example.com', 'seed@example.com', 'not-a-hash', 0, ?, ?)", (now, now))
db.execute(
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
    " INSERT INTO login_sessions (id, user_id, kind, user_agent, ip, created_at, last_seen_at, expires_at, idle_expires_at)"
    " SELECT 'seed-session-' || i, 'seed-user', 'token', 'bench', '127.0.0.1', ?, ?, ?, ? FROM n",
    (sessions, now, now, far, far))
batch = 100_000
for start in range(0, denylisted, batch):
    rows = [(base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(), far, now)
            for _ in range(min(batch, denylisted - start))]
    db.executemany("INSERT INTO denylist (jti, expires_at, created_at) VALUES (?, ?, ?)", rows)
db.commit()
db.close()
PY
}

# tokens_lua FILE: a wrk script sending each of CHECKED tokens (sessions spread over SESSIONS) in turn.
tokens_lua() {
  local file=$1
  JWT_SECRET="$secret" "$examples/mint_tokens" seed-user seed-session- "$CHECKED" "$SESSIONS" >"$file.tokens"
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

tokens_lua "$work/check.lua"
: >"$work/rows"
for denylisted in $DENYLISTED; do
  echo "seeding $SESSIONS sessions + $denylisted denylisted jtis" >&2
  rm -rf "$work/db"; mkdir -p "$work/db"
  seed_started=$(date +%s)
  seed "$work/db/revocable.db" "$SESSIONS" "$denylisted"
  seed_seconds=$(($(date +%s) - seed_started))
  started=$(date +%s%N)
  (cd "$work/db" && exec env -u RUST_LOG BIND="127.0.0.1:$PORT" JWT_SECRET="$secret" \
    DATABASE_URL="sqlite://$work/db/revocable.db" "$binary" >"$work/server.log" 2>&1) &
  pid=$!
  ready=""
  for _ in $(seq 1 6000); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -sf "$base/readyz" >/dev/null 2>&1; then ready=$(date +%s%N); break; fi
    sleep 0.01
  done
  [ -n "$ready" ] || { cat "$work/server.log" >&2; echo "the server never became ready" >&2; exit 1; }
  ready_ms=$(((ready - started) / 1000000))
  rss_ready=$(vmrss_mib "$pid")
  # Each of CHECKED sessions checked once (a little more: wrk stops on the metrics' count).
  wrk -t1 -c8 -d120s -s "$work/check.lua" "$base/api/allowlist/me" >/dev/null &
  load=$!
  served=0
  for _ in $(seq 1 1200); do
    served=$(curl -sf "$base/metrics" | awk '/revocable_http_requests_total.*allowlist/ { s += $NF } END { print s + 0 }')
    [ "$served" -ge "$CHECKED" ] && break
    sleep 0.1
  done
  kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true
  rss_checked=$(vmrss_mib "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  echo "  ready in $ready_ms ms, $rss_ready MiB; $rss_checked MiB after $served checks (seeded in $seed_seconds s)" >&2
  echo "| $denylisted | $SESSIONS | $(awk -v ms="$ready_ms" 'BEGIN { printf "%.2f", ms / 1000 }') | $rss_ready | $served | $rss_checked | $seed_seconds |" >>"$work/rows"
done

{
  echo "## Memory with a million sessions"
  echo
  echo "Written by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC'): rows seeded straight into SQLite"
  echo "(random 16-byte jtis in URL-safe base64, as revocable issues them), a release build started on"
  echo "them with its defaults; *ready* is the time from starting the process to its first 200 on"
  echo "\`/readyz\` (the whole denylist loaded); VmRSS from \`/proc/PID/status\`, at ready and after that"
  echo "many \`/api/allowlist/me\` requests, each of $CHECKED distinct sessions checked once."
  echo
  echo "| denylisted jtis | live sessions | ready s | VmRSS at ready, MiB | checks | VmRSS after, MiB | seeding s |"
  echo "|---|---|---|---|---|---|---|"
  cat "$work/rows"
} >"$work/section"
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
replace_section "$OUT" "$work/section"
cat "$work/section"
