#!/usr/bin/env bash
# Validates /openapi.json of a debug server with openapi-spec-validator (the check code generators
# such as openapi-python-client rely on: a valid OpenAPI 3.1 document, unique operationIds), and
# the RFC 8414 metadata document with a few lines of Python, as a client would read it.
# Usage: scripts/openapi-validate.sh [--install-only]
#   --install-only: install openapi-spec-validator into target/openapi-venv and stop there.
# REVOCABLE_BINARY: run that binary instead of building one (CI passes the one `cargo test` built).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/openapi-venv"
version="0.9.0"
if ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -q "^Version: $version$"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "openapi-spec-validator==$version"
fi
if [ "${1:-}" = "--install-only" ]; then exit 0; fi

binary="${REVOCABLE_BINARY:-}"
if [ -z "$binary" ]; then cargo build --quiet; binary=target/debug/revocable; fi
scratch=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
env DATABASE_URL="sqlite://$scratch/openapi.db?mode=rwc" BIND="127.0.0.1:$port" \
  "$binary" serve >"$scratch/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 1 60); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS "$base/readyz" >/dev/null || { cat "$scratch/server.log"; echo "the server did not start" >&2; exit 1; }

curl -fsS "$base/openapi.json" >"$scratch/openapi.json"
"$venv/bin/openapi-spec-validator" "$scratch/openapi.json"

curl -fsS "$base/.well-known/oauth-authorization-server" >"$scratch/metadata.json"
python3 - "$scratch/metadata.json" "$base" <<'PY'
import json, sys
metadata, base = json.load(open(sys.argv[1])), sys.argv[2]
# RFC 8414 section 2: issuer, and the endpoints this server has; section 3.3: the issuer is the
# URL the document was fetched under.
assert metadata["issuer"] == base, metadata
for field in ["token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"]:
    assert metadata[field].startswith(base + "/"), (field, metadata)
assert "response_types_supported" in metadata
assert "client_secret_basic" in metadata["token_endpoint_auth_methods_supported"]
print("RFC 8414 metadata: OK")
PY
