"""The resilience suite's own servers: a PostgreSQL cluster, a Redis, an SMTP sink, and the product's processes
(gunicorn, Celery worker, Celery beat) with production settings, each on a spare port under one temporary
directory, so that the tests can stop, kill and break them without touching anything else.

Nothing here is a stub: PostgreSQL comes from ``/usr/lib/postgresql/*/bin`` (``initdb``, ``pg_ctl``), Redis is
``redis-server``; the application processes are started exactly as an operator would start them.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
BIN = Path(PYTHON).parent
GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")
WEB_TIMEOUT_S = 60  # gunicorn --timeout: the configured bound on any request (the suite's "hang" threshold)


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ------------------------------------------------------------------------------------------------ PostgreSQL


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class Postgres:
    """A private cluster (``initdb`` into ``root/pgdata``, trust authentication on 127.0.0.1 only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgresql.log"
        self.port = spare_port()
        self.bin = pg_bin()
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else cmd

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)
        subprocess.run(self._cmd("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                 "--no-instructions"), check=True, capture_output=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "track_commit_timestamp = on\nmax_connections = 200\nshared_buffers = 64MB\n"
                "fsync = on\nsynchronous_commit = on\n")
        if self._as_postgres and not self.log.exists():
            self.log.touch()
            shutil.chown(self.log, "postgres")

    def start(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"),
                       check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"),
                       check=False, capture_output=True)

    def running(self) -> bool:
        return subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "status"), capture_output=True).returncode == 0

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db: str, sql: str) -> str:
        out = subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", db, "-v", "ON_ERROR_STOP=1", "-Atqc", sql], check=True, capture_output=True,
                             text=True)
        return out.stdout

    def connect(self, db: str) -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=db, autocommit=True)


# ------------------------------------------------------------------------------------------------------ Redis


class Redis:
    """A private redis-server with an append-only file (a production broker keeps queued tasks over a restart)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "redis.log"
        self.port = spare_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--dbfilename", "dump.rdb", "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--logfile", str(self.log), "--daemonize", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.cli("PING").strip() == "PONG", 20, "redis")

    def cli(self, *args: str) -> str:
        done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True,
                              text=True)
        return done.stdout

    def stop(self) -> None:
        if self.proc is None:
            return
        self.cli("SHUTDOWN")
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def url(self, n: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{n}"


# ------------------------------------------------------------------------------------------------------- SMTP


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self.wfile.write(b"220 sink ESMTP\r\n")
        data: list[bytes] = []
        in_data = False
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if in_data:
                if line in (b".\r\n", b".\n"):
                    in_data = False
                    sink.messages.append(b"".join(data))
                    data = []
                    self.wfile.write(b"250 OK\r\n")
                else:
                    data.append(line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 sink\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


class SmtpSink:
    """A minimal SMTP server that keeps what it receives (a real mail server for production settings)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.port = spare_port()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), _SmtpHandler)
        self.server.daemon_threads = True
        self.server.sink = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------- application processes


@dataclass
class Proc:
    name: str
    cmd: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    handle: Any = None

    def start(self) -> None:
        self.handle = open(self.log, "ab")  # noqa: SIM115 - kept open for the process's lifetime
        self.popen = subprocess.Popen(self.cmd, env=self.env, cwd=str(ROOT), stdout=self.handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill_main(self) -> None:
        """SIGKILL the main process only (its pool children are left to notice on their own)."""
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """Stop the whole process group (the main process, its children and any orphan of a killed main)."""
        if self.popen is None:
            return
        pgid = self.popen.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _group_alive(pgid):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(0.2)
            if not _group_alive(pgid):
                break
        if self.popen.poll() is None:
            self.popen.wait(5)
        self.popen = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # zombies of our own children count as gone
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            stat = (pid_dir / "stat").read_text()
        except OSError:
            continue
        parts = stat.rsplit(")", 1)[1].split()
        if int(parts[2]) == pgid and parts[0] != "Z":
            return True
    return False


def _b64key(n: int = 32) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).decode()


