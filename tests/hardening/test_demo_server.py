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


def _call(base: str, token: str, path: str, body: dict) -> tuple[int, dict]:
    import json

    request = urllib.request.Request(base + path, method="POST", data=json.dumps(body).encode(),  # noqa: S310
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_demo_server_tells_a_local_webhook_receiver_of_a_withdrawal_within_30_seconds(tmp_path):
    """Issue 17, done when: after `make run`, a webhook registered to a local receiver gets a signed
    ``consent.withdrawn`` event within 30 s of a withdrawal through the API. The server runs exactly as `make run`
    starts it (its environment read from the Makefile), on a demo database built by the demo's own commands."""
    import json

    from standardwebhooks import Webhook

    from tests.webhooks.receiver import Receiver

    port = _free_port()
    assignments, command = _runserver_command(port)
    env = {k: v for k, v in os.environ.items()
           if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "CELERY_BROKER_URL", "CACHE_URL"}}
    env.update({"PYTHONPATH": str(ROOT), "ENV_FILE": "", "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3",
                "VAR_DIR": str(tmp_path / "var"), "DEBUG": "false"})
    manage = [sys.executable, "manage.py"]
    for argv in (["migrate", "--noinput"], ["demo_seed", "--customers", "60"]):
        subprocess.run([*manage, *argv], cwd=ROOT, env=env, check=True, capture_output=True,  # noqa: S603
                       timeout=600)
    banner = subprocess.run([*manage, "demo_credentials", "--port", str(port)], cwd=ROOT, env=env,  # noqa: S603
                            check=True, capture_output=True, text=True, timeout=120).stdout
    token = re.search(r"API token\s+(\S+)", banner).group(1)
    customer = re.search(r"/api/v1/customers/([0-9a-f-]{36})/consents", banner).group(1)
    env.update(assignments)
    receiver = Receiver()
    receiver.start()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                              start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if _get(f"{base}/health/live")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        status, subscription = _call(base, token, "/api/v1/webhooks", {
            "url": f"http://127.0.0.1:{receiver.port}/hook", "events": ["consent.withdrawn"],
            "purpose": "automated_scoring"})
        assert status == 201, subscription
        status, body = _call(base, token, "/api/v1/consents/withdraw", {
            "customer": customer, "purpose": "automated_scoring", "source": "web", "channel": "web"})
        assert status == 201, body
        withdrawn = time.time()
        while time.time() < withdrawn + 30 and not receiver.requests:
            time.sleep(0.1)
        assert len(receiver.requests) == 1, (tmp_path / "server.log").read_text()[-3000:]
        request = receiver.requests[0]
        headers = {k.lower(): v for k, v in request["headers"].items()}
        payload = Webhook(subscription["secret"]).verify(request["body"], {
            name: headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")})
        assert payload["type"] == "consent.withdrawn"
        assert payload["data"] == {"customer": customer, "kind": "withdrawn", "purpose": "automated_scoring"}
        assert json.loads(request["body"])["id"] == headers["webhook-id"]
    finally:
        server.terminate()
        server.wait(timeout=20)
        receiver.stop()
        log.close()
