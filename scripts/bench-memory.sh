#!/usr/bin/env bash
# Start-up time and resident memory of one instance holding many denylisted jtis and live login
# sessions, the rows seeded straight into the database: SQLite (embedded default) and, when
# BENCH_STORES includes it, PostgreSQL (BENCH_POSTGRES_URL, a database of its own created and
# dropped by the script). For each count of denylisted jtis in BENCH_DENYLISTED (10⁵ 10⁶ 10⁷):
# BENCH_SESSIONS (10⁶) live token login sessions and that many denylist rows (random 16-byte jtis
# in URL-safe base64, as revocable issues them) are inserted; a release build starts on them, and
# the script reports how long it took to answer /readyz (the denylist is loaded whole before that),
# VmRSS from /proc then, and VmRSS after BENCH_CHECKED (10⁵) distinct sessions were each checked
# once on /api/allowlist/me (the tokens from examples/mint_tokens, sessions spread over all the
# rows). `REVOCATION_CACHE_CAPACITY` is raised to the number of denylisted jtis where that is past
# its default (10⁶), so that the whole denylist is held, as it must be for memory to answer.
#
#   scripts/bench-memory.sh          writes its section of docs/benchmarks.md
#
# BENCH_OUTPUT names another file; BENCH_BUILD=0 skips the build; BENCH_STORES="sqlite" leaves
# PostgreSQL out. Seeding 10⁷ rows takes a minute or two per store.
set -euo pipefail
cd "$(dirname "$0")/.."
export JWT_ISSUER="${JWT_ISSUER:-revocable}"
# /compare's measurement at start-up would add its own instance to the ready time and RSS.
export COMPARE_AT_START=off

DENYLISTED="${BENCH_DENYLISTED:-100000 1000000 10000000}"
STORES="${BENCH_STORES:-sqlite postgres}"
POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
postgres_db="revocable_bench_memory_$$"
SESSIONS="${BENCH_SESSIONS:-1000000}"
CHECKED="${BENCH_CHECKED:-100000}"
PORT="${BENCH_PORT:-18095}"
OUT="${BENCH_OUTPUT:-docs/benchmarks.md}"
command_line="scripts/bench-memory.sh${*:+ $*}"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
for tool in wrk curl python3 psql; do
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
  case " $STORES " in *" postgres "*) psql -q "$POSTGRES_URL/postgres" -c "DROP DATABASE IF EXISTS $postgres_db" >/dev/null 2>&1 || true ;; esac
  rm -rf "$work"
}
trap cleanup EXIT

vmrss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# seed_sqlite FILE SESSIONS DENYLISTED: the schema from `revocable migrate`, then the rows. The
# jtis are generated, sorted and inserted in key order with no journal, so that the primary key's
# index is appended to rather than split at random (10⁷ rows in about a minute).
seed_sqlite() {
  local file=$1
  (cd "$(dirname "$file")" && env -u RUST_LOG DATABASE_URL="sqlite://$file?mode=rwc" "$binary" migrate >/dev/null)
  python3 - "$@" <<'PY'
import base64, os, sqlite3, sys, time
path, sessions, denylisted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000)
far = now + 86_400_000
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode = OFF")
db.execute("PRAGMA synchronous = OFF")
db.execute("PRAGMA cache_size = -1000000")
db.execute(
    "INSERT INTO users (id, email, email_normalized, password_hash, token_version, created_at, password_changed_at)"
    " VALUES ('seed-user', 'seed@example.com', 'seed@example.com', 'not-a-hash', 0, ?, ?)", (now, now))
db.execute(
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
    " INSERT INTO login_sessions (id, user_id, kind, user_agent, ip, created_at, last_seen_at, expires_at, idle_expires_at)"
    " SELECT 'seed-session-' || i, 'seed-user', 'token', 'bench', '127.0.0.1', ?, ?, ?, ? FROM n",
    (sessions, now, now, far, far))
raw = os.urandom(16 * denylisted)
encode = base64.urlsafe_b64encode
jtis = sorted(encode(raw[at:at + 16]).rstrip(b"=").decode() for at in range(0, len(raw), 16))
del raw
db.executemany("INSERT INTO denylist (jti, expires_at, created_at) VALUES (?, ?, ?)",
               ((jti, far, now) for jti in jtis))
db.commit()
db.execute("PRAGMA journal_mode = WAL")
db.close()
PY
}

