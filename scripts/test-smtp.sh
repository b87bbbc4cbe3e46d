#!/usr/bin/env bash
# Starts an SMTP server for the test suite: aiosmtpd (installed with pip when missing) on a free
# loopback port, writing every message it accepts into a maildir the tests read back. Prints the
# two variables the suite reads, for `eval`:
#   TEST_SMTP_URL=smtp://127.0.0.1:PORT  TEST_SMTP_MAILDIR=DIR  TEST_SMTP_PID=PID
# Exits non-zero when no server could be started.
set -euo pipefail
directory="${1:-$(mktemp -d)}"
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet aiosmtpd >&2 || exit 1
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$directory/maildir" \
  >"$directory/aiosmtpd.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    printf 'export TEST_SMTP_URL=smtp://127.0.0.1:%s TEST_SMTP_MAILDIR=%s TEST_SMTP_PID=%s\n' \
      "$port" "$directory/maildir" "$pid"
    exit 0
  fi
  sleep 0.1
done
kill "$pid" 2>/dev/null || true
cat "$directory/aiosmtpd.log" >&2
exit 1
