"""Low finding: the demo served Django's debug pages. `make run`'s server line (read from the Makefile) runs with
DEBUG off and still serves the console's static files."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _runserver_command(port: int) -> tuple[dict[str, str], list[str]]:
    makefile = (ROOT / "Makefile").read_text()
    run_target = re.search(r"^run:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    [line] = [ln.strip() for ln in run_target.splitlines() if "runserver" in ln]
    words = shlex.split(line.replace("$(PY)", sys.executable).replace("$(PORT)", str(port)))
    assignments = {}
    while "=" in words[0] and not words[0].startswith("/"):
        key, _, value = words.pop(0).partition("=")
        assignments[key] = value
    return assignments, words


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_the_demo_server_shows_no_debug_page_and_serves_static_files(tmp_path):
    port = _free_port()
    assignments, command = _runserver_command(port)
    assert assignments.get("DEBUG") == "false"
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG"}}
    env.update(assignments)
    env.update({"PYTHONPATH": str(ROOT), "ENV_FILE": "", "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3",
                "VAR_DIR": str(tmp_path / "var")})
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                              start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                status, _, _ = _get(f"http://127.0.0.1:{port}/health/live")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError((tmp_path / "server.log").read_text()[-2000:])
        status, body, _ = _get(f"http://127.0.0.1:{port}/no-such-page/")
        assert status == 404
        assert "DEBUG = True" not in body and "Traceback" not in body and "URLconf" not in body
        status, body, headers = _get(f"http://127.0.0.1:{port}/static/console/console.css")
        assert status == 200 and "--accent" in body
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