# seed_postgres URL SESSIONS DENYLISTED: the same rows with generate_series; a jti is the URL-safe
# base64 of a random UUID's 16 bytes.
seed_postgres() {
  local url=$1 sessions=$2 denylisted=$3
  psql -q "$POSTGRES_URL/postgres" -c "DROP DATABASE IF EXISTS $postgres_db" -c "CREATE DATABASE $postgres_db" >/dev/null
  env -u RUST_LOG DATABASE_URL="$url" "$binary" migrate >/dev/null
  local now far
  now=$(($(date +%s) * 1000)); far=$((now + 86400000))
  psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<SQL
INSERT INTO users (id, email, email_normalized, password_hash, token_version, created_at, password_changed_at)
  VALUES ('seed-user', 'seed@example.com', 'seed@example.com', 'not-a-hash', 0, $now, $now);
INSERT INTO login_sessions (id, user_id, kind, user_agent, ip, created_at, last_seen_at, expires_at, idle_expires_at)
  SELECT 'seed-session-' || i, 'seed-user', 'token', 'bench', '127.0.0.1', $now, $now, $far, $far
  FROM generate_series(0, $sessions - 1) AS i;
INSERT INTO denylist (jti, expires_at, created_at)
  SELECT translate(rtrim(encode(uuid_send(gen_random_uuid()), 'base64'), '='), '+/', '-_'), $far, $now
  FROM generate_series(1, $denylisted);
VACUUM ANALYZE;
SQL
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
for store in $STORES; do
for denylisted in $DENYLISTED; do
  echo "$store: seeding $SESSIONS sessions + $denylisted denylisted jtis" >&2
  rm -rf "$work/db"; mkdir -p "$work/db"
  seed_started=$(date +%s)
  case $store in
    sqlite)
      database_url="sqlite://$work/db/revocable.db"; store_name=SQLite
      seed_sqlite "$work/db/revocable.db" "$SESSIONS" "$denylisted" ;;
    postgres)
      database_url="$POSTGRES_URL/$postgres_db"; store_name=PostgreSQL
      seed_postgres "$database_url" "$SESSIONS" "$denylisted" ;;
    *) echo "unknown store $store (sqlite, postgres)" >&2; exit 2 ;;
  esac
  seed_seconds=$(($(date +%s) - seed_started))
  capacity=$((denylisted > 1000000 ? denylisted : 1000000))
  started=$(date +%s%N)
  (cd "$work/db" && exec env -u RUST_LOG BIND="127.0.0.1:$PORT" JWT_SECRET="$secret" \
    REVOCATION_CACHE_CAPACITY="$capacity" DATABASE_URL="$database_url" "$binary" >"$work/server.log" 2>&1) &
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
  # The load's own log line: how many rows, whether all were held, how long the load took.
  loaded=$(grep -m1 'revocation cache loaded' "$work/server.log" | grep -oE '(denylisted|complete|elapsed_ms)[=":]+[a-z0-9]+' | tr -d '"' | tr '\n' ' ')
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
  echo "  ready in $ready_ms ms, $rss_ready MiB (loaded: ${loaded:-?}); $rss_checked MiB after $served checks (seeded in $seed_seconds s)" >&2
  load_ms=$(grep -oE 'elapsed_ms[=":]+[0-9]+' <<<"$loaded" | grep -oE '[0-9]+$' || echo 0)
  seconds() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
  echo "| $store_name | $denylisted | $SESSIONS | $(seconds "$ready_ms") | $(seconds "$load_ms") | $rss_ready | $served | $rss_checked | $seed_seconds |" >>"$work/rows"
done
done

{
  echo "## Memory with a million sessions"
  echo
  echo "Written by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC'): rows seeded straight into the database"
  echo "(random 16-byte jtis in URL-safe base64, as revocable issues them), a release build started on"
  echo "them with its defaults; *ready* is the time from starting the process to its first 200 on"
  echo "\`/readyz\` (the whole denylist loaded); *load* is the denylist load alone, from its log line;"
  echo "VmRSS from \`/proc/PID/status\`, at ready and after that"
  echo "many \`/api/allowlist/me\` requests, each of $CHECKED distinct sessions checked once."
  echo "\`REVOCATION_CACHE_CAPACITY\` is the number of denylisted jtis where that is past its default of"
  echo "10⁶, so that the whole denylist is held. Machine: $(nproc) cores, shared with other work while this ran."
  echo
  echo "| store | denylisted jtis | live sessions | ready s | load s | VmRSS at ready, MiB | checks | VmRSS after, MiB | seeding s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  cat "$work/rows"
} >"$work/section"
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
replace_section "$OUT" "$work/section"
cat "$work/section"
