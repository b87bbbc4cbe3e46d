#!/usr/bin/env python3
"""Faults while requests flow, in the manner of Jepsen: three revocable instances behind nginx
(deploy/nginx.conf) share one PostgreSQL (and, with --backend redis, one Redis), while client
threads register users, log in with tokens and with the HTML form, revoke in every way the README
lists and check every credential on every strategy. A nemesis pauses an instance, kills one and
restarts it, cuts one instance's PostgreSQL, cuts PostgreSQL for all, kills Redis and restarts it
empty. Every request goes into a history; a checker then reads the whole history and says, per
fault and overall, whether a revoked credential was accepted later than REVOCATION_MAX_STALENESS
after the revoking response, whether anything answered a 5xx other than 503, how long 503s lasted
and how soon every route answered again.

    scripts/fault-suite.py --short                    # the CI variant: under 4 minutes in all
    scripts/fault-suite.py --backend postgres         # PostgreSQL alone, 10 minutes of faults
    scripts/fault-suite.py --self-test                # the checker against planted histories

Python 3.11 standard library only. It needs nginx, psql, PostgreSQL on 127.0.0.1:5432 (user
postgres, trust authentication) and, for --backend redis, redis-server (it runs its own, on a free
port, never the one on 6379). Everything it starts listens on loopback and is killed when it ends,
on Ctrl-C and on an exception too; the database it uses is dropped.

Exit status: 0 when every check held, 1 when one did not (a revoked credential accepted past the
bound, a 5xx other than 503, a 503 without Retry-After, a stateless refusal, an instance that did
not start or exited by itself), 2 when it could not run (a tool or service missing, or an error in
this script), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import http.client
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

STRATEGIES = ("stateless", "version", "denylist", "allowlist", "cookie")
BEARER_STRATEGIES = STRATEGIES[:4]
EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 130
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What a request must answer to have done what it was sent for. Form posts answer 303; where they
# go tells success from a redirect to the log-in form (see `revocation_is_definite`).
SUCCESS = {
    "register": {201},
    "token_login": {200},
    "login_page": {200},
    "form_login": {303},
    "cookie_identity": {200},
    "dashboard": {200},
    "check": {200},
    "logout": {204},
    "form_logout": {303},
    "device_signout": {204},
    "form_device_signout": {303},
    "logout_all": {204},
    "form_logout_all": {303},
    "password_change": {200},
    "final_check": {200},
}
REVOCATIONS = {
    "logout",
    "form_logout",
    "device_signout",
    "form_device_signout",
    "logout_all",
    "form_logout_all",
    "password_change",
}
NON_IDEMPOTENT = {"POST", "PATCH", "LOCK"}  # what nginx does not resend once sent

FAULT_LABELS = {
    "pause": "pause an instance (SIGSTOP)",
    "kill": "kill an instance (SIGKILL), restart",
    "cut_one": "cut one instance's PostgreSQL",
    "cut_all": "cut PostgreSQL for all",
    "redis_down": "kill Redis, restart it",
    "redis_empty": "restart Redis empty",
}


class CannotRun(Exception):
    """A tool or service the suite needs is missing: exit 2."""


class Failed(Exception):
    """The system under test failed in a way that stops the run (it could not start): exit 1."""


class Abandon(Exception):
    """This client gives up on its current user (the answers it needed did not come)."""


# --------------------------------------------------------------------------------------------
# The clock and the history
# --------------------------------------------------------------------------------------------

T0 = time.monotonic()


def clock() -> float:
    """Seconds since the suite started, on the monotonic clock every record uses."""
    return time.monotonic() - T0


class History:
    """Every request and its answer (appended when answered; the checker orders them by send)."""

    def __init__(self) -> None:
        self.ops: list[dict] = []
        self._lock = threading.Lock()
        self._next = 0

    def add(self, op: dict) -> dict:
        with self._lock:
            op["id"] = self._next
            self._next += 1
            self.ops.append(op)
        return op


# --------------------------------------------------------------------------------------------
# Processes: everything the suite starts is killed when it ends
# --------------------------------------------------------------------------------------------


class Supervisor:
    """Starts child processes in their own process groups and kills them all at the end."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        # The kernel kills each child if this process dies without cleaning up (SIGKILL, a crash).
        # Children are only started from the main thread, which lives until the end.
        self._guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []

    def spawn(self, argv: list[str], *, env: dict | None = None, cwd: str | None = None, log: str,
              pipes: bool = False) -> subprocess.Popen:
        """`pipes`: its stdin and stdout are pipes to this process (text), its stderr the log."""
        with open(log, "ab") as out:
            process = subprocess.Popen(
                self._guard + argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else out,
                stderr=out if pipes else subprocess.STDOUT,
                start_new_session=True,
                text=pipes or None,
            )
        with self._lock:
            self.children.append(process)
        return process

    @staticmethod
    def signal_group(process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self, process: subprocess.Popen, *, gentle: bool = False) -> None:
        if process.poll() is None and gentle:
            self.signal_group(process, signal.SIGCONT)  # a paused instance cannot act on SIGTERM
            self.signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # The whole group: nginx's workers and anything else a child started go with it.
        self.signal_group(process, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def kill_all(self) -> None:
        with self._lock:
            children = list(reversed(self.children))
        for process in children:
            self.kill(process, gentle=True)


_ports_taken: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as source:
            low, high = (int(field) for field in source.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port that binds now and that the kernel never hands out as the local end of an outgoing
    connection. A port from the ephemeral range (what `bind(0)` returns) can be taken by any
    client socket between the moment it is chosen and an instance's restart on it, which then
    fails with "Address already in use"; the ports below that range are only ever bound on purpose."""
    low, high = ephemeral_range()
    candidates = list(range(20000, low)) if low > 21000 else list(range(high + 1, 65536))
    random.SystemRandom().shuffle(candidates)
    for port in candidates:
        if port in _ports_taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_taken.add(port)
        return port
    raise CannotRun("no free port outside the ephemeral range")


def tail(path: str, lines: int = 12) -> str:
    try:
        with open(path, "rb") as log:
            return b"\n".join(log.read().splitlines()[-lines:]).decode("utf-8", "replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# A TCP proxy per instance between it and PostgreSQL, which the nemesis can cut
# --------------------------------------------------------------------------------------------


def reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a reset, as a cut cable or a killed peer does, not with an orderly FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class DatabaseProxy:
    """Forwards one instance's PostgreSQL connections. `cut` resets every open connection and
    refuses new ones (reset at once) or holds them unanswered (a partition) until `restore`.
    Runs in the proxy process (`--proxy-server`), on its event loop."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode: str | None = None  # None forwarding, "refuse" or "blackhole" while cut
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.held: list[asyncio.StreamWriter] = []
        self.port = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            reset(writer)
            return
        if self.mode == "blackhole":
            self.held.append(writer)  # never read, never answered; reset at `restore`
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 3)
        except (OSError, asyncio.TimeoutError):
            reset(writer)
            return
        pair = (writer, upstream_writer)
        self.pairs.add(pair)
        pumps = [
            asyncio.ensure_future(self._pump(reader, upstream_writer)),
            asyncio.ensure_future(self._pump(upstream_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            self.pairs.discard(pair)
            for side in pair:
                side.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            return

    def cut(self, mode: str) -> None:
        self.mode = mode
        for pair in list(self.pairs):
            for side in pair:
                reset(side)
        self.pairs.clear()

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def restore(self) -> None:
        self.mode = None
        for writer in self.held:
            reset(writer)  # so their clients notice at once and connect again
        self.held.clear()


def proxy_server(count: int) -> int:
    """The proxy process: `count` proxies to 127.0.0.1:5432, their ports on the first line of
    stdout, then one command a line on stdin (`cut N MODE`, `mode N MODE`, `restore N`), each
    answered `ok`. It ends when stdin closes, that is when the suite ends, however it ends. A
    process of its own, so that the load the suite generates never slows the database down."""

    async def serve() -> None:
        proxies = [DatabaseProxy(("127.0.0.1", 5432)) for _ in range(count)]
        for proxy in proxies:
            await proxy.start()
        print("ports " + " ".join(str(proxy.port) for proxy in proxies), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            words = line.decode().split()
            if words and words[0] in ("cut", "mode", "restore"):
                proxy = proxies[int(words[1])]
                {"cut": proxy.cut, "mode": proxy.set_mode, "restore": lambda *_: proxy.restore()}[words[0]](*words[2:])
            print("ok", flush=True)
        for proxy in proxies:
            proxy.cut("refuse")
            proxy.restore()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the suite stops it, by closing stdin
    asyncio.run(serve())
    return EXIT_OK


class ProxyControl:
    """The suite's side of one proxy in the proxy process."""

    def __init__(self, hub: "ProxyHub", index: int, port: int) -> None:
        self.hub = hub
        self.index = index
        self.port = port

    def cut(self, mode: str = "refuse") -> None:
        self.hub.command(f"cut {self.index} {mode}")

    def set_mode(self, mode: str) -> None:
        self.hub.command(f"mode {self.index} {mode}")

    def restore(self) -> None:
        self.hub.command(f"restore {self.index}")


class ProxyHub:
    """Starts the proxy process and sends it the nemesis's commands."""

    def __init__(self, supervisor: "Supervisor", count: int, log: str) -> None:
        self.process = supervisor.spawn(
            [sys.executable, os.path.abspath(__file__), "--proxy-server", str(count)], log=log, pipes=True
        )
        first = self.process.stdout.readline().split()
        if not first or first[0] != "ports":
            raise CannotRun(f"the database proxies did not start:\n{tail(log)}")
        self.proxies = [ProxyControl(self, index, int(port)) for index, port in enumerate(first[1:])]
        self._lock = threading.Lock()

    def command(self, line: str) -> None:
        with self._lock:
            try:
                self.process.stdin.write(line + "\n")
                self.process.stdin.flush()
                answer = self.process.stdout.readline().strip()
            except OSError as error:
                raise Failed(f"the database proxies stopped: {error}") from error
        if answer != "ok":
            raise Failed(f"the database proxies stopped (answered {answer!r} to {line!r})")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()


# --------------------------------------------------------------------------------------------
# The cluster: PostgreSQL database, Redis, three instances, nginx
# --------------------------------------------------------------------------------------------


def psql(sql: str, database: str = "postgres", timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGCONNECT_TIMEOUT="3")
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Redis:
    """The suite's own redis-server on a free port, no persistence: a restart starts it empty."""

    def __init__(self, supervisor: Supervisor, workdir: str) -> None:
        self.supervisor = supervisor
        self.port = free_port()
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(workdir, "redis.log")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", self.dir]
        self.process = self.supervisor.spawn(argv, cwd=self.dir, log=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise CannotRun(f"redis-server did not start on port {self.port}:\n{tail(self.log)}")

    def kill(self) -> None:
        if self.process is not None:
            self.supervisor.kill(self.process)
            self.process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class Instance:
    """One `revocable serve`, reaching PostgreSQL through its own proxy."""

    def __init__(self, name: str, supervisor: Supervisor, binary: str, workdir: str, env: dict, proxy: ProxyControl):
        self.name = name
        self.supervisor = supervisor
        self.binary = binary
        self.port = free_port()
        self.proxy = proxy
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(workdir, f"{name}.log")
        self.env = dict(env, BIND=f"127.0.0.1:{self.port}", MAIL_OUTBOX=os.path.join(self.dir, "outbox"))
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.expected_down = False  # set by the nemesis while it has the instance killed

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"\n--- start {self.starts} at {clock():.3f}s ---\n".encode())
        self.process = self.supervisor.spawn([self.binary, "serve"], env=self.env, cwd=self.dir, log=self.log)

    def healthy(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            connection.request("GET", "/healthz")
            ok = connection.getresponse().status == 200
            connection.close()
            return ok
        except (OSError, http.client.HTTPException):
            return False

    def wait(self, seconds: float) -> str:
        """'up', 'exited' or 'timeout'."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return "exited"
            if self.healthy():
                return "up"
            time.sleep(0.05)
        return "timeout"

    def signal(self, signum: int) -> None:
        if self.process is not None:
            Supervisor.signal_group(self.process, signum)

    def kill(self) -> None:
        if self.process is not None:
            self.supervisor.kill(self.process)

    def failure_line(self) -> str:
        """The line of the log that says why it stopped."""
        lines = tail(self.log, 40).splitlines()
        for line in reversed(lines):
            if re.search(r"error|panic|duplicate|refused|failed", line, re.IGNORECASE):
                return line.strip()
        return lines[-1].strip() if lines else "(nothing in its log)"


class Cluster:
    """Everything the suite starts, and the settings it started it with."""

    def __init__(self, args: argparse.Namespace, supervisor: Supervisor, workdir: str) -> None:
        self.args = args
        self.supervisor = supervisor
        self.workdir = workdir
        self.database = f"revocable_faults_{os.getpid()}_{secrets.token_hex(3)}"
        self.database_created = False
        self.hub: ProxyHub | None = None
        self.redis: Redis | None = None
        self.instances: list[Instance] = []
        self.nginx: subprocess.Popen | None = None
        self.nginx_port = free_port()
        self.nginx_dir = os.path.join(workdir, "nginx")
        self.startup: dict = {}

    def instance_env(self, proxy: ProxyControl) -> dict:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.workdir,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{self.database}",
            "TRUSTED_PROXIES": "127.0.0.1",
            # One deployment, one issuer: every instance names nginx's address in its tokens.
            "PUBLIC_URL": f"http://127.0.0.1:{self.nginx_port}",
            "RUST_LOG": "warn",
            "ACCESS_TTL": "2h",
            # The bound the checker holds the instances to; passed explicitly, whatever the default.
            "REVOCATION_MAX_STALENESS": self.args.staleness,
            # Every client comes through nginx; the limits are not what is tested here.
            "LOGIN_RATE_PER_MINUTE": "100000",
            "ACCOUNT_LOCK_AFTER": "1000",
            # /compare measures on an instance of its own; not part of what is tested here.
            "COMPARE_AT_START": "off",
        }
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        for setting in self.args.instance_env:
            name, _, value = setting.partition("=")
            env[name] = value
        return env

    def start(self) -> None:
        if self.args.create_database:
            result = psql(f'CREATE DATABASE "{self.database}"')
            if result.returncode != 0:
                raise CannotRun(f"cannot create database {self.database}: {result.stderr.strip()}")
        self.database_created = True  # whoever creates it, the suite drops it
        if self.args.backend == "redis":
            self.redis = Redis(self.supervisor, self.workdir)
            self.redis.start()
        self.hub = ProxyHub(self.supervisor, 3, os.path.join(self.workdir, "proxies.log"))
        for index, proxy in enumerate(self.hub.proxies):
            self.instances.append(
                Instance(f"i{index + 1}", self.supervisor, self.args.binary_copy, self.workdir, self.instance_env(proxy), proxy)
            )
        self.start_instances_at_once()
        self.start_nginx()

    def start_instances_at_once(self) -> None:
        """All three on a database none of them has seen, at the same moment, as a deployment
        does; each must come up. Those that do not are reported, then started again one by one
        so the run can go on."""
        started = clock()
        for instance in self.instances:
            instance.start()
        outcomes = {}
        deadline = time.monotonic() + 90
        pending = list(self.instances)
        while pending and time.monotonic() < deadline:
            for instance in list(pending):
                if instance.process.poll() is not None:
                    outcomes[instance.name] = ("exited", instance.process.returncode, instance.failure_line())
                    pending.remove(instance)
                elif instance.healthy():
                    outcomes[instance.name] = ("up", None, "")
                    pending.remove(instance)
            time.sleep(0.05)
        for instance in pending:
            outcomes[instance.name] = ("timeout", None, instance.failure_line())
        failed = {name: outcome for name, outcome in outcomes.items() if outcome[0] != "up"}
        self.startup = {
            "started_at": started,
            "up_after": clock() - started,
            "outcomes": {name: {"state": o[0], "exit_status": o[1], "log": o[2]} for name, o in outcomes.items()},
            "failed": sorted(failed),
        }
        if failed:
            print(
                f"\n!!! START-UP: {len(failed)} of 3 instances did not come up when started at once on a new database:",
                file=sys.stderr,
            )
            for name, (state, status, line) in sorted(failed.items()):
                print(f"!!!   {name} {state}" + (f" with status {status}" if status is not None else "") + f": {line}", file=sys.stderr)
            print("!!!   (counted as a failure; starting them again one by one to go on with the run)\n", file=sys.stderr)
            for instance in self.instances:
                if instance.name in failed:
                    instance.kill()
                    instance.start()
                    state = instance.wait(60)
                    if state != "up":
                        raise Failed(f"{instance.name} did not start even alone ({state}): {instance.failure_line()}")

    def nginx_config(self) -> str:
        with open(self.args.nginx_conf) as source:
            text = source.read()
        ports = [self.nginx_port] + [instance.port for instance in self.instances]
        seen: set[int] = set()

        def substitute(match: re.Match) -> str:
            seen.add(int(match.group(1)))
            return f"127.0.0.1:{ports[int(match.group(1))]}"

        text = re.sub(r"127\.0\.0\.1:808([0-3])\b", substitute, text)
        if seen != {0, 1, 2, 3}:
            raise Failed(f"{self.args.nginx_conf} does not name 127.0.0.1:8080 to :8083 (found {sorted(8080 + p for p in seen)})")
        return text

    def start_nginx(self) -> None:
        os.makedirs(self.nginx_dir, exist_ok=True)
        if os.geteuid() == 0:
            # A root master runs its workers as an unprivileged user, who must reach the prefix.
            os.chmod(self.workdir, 0o755)
            os.chmod(self.nginx_dir, 0o755)
        config = os.path.join(self.nginx_dir, "nginx.conf")
        with open(config, "w") as out:
            out.write(self.nginx_config())
        error_log = os.path.join(self.nginx_dir, "error.log")
        self.nginx = self.supervisor.spawn(
            [self.args.nginx, "-p", self.nginx_dir + "/", "-e", error_log, "-c", config],
            cwd=self.nginx_dir,
            log=os.path.join(self.workdir, "nginx.out"),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                break
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.nginx_port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise Failed(f"nginx did not serve /healthz on {self.nginx_port}:\n{tail(error_log)}\n{tail(os.path.join(self.workdir, 'nginx.out'))}")

    def readyz(self) -> dict | None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.instances[0].port, timeout=2)
            connection.request("GET", "/readyz")
            return json.loads(connection.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def upstream_names(self) -> dict[str, str]:
        return {f"127.0.0.1:{instance.port}": instance.name for instance in self.instances}

    def close(self) -> None:
        if self.hub is not None:
            self.hub.close()
        self.supervisor.kill_all()
        if self.database_created:
            result = psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            if result.returncode != 0:
                print(f"warning: could not drop database {self.database}: {result.stderr.strip()}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# The clients
# --------------------------------------------------------------------------------------------

CSRF_FIELD = re.compile(rb'name="csrf_token" value="([^"]*)"')


class Answer:
    __slots__ = ("status", "headers", "cookies", "body", "sent", "received", "error")

    def __init__(self, status, headers, cookies, body, sent, received, error=None):
        self.status = status
        self.headers = headers
        self.cookies = cookies
        self.body = body
        self.sent = sent
        self.received = received
        self.error = error

    def json(self) -> dict:
        try:
            value = json.loads(self.body)
            return value if isinstance(value, dict) else {}
        except ValueError:
            return {}


class Connection:
    """One keep-alive HTTP/1.1 connection to nginx; reopened after any error."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, headers: dict, body: bytes | None) -> Answer:
        sent = clock()
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
            received = clock()
            lowered = {name.lower(): value for name, value in response.getheaders()}
            cookies = response.headers.get_all("Set-Cookie") or []
            if response.will_close:
                self.close()
            return Answer(response.status, lowered, cookies, data, sent, received)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return Answer(None, {}, [], b"", sent, clock(), f"{type(error).__name__}: {error}")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Device:
    """A token device (an access token) or a cookie device (a browser's cookie jar): one login
    session on the server, one credential in the history."""

    def __init__(self, credential: str, kind: str, label: str, address: str, agent: str) -> None:
        self.credential = credential
        self.kind = kind
        self.label = label
        self.address = address
        self.agent = agent
        self.session: str | None = None
        self.access_token: str | None = None
        self.jar: dict[str, str] = {}
        # Once logged in, the browser's cookies stay as they were: a revoked cookie is presented
        # again as a copied one would be, whatever the server asks the browser to forget.
        self.frozen = False

    def absorb(self, answer: Answer) -> None:
        if self.frozen:
            return
        for header in answer.cookies:
            first, _, attributes = header.partition(";")
            name, _, value = first.strip().partition("=")
            removal = "max-age=0" in attributes.lower().replace(" ", "") or value == ""
            if removal:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value


class User:
    def __init__(self, email: str, password: str) -> None:
        self.email = email
        self.password = password


def new_password() -> str:
    return "Pw-" + secrets.token_urlsafe(15)


class Speaker:
    """Sends requests through nginx on one keep-alive connection and records each in the history."""

    def __init__(self, index: int, run: "Run") -> None:
        self.index = index
        self.run_state = run
        self.history = run.history
        self.connection = Connection(run.cluster.nginx_port, timeout=45)
        self.origin = f"http://127.0.0.1:{run.cluster.nginx_port}"
        self.last_entry: dict = {}

    def request(self, op: str, method: str, path: str, *, device: Device | None = None, user: User | None = None,
                bearer: str | None = None, json_body: dict | None = None, form: dict | None = None,
                record: dict | None = None) -> Answer:
        headers = {"User-Agent": device.agent if device else "fault-suite", "Accept": "*/*"}
        # Only a header: revocable believes it from nginx (TRUSTED_PROXIES=127.0.0.1), so each
        # device has an address of its own and the per-address limits see many clients.
        headers["X-Forwarded-For"] = device.address if device else f"198.18.{self.index % 250}.250"
        body = None
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if device is not None and device.jar and bearer is None:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in device.jar.items())
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin  # as a browser sends with a form post
        answer = self.connection.send(method, path, headers, body)
        if device is not None and bearer is None:
            device.absorb(answer)
        details = answer.json() if answer.status and answer.status >= 400 else {}
        code = details.get("error")
        if details.get("reason"):
            code = f"{code}/{details['reason']}"
        entry = {
            "thread": self.index,
            "op": op,
            "method": method,
            "path": re.sub(r"/[A-Za-z0-9_-]{16,}(?=/|$)", "/{id}", path),
            "user": user.email if user else None,
            "device": device.label if device else None,
            "cred": device.credential if device else None,
            "session": device.session if device else None,
            "sent": round(answer.sent, 6),
            "received": round(answer.received, 6),
            "status": answer.status,
            "error": code if answer.status else answer.error,
            "upstream": answer.headers.get("x-upstream"),
            "by_nginx": bool(answer.status and answer.status >= 500 and b"<center>nginx" in answer.body),
            "retry_after": "retry-after" in answer.headers,
            "location": answer.headers.get("location"),
            "cookie_removed": any("max-age=0" in c.lower().replace(" ", "") for c in answer.cookies),
        }
        if record:
            entry.update(record)
        self.last_entry = self.history.add(entry)
        return answer

    def check(self, user: User, device: Device, strategy: str, op: str = "check") -> Answer:
        if strategy == "cookie":
            return self.request(op, "GET", "/api/cookie/me", user=user, device=device, record={"strategy": "cookie"})
        return self.request(op, "GET", f"/api/{strategy}/me", user=user, device=device,
                            bearer=device.access_token, record={"strategy": strategy})


def strategies_of(device: Device) -> tuple[str, ...]:
    return BEARER_STRATEGIES if device.kind == "token" else ("cookie",)


class Registry:
    """The credentials the check load chooses from: the probe's (never revoked), those of the
    users being worked on, those revoked in the last few seconds (hot: checked most, since a
    stale answer can only show soon after a revocation), and older ones kept for re-checks."""

    def __init__(self, seed: int, bound: float) -> None:
        self.random = random.Random(seed)
        self.bound = bound
        self._lock = threading.Lock()
        self.steady: list[tuple[Device, User]] = []
        self.active: dict[str, tuple[Device, User]] = {}
        self.hot: dict[str, tuple[float, float, Device, User]] = {}  # revoked at, hot until
        self.graveyard: collections.deque[tuple[Device, User]] = collections.deque(maxlen=400)

    def add_steady(self, device: Device, user: User) -> None:
        with self._lock:
            self.steady = [(d, u) for d, u in self.steady if d.kind != device.kind] + [(device, user)]

    def activate(self, devices: list[Device], user: User) -> None:
        with self._lock:
            for device in devices:
                self.active[device.credential] = (device, user)

    def heat(self, devices: list[Device], user: User, seconds: float) -> None:
        now = clock()
        with self._lock:
            for device in devices:
                self.hot[device.credential] = (now, now + seconds, device, user)

    def retire(self, devices: list[Device]) -> None:
        with self._lock:
            for device in devices:
                entry = self.active.pop(device.credential, None)
                if entry is not None:
                    self.graveyard.append(entry)

    def pick(self) -> tuple[Device, User, str] | None:
        with self._lock:
            now = clock()
            for credential in [c for c, (_, until, _, _) in self.hot.items() if until < now]:
                del self.hot[credential]
            draw = self.random.random()
            pools = []
            if draw < 0.3:
                # Just past the bound after their revocation: where a stale answer would show.
                pools = [(d, u) for at, _, d, u in self.hot.values() if at + self.bound <= now <= at + self.bound + 1.0]
            elif draw < 0.45:
                pools = [(d, u) for _, _, d, u in self.hot.values()]
            elif draw < 0.55 and self.steady:
                pools = self.steady
            elif draw < 0.85 and self.active:
                pools = list(self.active.values())
            elif self.graveyard:
                pools = self.graveyard
            pools = pools or list(self.active.values()) or self.steady
            if not pools:
                return None
            device, user = pools[self.random.randrange(len(pools))]
        return device, user, self.random.choice(strategies_of(device))


class CheckLoad:
    """Checks at a fixed rate whatever the answers take (an open loop, as Jepsen's generators
    are): a paused instance holds the requests sent to it, and the others keep being asked.
    Bounded by the number of workers; a check that finds none free is counted as dropped."""

    def __init__(self, run: "Run", rate: float, workers: int) -> None:
        self.run_state = run
        self.rate = rate
        self.jobs: "queue.Queue[tuple[Device, User, str]]" = queue.Queue(maxsize=workers)
        self.dropped = 0
        self.threads = [threading.Thread(target=self.work, args=(100 + index,), name=f"check-{index}", daemon=True)
                        for index in range(workers)]
        self.scheduler = threading.Thread(target=self.schedule, name="check-scheduler", daemon=True)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        self.scheduler.start()

    def schedule(self) -> None:
        tick = 0.02
        owed = 0.0
        next_tick = time.monotonic()
        while not self.run_state.stop.is_set():
            owed += self.rate * tick
            while owed >= 1:
                owed -= 1
                picked = self.run_state.registry.pick()
                if picked is None:
                    continue
                try:
                    self.jobs.put_nowait(picked)
                except queue.Full:
                    self.dropped += 1
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))

    def work(self, index: int) -> None:
        speaker = Speaker(index, self.run_state)
        while not self.run_state.stop.is_set():
            try:
                device, user, strategy = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            speaker.check(user, device, strategy)
        speaker.connection.close()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in [self.scheduler] + self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class Armed:
    """A user logged in on five devices, waiting for its revocation."""

    __slots__ = ("user", "tokens", "cookies", "event", "variant", "ready_at")

    def __init__(self, user, tokens, cookies, event, variant, ready_at):
        self.user = user
        self.tokens = tokens
        self.cookies = cookies
        self.event = event
        self.variant = variant
        self.ready_at = ready_at

    @property
    def devices(self) -> list[Device]:
        return self.tokens + self.cookies


class Client(threading.Thread):
    """Prepares users one after the other: registered, logged in on five devices (three token,
    two cookie), then handed to the revocation load, which revokes them at its own pace. The
    check load asks about every credential before and after its revocation."""

    EVENTS = ("logout", "device_signout", "logout_all", "password_change")

    def __init__(self, index: int, run: "Run") -> None:
        super().__init__(name=f"client-{index}", daemon=True)
        self.index = index
        self.run_state = run
        self.speaker = Speaker(index, run)
        self.request = self.speaker.request
        self.random = random.Random(run.seed * 1000 + index)
        self.users = 0
        self.suite_errors: list[str] = []

    # -- plumbing ------------------------------------------------------------------------------

    def stopped(self) -> bool:
        return self.run_state.stop.is_set()

    def pause(self, seconds: float) -> None:
        self.run_state.stop.wait(seconds)

    def until_answered(self, attempt, tries: int = 24):
        """Retries `attempt` (which returns a result or None) while the service is unavailable:
        about six seconds, longer than any fault, then gives up on this user. The waits are
        uneven so that clients held up by the same fault do not all start again in step."""
        for _ in range(tries):
            if self.stopped():
                raise Abandon("stopping")
            result = attempt()
            if result is not None:
                return result
            self.pause(self.random.uniform(0.1, 0.4))
        raise Abandon("no answer")

    def new_device(self, kind: str, user_number: int, slot: int) -> Device:
        return self.run_state.new_device(kind, f"c{self.index}u{user_number}", slot, self.index)

    # -- logging in ----------------------------------------------------------------------------

    def register(self, user: User) -> None:
        def attempt():
            answer = self.request("register", "POST", "/api/register", user=user,
                                  json_body={"email": user.email, "password": user.password})
            # A 409: an earlier attempt that was cut short did create it.
            return True if answer.status in (201, 409) else None

        self.until_answered(attempt)

    def token_login(self, user: User, device: Device) -> None:
        def attempt():
            answer = self.request("token_login", "POST", "/api/token", user=user, device=device,
                                  json_body={"email": user.email, "password": user.password},
                                  record={"kind": "token"})
            if answer.status != 200:
                return None
            body = answer.json()
            device.access_token = body.get("access_token")
            device.session = body.get("session_id")
            # The credential exists from this answer on: the checker's `issued`.
            self.speaker.last_entry.update(session=device.session, issued=True)
            return True

        self.until_answered(attempt)
        self.run_state.register_device(device, user)

    def form_login(self, user: User, device: Device) -> None:
        def attempt():
            device.jar.clear()
            page = self.request("login_page", "GET", "/login", user=user, device=device)
            match = CSRF_FIELD.search(page.body) if page.status == 200 else None
            if not match:
                return None
            answer = self.request("form_login", "POST", "/login", user=user, device=device,
                                  form={"csrf_token": match.group(1).decode(), "email": user.email,
                                        "password": user.password}, record={"kind": "cookie"})
            if answer.status == 303 and answer.headers.get("location") == "/dashboard":
                device.frozen = True
                return self.speaker.last_entry
            return None

        login = self.until_answered(attempt)

        def identify():
            answer = self.speaker.check(user, device, "cookie", op="cookie_identity")
            if answer.status == 200:
                return answer.json().get("session_id")
            if answer.status == 401:
                raise Abandon("a fresh cookie was refused")
            return None

        try:
            device.session = self.until_answered(identify)
        finally:
            # Logged in from the log-in's answer on, whether or not its id could be read.
            login.update(session=device.session, issued=True)
            self.run_state.register_device(device, user)

    def prepare(self, event: str, variant: int) -> None:
        registry = self.run_state.registry
        self.users += 1
        number = self.users
        user = User(f"faults-{self.run_state.tag}-{self.index}-{number}@revocable.invalid", new_password())
        self.register(user)
        tokens = [self.new_device("token", number, slot) for slot in range(3)]
        cookies = [self.new_device("cookie", number, slot) for slot in range(2)]
        done: list[Device] = []
        try:
            for device in tokens:
                self.token_login(user, device)
                done.append(device)
            for device in cookies:
                self.form_login(user, device)
                done.append(device)
        except Abandon:
            registry.retire(done)
            raise
        registry.activate(done, user)
        # Revoked once the check load has asked every instance about each credential, so that
        # each holds it in memory as valid when the revocation comes.
        armed = Armed(user, tokens, cookies, event, variant, clock() + self.run_state.warm_up)
        while not self.stopped():
            try:
                self.run_state.armed.put(armed, timeout=0.2)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        turn = self.index
        prepared = 0
        while not self.stopped() and prepared < 100_000:
            event = self.EVENTS[turn % len(self.EVENTS)]
            variant = (turn // len(self.EVENTS)) % 2
            turn += 1
            prepared += 1
            try:
                self.prepare(event, variant)
            except Abandon:
                self.pause(0.1)
            except Exception:  # noqa: BLE001 - an error in this script, reported at the end
                self.suite_errors.append(traceback.format_exc())
                if len(self.suite_errors) > 5:
                    return
                self.pause(0.5)
        self.speaker.connection.close()


class Revocations:
    """Revokes the prepared users at a fixed rate whatever the answers take (an open loop): a
    paused instance holds the revocations sent to it, and the others keep answering, so that
    revocations do happen while an instance sleeps with the old state in memory."""

    def __init__(self, run: "Run", rate: float, workers: int) -> None:
        self.run_state = run
        self.rate = rate
        self.jobs: "queue.Queue[Armed]" = queue.Queue(maxsize=workers)
        self.missed = 0  # ticks with no prepared user ready, or no free worker
        self.sent = 0
        self.threads = [threading.Thread(target=self.work, args=(50 + index,), name=f"revoke-{index}", daemon=True)
                        for index in range(workers)]
        self.scheduler = threading.Thread(target=self.schedule, name="revoke-scheduler", daemon=True)
        self.suite_errors: list[str] = []

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        self.scheduler.start()

    def schedule(self) -> None:
        armed = self.run_state.armed
        interval = 1.0 / self.rate
        next_tick = time.monotonic()
        waiting: collections.deque[Armed] = collections.deque()
        while not self.run_state.stop.is_set():
            while len(waiting) < 2:  # the rest wait in `armed`, which bounds the preparing
                try:
                    waiting.append(armed.get_nowait())
                except queue.Empty:
                    break
            if waiting and waiting[0].ready_at <= clock():
                try:
                    self.jobs.put_nowait(waiting.popleft())
                    self.sent += 1
                except queue.Full:
                    self.missed += 1
            else:
                self.missed += 1
            next_tick += interval
            time.sleep(max(0.0, next_tick - time.monotonic()))

    def work(self, index: int) -> None:
        speaker = Speaker(index, self.run_state)
        while not self.run_state.stop.is_set():
            try:
                job = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                renewed = self.revoke(speaker, job)
            except Exception:  # noqa: BLE001 - an error in this script, reported at the end
                self.suite_errors.append(traceback.format_exc())
                renewed = None
            devices = job.devices + ([renewed] if renewed else [])
            # The check load keeps asking about these past the bound: they are hot for a while.
            self.run_state.registry.heat(devices, job.user, self.run_state.after_window + 1.5)
            self.run_state.registry.retire(devices)
        speaker.connection.close()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in [self.scheduler] + self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    @staticmethod
    def dashboard_csrf(speaker: Speaker, user: User, device: Device) -> tuple[str | None, float]:
        answer = speaker.request("dashboard", "GET", "/dashboard", user=user, device=device)
        match = CSRF_FIELD.search(answer.body) if answer.status == 200 else None
        return (match.group(1).decode() if match else None), answer.sent

    def revoke(self, speaker: Speaker, job: Armed) -> Device | None:
        """One revocation, by the API or by a form; returns the fresh device a password change
        issues. Nothing is retried: an unanswered revocation stays in the history as such."""
        user, tokens, cookies, event, variant = job.user, job.tokens, job.cookies, job.event, job.variant
        request = speaker.request
        actor = tokens[2]
        if event == "logout":
            request("logout", "POST", "/api/logout", user=user, device=tokens[0], bearer=tokens[0].access_token)
            csrf, shown = self.dashboard_csrf(speaker, user, cookies[0])
            if csrf:
                request("form_logout", "POST", "/logout", user=user, device=cookies[0],
                        form={"csrf_token": csrf}, record={"dashboard_sent": shown})
        elif event == "device_signout" and variant == 0:
            for target in (tokens[1], cookies[1]):
                request("device_signout", "DELETE", f"/api/sessions/{target.session}", user=user, device=actor,
                        bearer=actor.access_token, record={"target": target.session})
        elif event == "device_signout":
            csrf, shown = self.dashboard_csrf(speaker, user, cookies[1])
            if csrf:
                for target in (tokens[1], cookies[0]):
                    request("form_device_signout", "POST", f"/sessions/{target.session}/revoke", user=user,
                            device=cookies[1], form={"csrf_token": csrf},
                            record={"target": target.session, "dashboard_sent": shown})
        elif event == "logout_all" and variant == 0:
            request("logout_all", "POST", "/api/logout-all", user=user, device=actor, bearer=actor.access_token,
                    json_body={"password": user.password})
        elif event == "logout_all":
            csrf, shown = self.dashboard_csrf(speaker, user, cookies[0])
            if csrf:
                request("form_logout_all", "POST", "/logout-all", user=user, device=cookies[0],
                        form={"csrf_token": csrf, "confirm": "yes", "password": user.password},
                        record={"dashboard_sent": shown})
        elif event == "password_change":
            password = new_password()
            renewed = self.run_state.new_device("token", actor.label.split("/")[0], 2, speaker.index)
            renewed.label, renewed.address, renewed.agent = actor.label + "'", actor.address, actor.agent
            answer = request("password_change", "POST", "/api/password", user=user, device=actor,
                             bearer=actor.access_token,
                             json_body={"current_password": user.password, "new_password": password},
                             record={"new_cred": renewed.credential})
            if answer.status != 200:
                return None  # the password may or may not have changed; nobody logs in again
            body = answer.json()
            user.password = password
            renewed.access_token = body.get("access_token")
            renewed.session = body.get("session_id") or actor.session
            speaker.last_entry["new_session"] = renewed.session
            self.run_state.register_device(renewed, user)
            return renewed
        return None


class Prober(Client):
    """A user who is never revoked: one token device and one cookie device that the check load
    keeps asking about, so every strategy has a steady series of answers that must be 200 (the
    503 runs and recovery times are read from it and the other live credentials). A cookie that
    stops working (its state was lost with Redis) is replaced by a new log-in."""

    def run(self) -> None:
        registry = self.run_state.registry
        user = User(f"faults-{self.run_state.tag}-probe@revocable.invalid", new_password())
        rounds = 0
        while not self.stopped() and rounds < 100_000:
            rounds += 1
            try:
                if rounds == 1:
                    self.register(user)
                    device = self.new_device("token", 0, 0)
                    self.token_login(user, device)
                    registry.add_steady(device, user)
                cookie = self.new_device("cookie", 0, rounds)
                self.form_login(user, cookie)
                registry.add_steady(cookie, user)
                while not self.stopped():
                    self.pause(1.0)
                    if self.speaker.check(user, cookie, "cookie").status == 401:
                        break  # lost: log in again
            except Abandon:
                if rounds == 1:
                    rounds = 0  # not registered yet: start again
                self.pause(0.5)
            except Exception:  # noqa: BLE001 - an error in this script, reported at the end
                self.suite_errors.append(traceback.format_exc())
                return
        self.speaker.connection.close()


# --------------------------------------------------------------------------------------------
# The nemesis
# --------------------------------------------------------------------------------------------


class Nemesis:
    """One fault at a time, each followed by a quiet gap; runs in the main thread (it starts
    processes again, and those must outlive no thread but the main one)."""

    def __init__(self, run: "Run") -> None:
        self.run = run
        self.cluster = run.cluster
        self.faults: list[dict] = []
        self.plan = ["pause", "kill", "cut_one", "cut_all"]
        if self.cluster.redis is not None:
            self.plan += ["redis_down", "redis_empty"]
        self.cycle = 0
        self.random = random.Random(run.seed)
        self.last_target: Instance | None = None
        # Instances that exited without the nemesis killing them.
        self.crashes: list[dict] = []
        # Moments this thread woke up late: the machine (or this process) was too busy to keep
        # time, and answers then were slow for reasons outside the system under test.
        self.stalls: list[tuple[float, float]] = []
        self.peak_load = 0.0

    def length(self, kind: str) -> float:
        return {"pause": 2.0, "kill": 4.0, "cut_one": 3.0, "cut_all": 3.0, "redis_down": 3.0, "redis_empty": 1.0}[kind]

    def sleep_until(self, moment: float) -> None:
        while clock() < moment:
            self.watch()
            before = clock()
            planned = min(0.05, max(0.0, moment - before))
            time.sleep(planned)
            late = clock() - before - planned
            if late > 0.3:
                self.stalls.append((before, late))
            with contextlib.suppress(OSError, ValueError):
                with open("/proc/loadavg") as loadavg:
                    self.peak_load = max(self.peak_load, float(loadavg.read().split()[0]))

    def watch(self) -> None:
        """An instance that exits by itself is a crash: recorded, then started again."""
        if self.cluster.nginx is not None and self.cluster.nginx.poll() is not None:
            raise Failed(f"nginx exited with status {self.cluster.nginx.returncode}")
        for instance in self.cluster.instances:
            if instance.expected_down or instance.process is None or instance.process.poll() is None:
                continue
            crash = {"instance": instance.name, "at": clock(), "status": instance.process.returncode,
                     "log": instance.failure_line()}
            self.crashes.append(crash)
            print(f"  {crash['at']:7.1f}s  !!! {instance.name} EXITED BY ITSELF with status {crash['status']}: "
                  f"{crash['log']}", flush=True)
            instance.start()
            instance.wait(30)

    def target(self, slot: int) -> Instance:
        """Each instance-level fault on another instance in each cycle."""
        instance = self.cluster.instances[(self.cycle + slot) % len(self.cluster.instances)]
        self.last_target = instance
        return instance

    def inflict(self, kind: str) -> dict:
        fault = {"kind": kind, "label": FAULT_LABELS[kind], "target": None, "start": clock()}
        if kind == "pause":
            instance = self.target(0)
            fault["target"] = instance.name
            fault["start"] = clock()
            instance.signal(signal.SIGSTOP)
            self.sleep_until(fault["start"] + 2.0)
            instance.signal(signal.SIGCONT)
            fault["end"] = clock()
        elif kind == "kill":
            instance = self.target(1)
            fault["target"] = instance.name
            instance.expected_down = True
            fault["start"] = clock()
            instance.signal(signal.SIGKILL)
            instance.kill()
            # Until the process is gone its listening socket still takes connections, so nginx can
            # still hand it a request sent a little after the signal.
            fault["dead"] = clock()
            self.sleep_until(fault["start"] + 1.5)
            instance.start()
            state = instance.wait(30)
            instance.expected_down = False
            fault["end"] = clock()
            fault["restart"] = state
            if state != "up":
                fault["note"] = f"did not come back ({state}): {instance.failure_line()}"
        elif kind in ("cut_one", "cut_all"):
            if kind == "cut_one":
                instance = self.target(2)
                proxies, fault["target"] = [instance.proxy], instance.name
            else:
                proxies, fault["target"] = [i.proxy for i in self.cluster.instances], "all"
            fault["start"] = clock()
            for proxy in proxies:
                proxy.cut("refuse")  # open connections reset, new ones refused ...
            self.sleep_until(fault["start"] + 1.0)
            for proxy in proxies:
                proxy.set_mode("blackhole")  # ... then left unanswered, as by a partition
            self.sleep_until(fault["start"] + 3.0)
            for proxy in proxies:
                proxy.restore()
            fault["end"] = clock()
        elif kind == "redis_down":
            fault["target"] = "redis"
            fault["start"] = clock()
            self.cluster.redis.kill()
            self.sleep_until(fault["start"] + 3.0)
            self.cluster.redis.start()
            fault["end"] = clock()
        elif kind == "redis_empty":
            fault["target"] = "redis"
            fault["start"] = clock()
            self.cluster.redis.kill()
            self.cluster.redis.start()
            fault["end"] = clock()
        return fault

    def run_until(self, deadline: float, baseline: float, gap: float) -> None:
        self.sleep_until(baseline)
        turn = 0
        while turn < 1000:
            kind = self.plan[turn % len(self.plan)]
            self.cycle = turn // len(self.plan)
            if clock() + self.length(kind) + 1.8 * gap + 6 > deadline:
                break
            self.last_target = None
            fault = self.inflict(kind)
            if self.last_target is not None:
                fault["target_address"] = f"127.0.0.1:{self.last_target.port}"
            self.faults.append(fault)
            print(f"  {fault['start']:7.1f}s  {fault['label']:<40} {fault['target'] or '':<6} "
                  f"{fault['end'] - fault['start']:.1f}s" + (f"  {fault['note']}" if fault.get("note") else ""),
                  flush=True)
            # An uneven gap, so that the faults do not fall into step with the clients.
            self.sleep_until(fault["end"] + gap * self.random.uniform(1.0, 1.8))
            turn += 1
        # The last fault's aftermath runs until the clients stop.
        self.sleep_until(deadline)


# --------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------


def is_success(op: dict) -> bool:
    return op["status"] in SUCCESS.get(op["op"], {200})


def fault_overlaps(faults: list[dict], start: float, end: float) -> bool:
    return any(f["start"] <= end and f["end"] >= start for f in faults)


def revocation_is_definite(op: dict, faults: list[dict]) -> bool:
    """Whether a revocation certainly happened, from its answer alone.

    JSON routes say so with their status. Form posts answer 303 either way: `/sessions/{id}/revoke`
    goes back to /dashboard only when it revoked, but `/logout` and `/logout-all` go to /login both
    when they did their work and when the browser did not count as logged in. Those two count only
    when the dashboard loaded just before (the browser was logged in), the answer removed the
    session cookie, and no fault overlapped the pair (a cookie store that did not answer might be
    read as "not logged in"). Anything less counts from nothing, like an unanswered request."""
    if not is_success(op):
        return False
    if op["op"] == "form_device_signout":
        return op.get("location") == "/dashboard"
    if op["op"] in ("form_logout", "form_logout_all"):
        shown = op.get("dashboard_sent")
        return (
            op.get("location") == "/login"
            and op.get("cookie_removed", False)
            and shown is not None
            and not fault_overlaps(faults, shown - 0.1, op["received"] + 0.1)
        )
    return True


class Credential:
    __slots__ = ("id", "user", "kind", "session", "issued", "device")

    def __init__(self, cred_id, user, kind, session, issued, device):
        self.id = cred_id
        self.user = user
        self.kind = kind
        self.session = session
        self.issued = issued
        self.device = device


def credentials_of(ops: list[dict]) -> dict[str, Credential]:
    credentials: dict[str, Credential] = {}
    for op in ops:
        if op["op"] in ("token_login", "form_login") and op.get("issued") and is_success(op):
            credentials[op["cred"]] = Credential(op["cred"], op["user"], op["kind"], op["session"], op["received"], op["device"])
        elif op["op"] == "password_change" and is_success(op) and op.get("new_cred"):
            credentials[op["new_cred"]] = Credential(
                op["new_cred"], op["user"], "token", op.get("new_session") or op["session"], op["received"],
                (op["device"] or "") + "'",
            )
    return credentials


def effects_of(op: dict, credentials: list[Credential]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The (credential, strategy) pairs this revocation makes refuse, per the README's matrix,
    among the user's credentials issued before it was sent; and the pairs it may make refuse
    without the matrix saying so (a refusal there is not counted against liveness, an acceptance
    is no violation)."""
    before = [c for c in credentials if c.issued < op["sent"]]
    effects: set[tuple[str, str]] = set()
    permitted: set[tuple[str, str]] = set()
    kind = op["op"]
    if kind == "logout":  # this token denylisted, its login session ended
        effects |= {(op["cred"], "denylist"), (op["cred"], "allowlist")}
        for c in before:
            if c.kind == "token" and c.session == op["session"]:
                effects.add((c.id, "allowlist"))
                permitted.add((c.id, "denylist"))
    elif kind == "form_logout":
        effects.add((op["cred"], "cookie"))
    elif kind in ("device_signout", "form_device_signout"):
        for c in before:
            if c.session == op.get("target"):
                effects |= {(c.id, "denylist"), (c.id, "allowlist")} if c.kind == "token" else {(c.id, "cookie")}
    elif kind in ("logout_all", "form_logout_all"):
        for c in before:
            effects |= {(c.id, s) for s in ("version", "denylist", "allowlist")} if c.kind == "token" else {(c.id, "cookie")}
    elif kind == "password_change":
        for c in before:
            if c.session == op["session"]:
                if c.kind == "token":
                    effects.add((c.id, "version"))  # the actor's own old token carries the old `ver`
                    permitted.add((c.id, "denylist"))  # replaced by the fresh pair: may be denylisted
            elif c.kind == "token":
                effects |= {(c.id, s) for s in ("version", "denylist", "allowlist")}
            else:
                effects.add((c.id, "cookie"))
    return effects, permitted - effects


def route_of(op: dict) -> str:
    return f"check {op['strategy']}" if op["op"] in ("check", "final_check") else op["op"]


def phase_of(moment: float, faults: list[dict], workload_end: float) -> str:
    """A request belongs to the fault before it (from its start until the next one starts), to
    "no fault" before the first one, and to "final reads" after the clients stopped."""
    if moment >= workload_end:
        return "final reads"
    current = "no fault"
    for fault in faults:
        if fault["start"] <= moment:
            current = fault["kind"]
        else:
            break
    return current


def instance_port(op: dict) -> str:
    """The address of the instance that answered (the last one nginx tried)."""
    upstream = op.get("upstream") or ""
    return upstream.replace(" : ", ",").split(",")[-1].strip()


def killed_in_flight(op: dict, faults: list[dict]) -> bool:
    """Sent before the killed process was gone (its socket still accepting), answered after the signal."""
    return any(
        f["kind"] == "kill" and op["sent"] - 0.05 <= f.get("dead", f["start"]) and f["start"] <= op["received"]
        for f in faults
    )


def check_history(ops: list[dict], faults: list[dict], bound: float, workload_end: float) -> dict:
    """Reads the whole history; returns every finding and the figures of the tables."""
    ops = sorted(ops, key=lambda op: op["sent"])
    faults = sorted(faults, key=lambda f: f["start"])
    credentials = credentials_of(ops)
    by_user: dict[str, list[Credential]] = collections.defaultdict(list)
    for credential in credentials.values():
        by_user[credential.user].append(credential)

    # For every (credential, strategy): the revocations that concern it.
    revoked: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    revocations = []
    for op in ops:
        if op["op"] not in REVOCATIONS:
            continue
        definite = revocation_is_definite(op, faults)
        entry = {"op": op, "definite": definite}
        revocations.append(entry)
        required, permitted = effects_of(op, by_user.get(op["user"], []))
        for pair in required:
            revoked[pair].append(entry)
        for pair in permitted:
            revoked[pair].append({"op": op, "definite": False})

    phases = ["no fault"] + [k for k in FAULT_LABELS if any(f["kind"] == k for f in faults)] + ["final reads", "overall"]
    def row() -> dict:
        return {
            "requests": 0, "checks": 0, "tested": 0, "violations": 0, "within_bound": 0, "live_refused": 0,
            "stateless_refused": 0, "slowest": 0.0,
            "unexpected_5xx": 0, "indeterminate": 0, "no_answer": 0, "unavailable": 0, "unavailable_no_retry_after": 0,
            "other_4xx": 0,
        }
    table = {phase: row() for phase in phases}
    findings = {"violations": [], "unexpected_5xx": [], "indeterminate": [], "stateless_refused": [], "live_refused": [],
                "no_answer": [], "other_4xx": []}

    def count(op: dict, field: str, finding: dict | None = None) -> None:
        for phase in (phase_of(op["sent"], faults, workload_end), "overall"):
            table.setdefault(phase, row())[field] += 1
        if finding is not None:
            findings[field].append(finding)

    live_checks = {strategy: [] for strategy in STRATEGIES}
    for op in ops:
        count(op, "requests")
        for phase in (phase_of(op["sent"], faults, workload_end), "overall"):
            table[phase]["slowest"] = max(table[phase]["slowest"], op["received"] - op["sent"])
        status = op["status"]
        if status is None:
            count(op, "no_answer", {"op": op})
        elif status == 503:
            count(op, "unavailable")
            if not op.get("retry_after"):
                count(op, "unavailable_no_retry_after")
        elif status >= 500:
            if op.get("by_nginx") and op["method"] in NON_IDEMPOTENT and killed_in_flight(op, faults):
                count(op, "indeterminate", {"op": op})
            else:
                count(op, "unexpected_5xx", {"op": op})
        elif 400 <= status < 500 and status != 401 and op["op"] not in REVOCATIONS:
            count(op, "other_4xx", {"op": op})
        if op["op"] not in ("check", "final_check", "cookie_identity") or not op.get("cred"):
            continue
        count(op, "checks")
        concerning = revoked.get((op["cred"], op["strategy"]), [])
        if not any(entry["op"]["sent"] < op["received"] for entry in concerning):
            live_checks[op["strategy"]].append(op)  # must be accepted: 200, or 503 while it cannot tell
        if any(e["definite"] and op["sent"] > e["op"]["received"] + bound for e in concerning):
            count(op, "tested")
        if status == 200:
            for entry in concerning:
                revocation = entry["op"]
                if entry["definite"] and op["sent"] > revocation["received"] + bound:
                    count(op, "violations", {"op": op, "revocation": revocation,
                                             "late_by": op["sent"] - revocation["received"]})
                    break
            else:
                if any(e["definite"] and op["sent"] > e["op"]["received"] for e in concerning):
                    count(op, "within_bound")
        elif status == 401:
            # Refusing is right once any revocation of it was sent, answered or not.
            if not any(entry["op"]["sent"] < op["received"] for entry in concerning):
                field = "stateless_refused" if op["strategy"] == "stateless" else "live_refused"
                count(op, field, {"op": op})

    # 503s per strategy: how many, and the longest run of them in a row (first sent to last
    # answered) among the checks of credentials nothing revoked, which a working strategy accepts.
    stretches = {phase: {s: {"count": 0, "longest": 0.0} for s in STRATEGIES} for phase in table}
    for op in ops:
        if op["op"] in ("check", "final_check", "cookie_identity") and op["status"] == 503 and op.get("strategy"):
            for phase in (phase_of(op["sent"], faults, workload_end), "overall"):
                stretches[phase][op["strategy"]]["count"] += 1
    for strategy in STRATEGIES:
        run_start = None
        last = None
        for op in live_checks[strategy] + [None]:
            if op is not None and op["status"] == 503:
                if run_start is None:
                    run_start = op
                last = op
                continue
            if run_start is not None:
                length = last["received"] - run_start["sent"]
                for phase in (phase_of(run_start["sent"], faults, workload_end), "overall"):
                    cell = stretches[phase][strategy]
                    cell["longest"] = max(cell["longest"], length)
                run_start = None

    # Recovery: after each fault ends, the first answer that succeeded on each route.
    routes = [f"check {s}" for s in STRATEGIES] + ["token_login", "form_login", "register", "revocation"]
    recovery = []
    for index, fault in enumerate(faults):
        horizon = faults[index + 1]["start"] if index + 1 < len(faults) else workload_end
        times = {}
        for route in routes:
            first = None
            for op in ops:
                if op["sent"] < fault["end"] or op["sent"] >= horizon:
                    continue
                matches = op["op"] in REVOCATIONS if route == "revocation" else route_of(op) == route
                if matches and is_success(op):
                    first = op["received"] - fault["end"]
                    break
            sent_any = any(
                fault["end"] <= op["sent"] < horizon
                and (op["op"] in REVOCATIONS if route == "revocation" else route_of(op) == route)
                for op in ops
            )
            times[route] = first if first is not None else ("not recovered" if sent_any else None)
        # How often the instance under the fault was asked, while it lasted, about a credential
        # revoked more than the bound before: the chances it had to answer stale.
        tested_on_target = sum(
            1 for op in ops
            if op["op"] == "check" and fault["start"] <= op["sent"] <= fault["end"]
            and instance_port(op) == fault.get("target_address")
            and any(e["definite"] and op["sent"] > e["op"]["received"] + bound
                    for e in revoked.get((op["cred"], op["strategy"]), []))
        ) if fault.get("target_address") else None
        recovery.append({"fault": fault, "times": times, "tested_on_target": tested_on_target})

    return {
        "bound": bound,
        "table": table,
        "stretches": stretches,
        "recovery": recovery,
        "findings": findings,
        "credentials": len(credentials),
        "revocations": len(revocations),
        "definite_revocations": sum(1 for r in revocations if r["definite"]),
        "revoked_pairs": {pair: entries for pair, entries in revoked.items() if any(e["definite"] for e in entries)},
    }


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def phase_label(phase: str) -> str:
    return FAULT_LABELS.get(phase, phase)


def markdown_tables(result: dict, faults: list[dict], names: dict[str, str]) -> str:
    bound = result["bound"]
    out = []
    out.append(f"| phase | faults | requests | checks | of revoked, > {bound:g} s after | **revoked accepted > {bound:g} s** "
               f"| accepted ≤ {bound:g} s after revoking | **unexpected 5xx** | indeterminate | no answer | 503 "
               "| live refused | stateless refused | slowest answer (s) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for phase, cells in result["table"].items():
        occurrences = sum(1 for f in faults if f["kind"] == phase) if phase in FAULT_LABELS else ""
        if phase == "overall":
            occurrences = len(faults)
        name = f"**{phase_label(phase)}**" if phase == "overall" else phase_label(phase)
        out.append(
            f"| {name} | {occurrences} | {cells['requests']} | {cells['checks']} | {cells['tested']} | {cells['violations']} "
            f"| {cells['within_bound']} | {cells['unexpected_5xx']} | {cells['indeterminate']} | {cells['no_answer']} "
            f"| {cells['unavailable']} | {cells['live_refused']} | {cells['stateless_refused']} | {cells['slowest']:.2f} |"
        )
    out.append("")
    out.append("503s per strategy: count / longest run of 503s in a row on credentials nothing revoked (first sent to "
               "last answered, every instance together).")
    out.append("")
    out.append("| phase | " + " | ".join(STRATEGIES) + " |")
    out.append("|---|" + "---|" * len(STRATEGIES))
    for phase, cells in result["stretches"].items():
        name = f"**{phase_label(phase)}**" if phase == "overall" else phase_label(phase)
        out.append(f"| {name} | " + " | ".join(
            f"{cells[s]['count']} / {cells[s]['longest']:.2f} s" if cells[s]["count"] else "0" for s in STRATEGIES) + " |")
    out.append("")
    out.append("Each fault: how many checks the instance under it answered, sent while it lasted, about a credential "
               f"revoked more than {bound:g} s before (its chances to answer stale); then the seconds from the end of "
               "the fault to the first success on each route (`-`: not sent before the next fault).")
    out.append("")
    routes = [f"check {s}" for s in STRATEGIES] + ["token_login", "form_login", "revocation"]
    headings = list(STRATEGIES) + ["token log-in", "form log-in", "revocations"]
    out.append("| # | fault | target | start (s) | length (s) | revoked checks on the target | " + " | ".join(headings) + " |")
    out.append("|---|---|---|---|---|---|" + "---|" * len(headings))
    for number, entry in enumerate(result["recovery"], 1):
        fault = entry["fault"]
        cells = []
        for route in routes:
            value = entry["times"].get(route)
            cells.append("-" if value is None else (f"**{value}**" if isinstance(value, str) else f"{value:.2f}"))
        label = fault["label"] + (f" ({fault['note']})" if fault.get("note") else "")
        tested = entry.get("tested_on_target")
        out.append(f"| {number} | {label} | {fault.get('target') or ''} | {fault['start']:.1f} "
                   f"| {fault['end'] - fault['start']:.1f} | {'' if tested is None else tested} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def instance_of(op: dict, names: dict[str, str]) -> str:
    last = instance_port(op)
    return names.get(last, last or "?")


def describe(op: dict, names: dict[str, str]) -> str:
    who = f"{op.get('device') or ''} ({op.get('cred')})" if op.get("cred") else ""
    what = f"{op['method']} {op['path']}"
    return (f"{op['sent']:8.3f}s→{op['received']:8.3f}s  {instance_of(op, names):<4} {what:<28} {who:<26} "
            f"{op['status']} {op.get('error') or ''}")


def print_findings(result: dict, names: dict[str, str], limit: int = 40) -> None:
    findings = result["findings"]
    if findings["violations"]:
        print(f"\nREVOKED CREDENTIALS ACCEPTED LATER THAN {result['bound']:g} s AFTER THE REVOKING RESPONSE "
              f"({len(findings['violations'])}):")
        for finding in findings["violations"][:limit]:
            op, revocation = finding["op"], finding["revocation"]
            print(f"  {describe(op, names)}  [{op['strategy']}] sent {finding['late_by']:.3f} s after "
                  f"{revocation['op']} #{revocation['id']} answered {revocation['status']} by "
                  f"{instance_of(revocation, names)} at {revocation['received']:.3f}s")
        if len(findings["violations"]) > limit:
            print(f"  ... and {len(findings['violations']) - limit} more (see --json)")
    for field, title in (("unexpected_5xx", "UNEXPECTED 5xx (other than 503, not a request cut short by a SIGKILL)"),
                         ("stateless_refused", "STATELESS REFUSED A TOKEN (it checks nothing revocable)"),
                         ("indeterminate", "indeterminate (a non-idempotent request in flight when an instance was killed)"),
                         ("no_answer", "no answer (the client gave up or the connection broke)"),
                         ("live_refused", "refused with no revocation sent for it (liveness, not safety)"),
                         ("other_4xx", "other 4xx answers")):
        items = findings[field]
        if not items:
            continue
        print(f"\n{title}: {len(items)}")
        if field in ("live_refused", "other_4xx"):
            kinds = collections.Counter((f["op"].get("strategy") or f["op"]["op"], f["op"]["error"]) for f in items)
            print("  by strategy and answer: " + ", ".join(f"{s} {e}: {n}" for (s, e), n in kinds.most_common()))
        for finding in items[: (limit if field in ("unexpected_5xx", "stateless_refused") else 8)]:
            print(f"  {describe(finding['op'], names)}")


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace, cluster: Cluster) -> None:
        self.args = args
        self.cluster = cluster
        self.history = History()
        self.stop = threading.Event()
        self.seed = args.seed
        self.tag = secrets.token_hex(3)
        bound = parse_duration(args.staleness)
        self.warm_up = 0.6
        self.after_window = max(2.5, 2.5 * bound)
        self.registry = Registry(args.seed, bound)
        # Prepared users waiting for their revocation; bounded, so that preparing never runs far
        # ahead of revoking.
        self.armed: "queue.Queue[Armed]" = queue.Queue(maxsize=max(4, args.threads * 2))
        self._devices_made = 0
        self._owners: dict[str, User] = {}
        self._devices: dict[str, Device] = {}
        self._lock = threading.Lock()

    def new_device(self, kind: str, owner: str, slot: int, thread: int) -> Device:
        """A device with a credential id unique in the run and an address of its own."""
        with self._lock:
            self._devices_made += 1
            number = self._devices_made
        label = f"{owner}/{'T' if kind == 'token' else 'C'}{slot}"
        address = f"198.18.{thread % 250}.{1 + number % 250}"
        agent = (
            f"fault-suite/1 (token device {slot})"
            if kind == "token"
            else f"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 fault-suite-{slot}"
        )
        return Device(f"d{number}", kind, label, address, agent)

    def register_device(self, device: Device, user: User) -> None:
        with self._lock:
            self._owners[device.credential] = user
            self._devices[device.credential] = device

    def final_reads(self, pairs: list[tuple[str, str]], rounds: int) -> None:
        """After the faults: every revoked credential again, on every strategy that must refuse
        it, a few times so that each instance is asked."""
        speaker = Speaker(99, self)
        for _ in range(rounds):
            for cred, strategy in pairs:
                device = self._devices.get(cred)
                if device is None or (strategy != "cookie" and not device.access_token):
                    continue
                speaker.check(self._owners[cred], device, strategy, op="final_check")
        speaker.connection.close()


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (say 1s, 500ms)")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value * 60 if match.group(2) == "m" else value


def preflight(args: argparse.Namespace) -> None:
    problems = []
    if not os.path.isfile(args.binary) or not os.access(args.binary, os.X_OK):
        problems.append(f"the revocable binary is missing: {args.binary} (cargo build, or pass --binary PATH)")
    nginx = args.nginx or shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx or not os.access(nginx, os.X_OK):
        problems.append(f"nginx is not installed{f' at {nginx}' if nginx else ''} (apt-get install -y nginx-light)")
    args.nginx = nginx
    if not os.path.isfile(args.nginx_conf):
        problems.append(f"the load balancer configuration is missing: {args.nginx_conf}")
    if not shutil.which("psql"):
        problems.append("psql is not installed (apt-get install -y postgresql-client)")
    else:
        try:
            result = psql("SELECT 1", timeout=10)
            if result.returncode != 0:
                problems.append(f"PostgreSQL does not answer on 127.0.0.1:5432 as user postgres: {result.stderr.strip()}")
        except subprocess.TimeoutExpired:
            problems.append("PostgreSQL does not answer on 127.0.0.1:5432 within 10 s")
    if args.backend == "redis" and not shutil.which("redis-server"):
        problems.append("redis-server is not installed (apt-get install -y redis-server), needed for --backend redis")
    if problems:
        raise CannotRun("\n".join(problems))


def run_suite(args: argparse.Namespace) -> int:
    preflight(args)
    supervisor = Supervisor()
    workdir = tempfile.mkdtemp(prefix="revocable-faults-")
    # A copy: the binary in target/ may be rebuilt while the suite runs.
    args.binary_copy = os.path.join(workdir, "revocable")
    shutil.copy2(args.binary, args.binary_copy)
    with open(args.binary_copy, "rb") as binary:
        digest = hashlib.sha256(binary.read()).hexdigest()[:12]
    version = subprocess.run([args.binary_copy, "--version"], capture_output=True, text=True).stdout.strip()
    cluster = Cluster(args, supervisor, workdir)
    run = Run(args, cluster)
    bound = parse_duration(args.staleness)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    clients: list[Client] = []
    checks = None
    revocations = None
    nemesis = None
    try:
        print(f"fault suite: backend {args.backend}, {args.duration:.0f} s of load, {args.threads} clients preparing "
              f"users, {args.revocations:g} revocations/s, {args.rate:g} checks/s, bound {args.staleness}; "
              f"work files in {workdir}")
        print(f"binary: {args.binary} ({version}, sha256 {digest}, built "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(args.binary)))})")
        cluster.start()
        ports = ", ".join(f"{i.name} :{i.port} (db proxy :{i.proxy.port})" for i in cluster.instances)
        print(f"up: nginx :{cluster.nginx_port}; {ports}" + (f"; redis :{cluster.redis.port}" if cluster.redis else ""))
        ready = cluster.readyz() or {}
        knows_bound = "revocations" in ready
        if not knows_bound:
            print("note: /readyz has no `revocations` object: this binary predates REVOCATION_MAX_STALENESS and "
                  "ignores it; the checker holds it to the bound all the same")
        load_start = clock()
        deadline = load_start + args.duration
        clients = [Client(index, run) for index in range(args.threads)] + [Prober(args.threads, run)]
        for client in clients:
            client.start()
        checks = CheckLoad(run, args.rate, args.workers)
        checks.start()
        revocations = Revocations(run, args.revocations, 24)
        revocations.start()
        nemesis = Nemesis(run)
        print("faults (time since the suite started):")
        nemesis.run_until(deadline, baseline=load_start + min(5.0, args.duration / 10), gap=args.gap)
        run.stop.set()
        for client in clients:
            client.join(timeout=50)
        checks.join(timeout=50)
        revocations.join(timeout=50)
        workload_end = clock()
        # Final reads, once every fault is over: each revoked credential on each refusing strategy.
        time.sleep(max(1.0, 1.5 * bound))
        preliminary = check_history(list(run.history.ops), nemesis.faults, bound, workload_end)
        pairs = sorted(preliminary["revoked_pairs"])
        random.Random(args.seed).shuffle(pairs)
        run.final_reads(pairs[: args.final_reads], rounds=3)
    finally:
        run.stop.set()
        cluster.close()
        with contextlib.suppress(OSError):
            os.remove(args.binary_copy)  # the logs stay; the copy is large

    faults = nemesis.faults if nemesis else []
    result = check_history(list(run.history.ops), faults, bound, workload_end)
    names = cluster.upstream_names()
    suite_errors = [error for client in clients for error in client.suite_errors]
    suite_errors += revocations.suite_errors if revocations else []

    print(f"\n## Fault suite: {args.backend}, {started}\n")
    print(f"`{' '.join(sys.argv)}`; binary `{version}` sha256 `{digest}`; {args.threads} clients, "
          f"{args.duration:.0f} s of load, REVOCATION_MAX_STALENESS={args.staleness}"
          + "".join(f", instances also given `{setting}`" for setting in args.instance_env)
          + ("" if knows_bound else " (not known to this binary)") + f"; {result['credentials']} credentials, "
          f"{result['revocations']} revocations ({result['definite_revocations']} answered as done); "
          f"{checks.dropped if checks else 0} checks not sent for want of a free worker; revocations at "
          f"{args.revocations:g}/s, {revocations.missed if revocations else 0} ticks without a prepared user.\n")
    startup = cluster.startup
    if startup.get("failed"):
        print(f"Start-up: **{len(startup['failed'])} of 3 instances started at once on the new database did not come up**: "
              + "; ".join(f"{name}: {startup['outcomes'][name]['log']}" for name in startup["failed"]) + "\n")
    else:
        print(f"Start-up: all 3 instances started at once on the new database came up in {startup.get('up_after', 0):.1f} s.\n")
    for crash in nemesis.crashes if nemesis else []:
        print(f"**{crash['instance']} exited by itself** at {crash['at']:.1f} s, status {crash['status']}: {crash['log']}\n")
    if nemesis:
        stalls = nemesis.stalls
        longest = max(stalls, key=lambda stall: stall[1]) if stalls else None
        print(f"The machine: load average peaked at {nemesis.peak_load:.1f} on {os.cpu_count()} cores; "
              + (f"**the suite woke up late {len(stalls)} times (longest {longest[1]:.1f} s, at {longest[0]:.1f} s)**: "
                 "answers around then were slow for reasons outside the system under test (a late client only "
                 "makes the checker more lenient, never stricter)."
                 if stalls else "the suite always woke up on time.") + "\n")
    print(markdown_tables(result, faults, names))
    missing = result["table"]["overall"]["unavailable_no_retry_after"]
    print(f"\n503s without Retry-After: {missing}" + (" (every 503 must carry it)" if missing else "") + ".")
    print_findings(result, names)

    if args.json:
        with open(args.json, "w") as out:
            json.dump({
                "backend": args.backend, "binary": args.binary, "version": version, "sha256": digest,
                "bound_seconds": bound, "startup": startup, "faults": faults, "workload_end": workload_end,
                "crashes": nemesis.crashes if nemesis else [],
                "suite_stalls": nemesis.stalls if nemesis else [], "peak_load": nemesis.peak_load if nemesis else None,
                "summary": {phase: {**cells, "unavailable_by_strategy": result["stretches"][phase]}
                            for phase, cells in result["table"].items()},
                "history": run.history.ops,
            }, out, indent=None, default=str)
        print(f"\nhistory and summary written to {args.json}")

    overall = result["table"]["overall"]
    failures = []
    if overall["violations"]:
        failures.append(f"{overall['violations']} checks accepted a revoked credential more than {bound:g} s after the revoking response")
    if overall["unexpected_5xx"]:
        failures.append(f"{overall['unexpected_5xx']} answers were a 5xx other than 503")
    if overall["unavailable_no_retry_after"]:
        failures.append(f"{overall['unavailable_no_retry_after']} answers were a 503 without Retry-After")
    if overall["stateless_refused"]:
        failures.append(f"{overall['stateless_refused']} stateless checks refused a valid token")
    if startup.get("failed"):
        failures.append(f"{len(startup['failed'])} of 3 instances did not come up when started at once")
    for fault in faults:
        if fault.get("note"):
            failures.append(f"{fault['target']} {fault['note']}")
    for crash in nemesis.crashes if nemesis else []:
        failures.append(f"{crash['instance']} exited by itself at {crash['at']:.1f} s with status {crash['status']}: {crash['log']}")
    if failures:
        print("\nFAIL: " + "\nFAIL: ".join(failures))
    if suite_errors:
        print("\nERRORS IN THE SUITE ITSELF (the results above are incomplete):", file=sys.stderr)
        for error in suite_errors[:3]:
            print(error, file=sys.stderr)
        return EXIT_CANNOT_RUN
    if failures:
        return EXIT_FAILED
    print("\nPASS: no revoked credential accepted past the bound, no 5xx other than 503.")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# The checker's own test: histories with and without planted violations
# --------------------------------------------------------------------------------------------


def self_test() -> int:
    ops: list[dict] = []

    def op(name, sent, received, status, **fields):
        entry = {"id": len(ops), "thread": 0, "op": name, "method": fields.pop("method", "GET"), "path": fields.pop("path", "/"),
                 "user": fields.pop("user", "u1"), "device": fields.pop("device", None), "cred": fields.pop("cred", None),
                 "session": fields.pop("session", None), "sent": sent, "received": received, "status": status,
                 "error": None, "upstream": "127.0.0.1:1", "by_nginx": False, "retry_after": status == 503,
                 "location": None, "cookie_removed": False}
        entry.update(fields)
        ops.append(entry)
        return entry["id"]

    def login(cred, session, at, kind="token", user="u1"):
        op("token_login" if kind == "token" else "form_login", at, at + 0.01, 200 if kind == "token" else 303,
           method="POST", cred=cred, session=session, kind=kind, issued=True, user=user, device=cred)

    def check(cred, strategy, sent, status, user="u1"):
        return op("check", sent, sent + 0.01, status, cred=cred, strategy=strategy, user=user)

    bound = 1.0
    # User 1: T0 logged out at 10.0 (answered 10.1); a cookie C0 logged out by form at 20 (answered 20.1).
    login("T0", "s0", 1)
    login("T1", "s1", 1.1)
    login("C0", "s2", 1.2, kind="cookie")
    login("C1", "s3", 1.3, kind="cookie")
    op("logout", 10.0, 10.1, 204, method="POST", cred="T0", session="s0")
    planted = set()
    check("T0", "denylist", 10.5, 200)                 # within the bound: allowed
    planted.add(check("T0", "denylist", 11.2, 200))   # past it: a violation
    planted.add(check("T0", "allowlist", 15.0, 200))  # past it: a violation
    check("T0", "version", 15.0, 200)                  # a log-out leaves `version` accepting
    check("T0", "stateless", 15.0, 200)                # and `stateless`
    check("T1", "denylist", 15.0, 200)                 # another device: still valid
    check("T0", "denylist", 15.1, 401)                 # a right refusal
    # A form log-out counts only when the dashboard loaded just before and no fault overlapped.
    op("dashboard", 19.9, 19.95, 200, cred="C0")
    op("form_logout", 20.0, 20.1, 303, method="POST", cred="C0", session="s2", location="/login",
       cookie_removed=True, dashboard_sent=19.9)
    after_form_logout = check("C0", "cookie", 21.5, 200)
    planted.add(after_form_logout)
    # A form sign-out of T1 answered with the log-in page (the browser was not logged in): nothing.
    op("form_device_signout", 25.0, 25.1, 303, method="POST", cred="C1", session="s3", target="s1", location="/login")
    check("T1", "denylist", 27.0, 200)
    # Device sign-out of C1, unanswered (indeterminate): counts from nothing, either way.
    op("device_signout", 30.0, 30.1, None, method="DELETE", cred="T1", session="s1", target="s3")
    check("C1", "cookie", 35.0, 200)
    check("C1", "cookie", 35.1, 401)
    # Log out everywhere at 40: every earlier token on version/denylist/allowlist, every cookie.
    op("logout_all", 40.0, 40.2, 204, method="POST", cred="T1", session="s1")
    planted.add(check("T1", "version", 41.3, 200))
    planted.add(check("C1", "cookie", 42.0, 200))
    check("T1", "version", 41.1, 200)                  # sent 0.9 s after: within the bound
    check("T1", "stateless", 45.0, 200)
    login("T2", "s4", 50)                              # logged in after: not revoked
    check("T2", "version", 51.0, 200)
    # User 2: a password change by T5 at 60: T6 and C5 revoked; T5's old token only by version.
    login("T5", "s5", 55, user="u2")
    login("T6", "s6", 55.1, user="u2")
    login("C5", "s7", 55.2, kind="cookie", user="u2")
    op("password_change", 60.0, 60.3, 200, method="POST", cred="T5", session="s5", user="u2", new_cred="T5'",
       new_session="s5")
    check("T5", "allowlist", 62.0, 200, user="u2")     # the actor's session lives on
    check("T5", "denylist", 62.0, 200, user="u2")
    planted.add(check("T5", "version", 62.0, 200, user="u2"))
    planted.add(check("T6", "allowlist", 62.0, 200, user="u2"))
    planted.add(check("C5", "cookie", 62.0, 200, user="u2"))
    check("T5'", "version", 62.0, 200, user="u2")      # the new token
    live_refused = {check("T5'", "allowlist", 63.0, 401, user="u2")}
    stateless_refused = {check("T6", "stateless", 63.0, 401, user="u2")}
    # Errors: a 500 from the app, an nginx 502 on a POST in flight at a kill, and one on a GET.
    faults = [{"kind": "kill", "label": FAULT_LABELS["kill"], "target": "i1", "start": 70.0, "dead": 70.1, "end": 72.0}]
    unexpected = {op("check", 69.0, 69.1, 500, cred="T2", strategy="version")}
    indeterminate = {op("logout", 69.9, 70.2, 502, method="POST", cred="T2", session="s4", by_nginx=True)}
    # Sent just after the signal, while the dying process still accepted connections.
    indeterminate.add(op("logout", 70.08, 70.2, 502, method="POST", cred="T2", session="s4", by_nginx=True))
    unexpected.add(op("check", 69.95, 70.3, 502, cred="T2", strategy="allowlist", by_nginx=True))
    unexpected.add(op("logout", 75.0, 75.1, 502, method="POST", cred="T2", session="s4", by_nginx=True))
    # A run of 503s on `denylist`: 80.0 to 81.5, then a 200.
    # Counted on credentials nothing revoked (T2's log-outs above may have happened).
    login("T3", "s8", 79.0)
    check("T2", "denylist", 80.5, 503)
    check("T3", "denylist", 80.0, 503)
    check("T3", "denylist", 81.0, 503)
    check("T3", "denylist", 81.49, 503)
    check("T3", "denylist", 82.0, 200)

    result = check_history(ops, faults, bound, workload_end=100.0)
    found = {f["op"]["id"] for f in result["findings"]["violations"]}
    failures = []

    def expect(name, actual, wanted):
        if actual != wanted:
            failures.append(f"{name}: found {sorted(actual)}, planted {sorted(wanted)}")

    expect("violations", found, planted)
    expect("unexpected 5xx", {f["op"]["id"] for f in result["findings"]["unexpected_5xx"]}, unexpected)
    expect("indeterminate", {f["op"]["id"] for f in result["findings"]["indeterminate"]}, indeterminate)
    expect("live refused", {f["op"]["id"] for f in result["findings"]["live_refused"]}, live_refused)
    expect("stateless refused", {f["op"]["id"] for f in result["findings"]["stateless_refused"]}, stateless_refused)
    longest = result["stretches"]["overall"]["denylist"]["longest"]
    if abs(longest - 1.5) > 1e-6 or result["stretches"]["overall"]["denylist"]["count"] != 4:
        failures.append(f"503 stretch: {result['stretches']['overall']['denylist']}, wanted 4 / 1.50 s")
    recovered = result["recovery"][0]["times"]["check denylist"]
    if not isinstance(recovered, float) or abs(recovered - (82.01 - 72.0)) > 1e-6:
        failures.append(f"recovery of check denylist after the kill: {recovered}, wanted 10.01")
    # The same history with the form log-out overlapped by a fault: that revocation no longer counts.
    overlapped = faults + [{"kind": "redis_down", "label": "", "target": "redis", "start": 19.0, "end": 19.92}]
    again = check_history(ops, overlapped, bound, workload_end=100.0)
    expect("violations with the form log-out inside a fault",
           {f["op"]["id"] for f in again["findings"]["violations"]}, planted - {after_form_logout})
    # Without the planted violations the history is clean.
    clean = [o for o in ops if o["id"] not in planted | unexpected | stateless_refused]
    result = check_history(clean, faults, bound, workload_end=100.0)
    if result["table"]["overall"]["violations"] or result["table"]["overall"]["unexpected_5xx"]:
        failures.append(f"clean history: {result['table']['overall']}")
    if failures:
        print("self-test FAILED:\n  " + "\n  ".join(failures))
        return EXIT_FAILED
    print(f"self-test passed: {len(planted)} planted violations found and nothing else; 5xx, indeterminate, "
          "live and stateless refusals, 503 runs and recovery classified as planted; a clean history is clean.")
    return EXIT_OK


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("redis", "postgres"), default="redis",
                        help="PostgreSQL + Redis (default) or PostgreSQL alone")
    parser.add_argument("--short", action="store_true", help="the CI variant: about 2 minutes of load, under 4 in all")
    parser.add_argument("--duration", type=float, help="seconds of load (default 600, or 130 with --short)")
    parser.add_argument("--threads", type=int, default=6, help="client threads preparing users: registering, logging in (default 6)")
    parser.add_argument("--rate", type=float, help="checks per second, whatever the answers take (default 250, or 200 "
                        "with --short, which leaves room on 2 cores for a debug build)")
    parser.add_argument("--revocations", type=float, default=2.0,
                        help="revocation events per second, whatever the answers take (default 2)")
    parser.add_argument("--workers", type=int, default=240,
                        help="threads sending those checks: enough that a paused instance holding its share does not stop the rest")
    parser.add_argument("--gap", type=float, help="quiet seconds after each fault (default 4, or 3 with --short)")
    parser.add_argument("--binary", default=os.path.join(REPO, "target", "debug", "revocable"),
                        help="the revocable binary (default: target/debug/revocable of this checkout); a copy is run")
    parser.add_argument("--nginx", help="the nginx executable (default: found on PATH or /usr/sbin/nginx)")
    parser.add_argument("--nginx-conf", default=os.path.join(REPO, "deploy", "nginx.conf"))
    parser.add_argument("--staleness", default="1s", help="REVOCATION_MAX_STALENESS given to the instances and "
                        "held by the checker (default 1s)")
    parser.add_argument("--instance-env", action="append", default=[], metavar="NAME=VALUE",
                        help="another setting for the instances (repeatable), e.g. REVOCATION_MAX_STALENESS=10s to "
                        "see the checker catch instances that answer from memory past the bound it holds")
    parser.add_argument("--create-database", action="store_true",
                        help="create the database before the instances start (by default they create it, racing)")
    parser.add_argument("--final-reads", type=int, help="revoked (credential, strategy) pairs re-checked at the end")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="OUT", help="write the whole history and the summary to OUT")
    parser.add_argument("--self-test", action="store_true", help="test the checker on planted histories and exit")
    parser.add_argument("--proxy-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.proxy_server:
        return proxy_server(args.proxy_server)
    if args.self_test:
        return self_test()
    args.duration = args.duration or (130.0 if args.short else 600.0)
    args.gap = args.gap if args.gap is not None else (3.0 if args.short else 4.0)
    args.rate = args.rate or (200.0 if args.short else 250.0)
    args.final_reads = args.final_reads if args.final_reads is not None else (150 if args.short else 600)
    parse_duration(args.staleness)

    # Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, so the `finally` that
    # kills every child runs in every case. A hard limit stops a run that hangs.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # SIGINT too: a shell without job control starts background commands with it ignored.
        signal.signal(signum, interrupt)
    limit = args.duration + 180
    watchdog = threading.Timer(limit, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    try:
        return run_suite(args)
    except CannotRun as error:
        print("\n" + "=" * 78 + "\nCANNOT RUN THE FAULT SUITE:\n" + str(error) + "\n" + "=" * 78, file=sys.stderr)
        return EXIT_CANNOT_RUN
    except Failed as error:
        print(f"\nFAIL: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as error:
        print(f"\ninterrupted ({error or 'Ctrl-C'}): every process the suite started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        watchdog.cancel()


if __name__ == "__main__":
    sys.exit(main())
