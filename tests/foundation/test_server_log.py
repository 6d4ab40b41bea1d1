"""The log of a real server, as an operator reads it: one JSON record per line, and no personal data in any URL.

The demo's own commands run first (migrate, demo data, credentials), then ``runserver`` serves identifier lookups
through the API (the POST forms, and the old GET forms a careless client might still send, which answer 405), the
self-service flow (a request, the e-mailed code, the status, "why" and export pages), and a path with raw escape
bytes. Every line the commands and the server wrote to the log (stderr) must parse as JSON; the request lines'
URLs, and the whole log, must hold no e-mail address and no phone number (issue 19's done-when, issue 20
finding 5); no kombu "No hostname" warning, no unfilled ``%(...)s`` template and no progress bar appears.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "log.scan.person@example.com"
PHONE = "+447700900123"
EMAIL_PATTERN = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# E.164 or a national number of 9+ digits, possibly grouped; also percent-encoded plus signs.
PHONE_PATTERN = re.compile(r"(\+|%2[bB])\d[\d\s().-]{7,}\d|\b0\d{9,}\b|7700900123")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    keys = subprocess.run([sys.executable, "-m", "config.keygen"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "CACHE_", "DATABASE_"))}
    env.update(line.split("=", 1) for line in keys.splitlines() if "=" in line and not line.startswith("#"))
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.base", "ENV_FILE": "", "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "VAR_DIR": str(tmp_path / "var"),
        # four slashes: django-environ reads "filemail:///x" as the relative path "x"
        "EMAIL_URL": f"filemail:///{tmp_path / 'mail'}", "PYTHONPATH": str(ROOT), "SCORING_INPROCESS_SCHEDULER": "false",
        "WEBHOOK_EMBEDDED_INTERVAL_SECONDS": "0",
    })
    return env


def _run(args: list[str], env: dict[str, str], log: list[str]) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    log.extend(done.stderr.splitlines())
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return done.stdout


class _Browser:
    """A cookie-keeping HTTP client that speaks to the server like a browser (CSRF token from the form)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, method: str, path: str, *, form: dict[str, str] | None = None, body: Any = None,
             token: str = "", language: str = "pl") -> tuple[int, str, str]:
        headers = {"Accept-Language": language}
        data = None
        if form is not None:
            csrf = next((c.value for c in self.jar if c.name == "csrftoken"), "")
            data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": csrf}).encode()
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "Referer": self.base + path})
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.geturl(), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode("utf-8", "replace")


def _code(mail_dir: Path) -> str:
    for _ in range(50):
        texts = [p.read_text(encoding="utf-8") for p in sorted(mail_dir.glob("*"))] if mail_dir.exists() else []
        found = [m.group(1) for t in texts if (m := re.search(r"\b(\d{8})\b", t))]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError("no one-time code e-mail")


def test_the_demo_and_server_log_is_json_lines_with_no_email_or_phone_in_any_url(tmp_path: Path) -> None:
    env = _env(tmp_path)
    log: list[str] = []
    _run(["migrate", "--noinput"], env, log)
    _run(["demo_seed", "--customers", "12", "--seed", "3"], env, log)
    _run(["shell", "-c",
          "from profiles.services import customer_ingest; from consent.services import consent_grant; "
          f"c = customer_ingest(source='crm', external_id='LOG-1', actor='cli', personal={{'email': '{EMAIL}', "
          f"'phone': '{PHONE}', 'name': 'Ada Logscan'}}).customer_id; "
          "consent_grant(customer_id=c, purpose='automated_scoring', source='web', channel='web', actor='cli')"],
         env, log)
    token = _run(["create_api_client", "log-scan", "--scopes", "score:read", "dsr:write", "dsr:read",
                  "--purposes", "automated_scoring"], env, log).strip().splitlines()[-1].strip()
    banner = _run(["demo_credentials", "--port", "8000"], env, log)
    assert "/me/" in banner

    port = _free_port()
    server_log = tmp_path / "server.err"
    with server_log.open("w") as err:
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload",
                                   "--insecure"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        client = _Browser(f"http://127.0.0.1:{port}")
        for _ in range(300):
            try:
                if client.call("GET", "/health/live")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        # API lookups: the POST forms, and the old GET forms with identifiers in the query (405).
        assert client.call("POST", "/api/v1/customers/lookup", body={"email": EMAIL}, token=token)[0] == 200
        assert client.call("POST", "/api/v1/customers/lookup", body={"phone": PHONE}, token=token)[0] == 200
        assert client.call("POST", "/api/v1/score", body={"purpose": "automated_scoring", "email": EMAIL},
                           token=token)[0] in (200, 503)
        query = urllib.parse.urlencode({"email": EMAIL, "phone": PHONE, "purpose": "automated_scoring"})
        assert client.call("GET", f"/api/v1/score?{query}", token=token)[0] == 405
        assert client.call("GET", f"/api/v1/customers/lookup?{query}", token=token)[0] == 405
        assert client.call("POST", "/api/v1/subject-requests", body={"type": "access", "email": EMAIL},
                           token=token)[0] == 201
        # Self-service, as a customer: start, code, status, "why", export page and downloads.
        assert client.call("GET", "/me/")[0] == 200
        status, url, _ = client.call("POST", "/me/", form={"type": "access", "email": EMAIL, "token": "log-scan-1"})
        assert status == 200 and url.endswith("/me/verify/")
        status, url, page = client.call("POST", "/me/verify/", form={"code": _code(tmp_path / "mail")})
        assert status == 200 and "/me/status/" in url, page[:500]
        status_path = urllib.parse.urlsplit(url).path
        assert client.call("GET", status_path + "why/")[0] in (200, 404)
        export = re.search(r'href="(/me/export/[^"]+/page/)"', client.call("GET", status_path)[2])
        if export:
            assert client.call("GET", export.group(1))[0] == 200
            assert client.call("GET", export.group(1).replace("/page/", "/csv/"))[0] == 200
        # A path with raw escape bytes (a terminal colour sequence) and a query with an address.
        client.call("GET", "/me/%1b%5b31mred%7f%c2%9b/?email=" + urllib.parse.quote(EMAIL))
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    raw = server_log.read_bytes()
    log.extend(raw.decode("utf-8").splitlines())

    records = []
    for line in log:
        assert line.strip(), "an empty log line"
        records.append(json.loads(line))  # every line is one JSON record (no progress bars, no plain text)
    assert b"\x1b" not in raw and b"\x7f" not in raw and "\x9b".encode() not in raw  # no raw escape bytes
    requests = [r for r in records if r.get("logger") == "http" and r.get("msg") == "request"]
    paths = [r["path"] for r in requests]
    assert len(requests) >= 12 and any(p.startswith("/me/status/") for p in paths)
    assert "/api/v1/customers/lookup" in paths and "/api/v1/score" in paths
    for path in paths:
        assert not EMAIL_PATTERN.search(path) and not PHONE_PATTERN.search(path), path
    text = "\n".join(log)
    assert not EMAIL_PATTERN.search(text), EMAIL_PATTERN.search(text)
    assert not PHONE_PATTERN.search(text), PHONE_PATTERN.search(text)
    assert "log.scan.person" not in text and "Logscan" not in text
    assert not [r for r in records if "No hostname" in r.get("msg", "")]  # kombu, embedded mode
    assert not [r for r in records if re.search(r"%\(\w+\)", r.get("msg", ""))]  # every template filled
