"""A private PostgreSQL cluster with production-style settings, for the large-scale benchmarks.

The machine's shared server runs Debian's defaults (``shared_buffers = 128MB``, ``max_wal_size = 1GB``): sized
for a laptop, not for a 1M-customer database of ~9 GB. A production deployment of this service sizes its
database server for its working set, so the 1M figures are also measured on a cluster configured the way
README.md ("Production", "PostgreSQL sizing") recommends, derived from the machine's memory:

    python -m bench.pgcluster start [--port 5440]    # initdb on first use, then start; prints DATABASE_URL
    python -m bench.pgcluster settings               # the settings it would use on this machine
    python -m bench.pgcluster stop
    python -m bench.pgcluster destroy                # stop and delete its data directory

then run the harness against it, e.g.
``DATABASE_URL=postgres://postgres@127.0.0.1:5440/m1 python -m bench.run --full --sections 2 ...``.

The cluster lives under ``var/bench/pgcluster-<port>/`` (trust authentication on 127.0.0.1 only, like the
machine's server). Durability is NOT relaxed: ``fsync`` and ``synchronous_commit`` stay on, so a decision and
its audit record are as durable as on any production server. Nothing is downloaded: the server binaries are
the machine's (``/usr/lib/postgresql/*/bin``).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .common import VAR_BENCH

DEFAULT_PORT = 5440


def _bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SystemExit("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def settings(memory: int | None = None, cpus: int | None = None) -> dict[str, str]:
    """The usual production sizing for a dedicated database host, from its memory and cores: a quarter of
    memory for shared buffers (at most 8 GB), three quarters as the planner's cache estimate, WAL sized so a
    night's bulk writes are not forced into checkpoints every minute (each checkpoint makes the next change of
    every page write a full page image), SSD costs. Durability settings are the defaults (on)."""
    mb = (memory or _memory_bytes()) // (1024 * 1024)
    cpus = cpus or os.cpu_count() or 1
    shared = max(128, min(8192, mb // 4))
    return {
        "shared_buffers": f"{shared}MB",
        "effective_cache_size": f"{max(256, mb * 3 // 4)}MB",
        "maintenance_work_mem": f"{max(64, min(2048, mb // 16))}MB",
        "work_mem": f"{max(4, min(64, mb // 512))}MB",
        "wal_buffers": "64MB",
        "max_wal_size": "16GB",
        "min_wal_size": "1GB",
        "checkpoint_timeout": "30min",
        "checkpoint_completion_target": "0.9",
        "wal_compression": "lz4",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "max_worker_processes": str(max(8, cpus)),
        "max_parallel_workers": str(cpus),
        "max_parallel_workers_per_gather": str(max(0, min(2, cpus // 2))),
        "jit": "off",
        "max_connections": "200",
        "fsync": "on",
        "synchronous_commit": "on",
    }


class Cluster:
    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self.port = port
        self.root = VAR_BENCH / f"pgcluster-{port}"
        self.data = self.root / "data"
        self.log = self.root / "postgresql.log"
        self.bin = _bin()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else cmd

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def running(self) -> bool:
        return self.data.exists() and subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "status"),
                                                     capture_output=True).returncode == 0

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            for path in self.root.parents:  # the server's user must be able to reach its data directory
                mode = os.stat(path).st_mode
                if not mode & 0o001:
                    os.chmod(path, mode | 0o001)
            shutil.chown(self.root, "postgres")
        subprocess.run(self._cmd("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                 "--no-instructions"), check=True, capture_output=True)
        lines = [f"port = {self.port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{self.root}'"]
        lines += [f"{key} = '{value}'" for key, value in settings().items()]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# bench.pgcluster (production-style sizing for this machine)\n" + "\n".join(lines) + "\n")
        if self.as_postgres and not self.log.exists():
            self.log.touch()
            shutil.chown(self.log, "postgres")

    def start(self) -> None:
        if not self.data.exists():
            self.init()
        if not self.running():
            subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120",
                                     "start"), check=True)

    def stop(self) -> None:
        if self.running():
            subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "120", "stop"),
                           check=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgcluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "destroy", "settings", "url"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if args.action == "settings":
        for key, value in settings().items():
            print(f"{key} = {value}")
        return 0
    cluster = Cluster(args.port)
    if args.action == "start":
        cluster.start()
        print(cluster.url("<database>"))
    elif args.action == "stop":
        cluster.stop()
    elif args.action == "destroy":
        cluster.destroy()
    else:
        print(cluster.url("<database>"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