@dataclass
class Stack:
    """Everything one session of the suite runs on."""

    root: Path
    pg: Postgres
    redis: Redis
    smtp: SmtpSink
    db: str = "scoring"
    blank_db: str = "scoring_blank"  # migrated, no data: a template for tests that build their own
    web_port: int = field(default_factory=spare_port)
    procs: dict[str, Proc] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    orphans: list[int] = field(default_factory=list)  # process groups of killed main processes
    token: str = ""

    def app_env(self, db: str | None = None) -> dict[str, str]:
        return {**self.env, "DATABASE_URL": self.pg.url(db or self.db)}

    def configure(self, extra: dict[str, str] | None = None) -> None:
        var = self.root / "var"
        var.mkdir(exist_ok=True)
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        self.env = {
            **keep,
            "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.production", "ENV_FILE": "",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "KEK_KEYS": f"k1:{_b64key()}", "BLIND_INDEX_KEY": _b64key(), "AUDIT_SIGNING_KEY": _b64key(),
            "DATABASE_URL": self.pg.url(self.db),
            "CACHE_URL": self.redis.url(1), "CELERY_BROKER_URL": self.redis.url(0),
            "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp.port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "SITE_URL": "https://privacy.example.test",
            "SECURE_SSL_REDIRECT": "false", "TRUSTED_PROXIES": "127.0.0.1",
            "VAR_DIR": str(var), "STATIC_ROOT": str(var / "static"), "EXPORT_DIR": str(var / "exports"),
            "ERASURE_LEDGER_DIR": str(self.root / "erasure-ledger"),
            "AUDIT_CHECKPOINT_DIR": str(var / "audit-checkpoints"), "MODEL_ARTIFACT_DIR": str(var / "models"),
            "LOG_LEVEL": "INFO", "API_THROTTLE_RATE": "100000/min",
            **(extra or {}),
        }

    def manage(self, *args: str, db: str | None = None, check: bool = True, timeout: float = 1800,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**self.app_env(db), **(extra_env or {})}
        started = time.monotonic()
        done = subprocess.run([PYTHON, "manage.py", *args], env=env, cwd=str(ROOT), capture_output=True, text=True,
                              timeout=timeout)
        with open(self.root / "manage.log", "a") as log:
            log.write(f"$ manage.py {' '.join(args)} -> {done.returncode} in {time.monotonic() - started:.1f} s\n{done.stdout}\n{done.stderr}\n")
        if check and done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")
        return done

    def shell(self, code: str, db: str | None = None, check: bool = True) -> str:
        return self.manage("shell", "-c", code, db=db, check=check).stdout

    # -- processes
    def _proc(self, name: str, cmd: list[str]) -> Proc:
        proc = Proc(name=name, cmd=cmd, env=self.app_env(), log=self.root / "logs" / f"{name}.log")
        proc.log.parent.mkdir(exist_ok=True)
        self.procs[name] = proc
        return proc

    def start_web(self, workers: int = 4, timeout: int = WEB_TIMEOUT_S) -> None:
        proc = self._proc("web", [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{self.web_port}",
                                  "--workers", str(workers), "--timeout", str(timeout), "--graceful-timeout", "5",
                                  "--config", str(GUNICORN_CONF)])
        proc.start()
        wait_for(lambda: port_open(self.web_port), 180, "gunicorn")

    def start_worker(self, concurrency: int = 2, name: str = "worker") -> Proc:
        proc = self._proc(name, [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO",
                                 f"--concurrency={concurrency}", f"--hostname={name}@%h", "--without-gossip",
                                 "--without-mingle"])
        proc.start()
        return proc

    def start_beat(self) -> Proc:
        proc = self._proc("beat", [str(BIN / "celery"), "-A", "config", "beat", "--loglevel=INFO",
                                   "--schedule", str(self.root / "celerybeat-schedule")])
        proc.start()
        return proc

    def kill_main(self, name: str) -> None:
        """SIGKILL a process's main process (not its children) and forget it; its group is reaped at the end."""
        proc = self.procs.pop(name)
        proc.kill_main()
        self.orphans.append(proc.pid)
        if proc.handle is not None:
            proc.handle.close()

    def stop_procs(self, names: Iterable[str] | None = None) -> None:
        for name in list(names or self.procs):
            proc = self.procs.pop(name, None)
            if proc is not None:
                proc.stop()
        if names is None:
            for pgid in self.orphans:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            self.orphans.clear()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def app_log_text(self) -> bytes:
        out = b""
        for path in (self.root / "logs").glob("*.log"):
            out += path.read_bytes()
        manage_log = self.root / "manage.log"
        if manage_log.exists():
            out += manage_log.read_bytes()
        return out
