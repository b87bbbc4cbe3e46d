"""A Shared Signals receiver built on PyJWT, against a running revocable: gets a client token,
creates a poll stream and a push stream, revokes sessions through the API, verifies every SET
from jwks_uri (RS256, typ secevent+jwt, one event, sub_id), acknowledges the polled ones, and
prints the latency from each revoking response to its SET at the push receiver.

Usage: ssf-peer.py BASE_URL CLIENT_ID CLIENT_SECRET [REVOCATIONS]
"""

import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

base, client_id, client_secret = sys.argv[1:4]
count = int(sys.argv[4]) if len(sys.argv) > 4 else 50
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"


def call(method, path, body=None, token=None, form=None, basic=None, expect=200):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        headers["Authorization"] = "Basic " + b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    assert status == expect, (method, path, status, text)
    return json.loads(text) if text else None


def client_token(scope):
    answer = call("POST", "/oauth/token", form={"grant_type": "client_credentials", "scope": scope},
                  basic=(client_id, client_secret))
    return answer["access_token"]


config = call("GET", "/.well-known/ssf-configuration")
assert config["spec_version"] == "1_0" and "urn:ietf:rfc:8936" in config["delivery_methods_supported"]
jwks = jwt.PyJWKClient(config["jwks_uri"])


def verify(set_token):
    header = jwt.get_unverified_header(set_token)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "RS256", header
    key = jwks.get_signing_key_from_jwt(set_token)
    claims = jwt.decode(set_token, key.key, algorithms=["RS256"], audience=client_id,
                        issuer=config["issuer"], options={"require": ["iss", "iat", "jti", "aud"]})
    assert len(claims["events"]) == 1, claims
    assert claims["sub_id"]["format"] in ("complex", "iss_sub", "opaque"), claims
    return claims


arrivals = {}
arrived = threading.Condition()
# Every SET received, for the second reader (scripts/ssf-peer-js, on jose from npm).
delivered = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        at = time.perf_counter()
        assert self.headers["Content-Type"] == "application/secevent+jwt"
        assert self.headers["Authorization"] == "Bearer peer-secret"
        claims = verify(body)
        session = claims["sub_id"].get("session", {}).get("id")
        with arrived:
            delivered.append({"via": "push", "set": body})
            arrivals.setdefault(session, []).append(at)
            arrived.notify_all()
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
push_url = f"http://127.0.0.1:{server.server_address[1]}/events"

manage = client_token("ssf.manage")
reader = client_token("ssf.read")
every = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_PURGED]
poll_stream = call("POST", "/ssf/streams", {"events_requested": every, "delivery": {"method": "urn:ietf:rfc:8936"}},
                   token=manage, expect=201)
push_stream = call("POST", "/ssf/streams", {"events_requested": [SESSION_REVOKED], "delivery": {
    "method": "urn:ietf:rfc:8935", "endpoint_url": push_url, "authorization_header": "Bearer peer-secret"}},
    token=manage, expect=201)
assert poll_stream["aud"] == client_id and poll_stream["events_delivered"] == every

email, password = f"peer-{time.time_ns()}@example.com", "correct horse battery staple 9"
call("POST", "/api/register", {"email": email, "password": password}, expect=201)
latencies, sessions = [], []
for _ in range(count):
    tokens = call("POST", "/api/token", {"email": email, "password": password})
    sessions.append(tokens["session_id"])
    call("POST", "/api/logout", token=tokens["access_token"], expect=204)
    responded = time.perf_counter()
    with arrived:
        assert arrived.wait_for(lambda: tokens["session_id"] in arrivals, timeout=30), "no SET pushed"
        latencies.append(max(0.0, arrivals[tokens["session_id"]][0] - responded))
assert all(len(arrivals[session]) == 1 for session in sessions), "a SET arrived twice"
# The poll stream: every log-out, then a password change and an account deletion.
tokens = call("POST", "/api/token", {"email": email, "password": password})
call("POST", "/api/password", {"current_password": password, "new_password": password + "!"}, token=tokens["access_token"])
fresh = call("POST", "/api/token", {"email": email, "password": password + "!"})
call("DELETE", "/api/account", {"password": password + "!"}, token=fresh["access_token"], expect=204)
seen = []
for _ in range(2 * count + 200):
    answer = call("POST", f"/ssf/poll/{poll_stream['stream_id']}", {"maxEvents": 1, "returnImmediately": True}, token=reader)
    if not answer["sets"]:
        if ACCOUNT_PURGED in [kind for kind, _ in seen]:
            break
        time.sleep(0.05)
        continue
    for jti, set_token in answer["sets"].items():
        claims = verify(set_token)
        assert claims["jti"] == jti
        delivered.append({"via": "poll", "set": set_token})
        [(kind, payload)] = claims["events"].items()
        seen.append((kind, claims["sub_id"]))
        call("POST", f"/ssf/poll/{poll_stream['stream_id']}", {"ack": [jti], "maxEvents": 0, "returnImmediately": True}, token=reader)
kinds = [kind for kind, _ in seen]
assert kinds[:count] == [SESSION_REVOKED] * count, kinds
assert [sub["session"]["id"] for _, sub in seen[:count]] == sessions
assert CREDENTIAL_CHANGE in kinds and kinds[-1] == ACCOUNT_PURGED, kinds
call("DELETE", f"/ssf/streams?stream_id={push_stream['stream_id']}", token=manage, expect=204)
if os.environ.get("SSF_PEER_SETS"):
    with open(os.environ["SSF_PEER_SETS"], "w") as out:
        with arrived:
            out.writelines(json.dumps(entry) + "\n" for entry in delivered)
ms = sorted(latency * 1000 for latency in latencies)
p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
print(f"SSF peer (PyJWT {jwt.__version__}): {len(seen)} polled SETs verified and acknowledged, "
      f"{len(latencies)} pushed SETs verified, each once, in order")
print(f"revoking response -> SET at the push receiver, {len(ms)} revocations: "
      f"p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms")
