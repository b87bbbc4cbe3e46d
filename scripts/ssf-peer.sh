#!/usr/bin/env bash
# Runs scripts/ssf-peer.py (a Shared Signals receiver built on PyJWT from PyPI) against a fresh
# server, then reads every SET it was delivered again with scripts/ssf-peer-js (jose from npm,
# installed from its package-lock.json): release build unless PROFILE=debug. Prints the pushed
# SETs' latency.
# Usage: scripts/ssf-peer.sh [REVOCATIONS]
#        scripts/ssf-peer.sh --install-only   # PyJWT into target/ssf-peer-venv and jose, then stop
# REVOCABLE_BINARY: run that binary instead of building one (CI passes the one `cargo test` built).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/ssf-peer-venv"
version="2.10.1"
if ! "$venv/bin/pip" show PyJWT 2>/dev/null | grep -q "^Version: $version$"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "PyJWT[crypto]==$version"
fi

command -v npm >/dev/null || { echo "npm is needed for the jose reader of scripts/ssf-peer-js" >&2; exit 1; }
npm ci --prefix scripts/ssf-peer-js --no-audit --no-fund --silent
if [ "${1:-}" = "--install-only" ]; then exit 0; fi

profile="${PROFILE:-release}"
binary="${REVOCABLE_BINARY:-}"
if [ -z "$binary" ]; then
  if [ "$profile" = release ]; then cargo build --quiet --release; else cargo build --quiet; fi
  binary="target/$profile/revocable"
fi
scratch=$(mktemp -d)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export DATABASE_URL="sqlite://$scratch/ssf.db?mode=rwc" BIND="127.0.0.1:$port" LOGIN_RATE_PER_MINUTE=100000 \
  JWT_ALG=EdDSA RUST_LOG=warn
credentials=$("$binary" clients add ssf-peer --scope ssf.manage,ssf.read 2>/dev/null)
client_id=$(printf '%s\n' "$credentials" | awk '/^client_id:/ {print $2}')
client_secret=$(printf '%s\n' "$credentials" | awk '/^client_secret:/ {print $2}')
"$binary" serve >"$scratch/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 1 60); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS "$base/readyz" >/dev/null || { cat "$scratch/server.log"; echo "the server did not start" >&2; exit 1; }
SSF_PEER_SETS="$scratch/sets.jsonl" "$venv/bin/python" scripts/ssf-peer.py "$base" "$client_id" "$client_secret" "${1:-50}"
node scripts/ssf-peer-js/read-sets.mjs "$base" "$client_id" "$scratch/sets.jsonl"
