#!/usr/bin/env bash
# Runs schemathesis against /openapi.json of a running debug server, once with a Bearer token and
# once with a browser's cookie (plus its CSRF token), and fails on any 5xx, any response that does
# not match the document, and any operation that accepts a missing or bad credential.
# Before each pass it checks with curl that the credential authenticates (`/api/version/me` for the
# token, `/api/cookie/me` for the cookie), so a pass never runs unauthenticated by mistake.
# Usage: scripts/schemathesis.sh [--credentials-only] DATABASE_URL [REDIS_URL]
#        scripts/schemathesis.sh --install-only
#   --credentials-only: start the server, log in both ways, check the credentials, stop there.
#   --install-only: install schemathesis into target/schemathesis-venv and stop there.
# REVOCABLE_BINARY: run that binary instead of building one (CI passes the one `cargo test` built).
set -euo pipefail
cd "$(dirname "$0")/.."

credentials_only=false
install_only=false
if [ "${1:-}" = "--credentials-only" ]; then
  credentials_only=true
  shift
elif [ "${1:-}" = "--install-only" ]; then
  install_only=true
  shift
fi
database_url="${1:-}"
redis_url="${2:-}"
venv="target/schemathesis-venv"
version="4.32.5"
examples="${SCHEMATHESIS_MAX_EXAMPLES:-5}"

if ! $credentials_only && ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi
if $install_only; then exit 0; fi
[ -n "$database_url" ] || { echo "usage: scripts/schemathesis.sh [--credentials-only] DATABASE_URL [REDIS_URL]" >&2; exit 2; }

binary="${REVOCABLE_BINARY:-}"
if [ -z "$binary" ]; then cargo build --quiet; binary=target/debug/revocable; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
log=$(mktemp)
env DATABASE_URL="$database_url" BIND="127.0.0.1:$port" LOGIN_RATE_PER_MINUTE=100000 CLIENT_AUTH_FAILURES_PER_MINUTE=100000 \
  ${redis_url:+REDIS_URL="$redis_url" REDIS_PREFIX="schemathesis:$$:"} \
  COMPARE_AT_START=off "$binary" serve >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS "$base/readyz" >/dev/null || { cat "$log"; echo "the server did not start" >&2; exit 1; }

email="schemathesis-$$-$RANDOM@example.com"
password="schemathesis fuzzing password $RANDOM"
curl -fsS -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
  "$base/api/register" >/dev/null
token=$(curl -fsS -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" \
  "$base/api/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# Fails unless the credential in the given header authenticates on the given route.
authenticates() {
  local route="$1" header="$2" answer
  answer=$(curl -sS -o /dev/null -w '%{http_code}' -H "$header" "$base$route")
  if [ "$answer" != 200 ]; then
    echo "$route answered $answer with the credential schemathesis would send: it does not authenticate" >&2
    exit 1
  fi
  echo "$route: 200 with that credential"
}
authenticates /api/version/me "Authorization: Bearer $token"

checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth"
run() {
  "$venv/bin/schemathesis" run "$base/openapi.json" --checks "$checks" --max-examples "$examples" \
    --phases examples,fuzzing --workers 2 --request-timeout 10 --seed 1 "$@"
}
# Destructive operations (log out, log out everywhere, delete the account) go last, so that the
# credential stays valid for the others as long as possible.
destructive='^/api/(logout|logout-all|account)$'
if ! $credentials_only; then
  echo "schemathesis with a Bearer token ($base)"
  run -H "Authorization: Bearer $token" --exclude-path-regex "$destructive"
  run -H "Authorization: Bearer $token" --include-path-regex "$destructive"
fi
# The browser logs in only now: the Bearer run's "log out everywhere" ended every earlier session.
jar=$(mktemp)
csrf() { python3 -c 'import re,sys; print(re.search(r"name=\"csrf_token\" value=\"([^\"]+)\"", sys.stdin.read()).group(1))'; }
login_csrf=$(curl -fsS -c "$jar" -b "$jar" "$base/login" | csrf)
curl -sS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$login_csrf" \
  --data-urlencode "email=$email" --data-urlencode "password=$password" "$base/login"
session_csrf=$(curl -fsS -c "$jar" -b "$jar" "$base/dashboard" | csrf)
# Only the session cookie, by its exact name (`__Host-revocable` under COOKIE_SECURE): the jar
# also holds the device and known-browser cookies.
cookie=$(awk '$6 == "revocable_session" || $6 == "__Host-revocable" { printf "%s=%s", $6, $7; exit }' "$jar")
[ -n "$cookie" ] || { echo "the browser log-in gave no session cookie" >&2; exit 1; }
authenticates /api/cookie/me "Cookie: $cookie"
$credentials_only && exit 0

echo "schemathesis with a session cookie ($base)"
run -H "Cookie: $cookie" -H "X-CSRF-Token: $session_csrf" --exclude-path-regex "$destructive"
run -H "Cookie: $cookie" -H "X-CSRF-Token: $session_csrf" --include-path-regex "$destructive"
