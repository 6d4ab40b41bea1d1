"""HTTP and SQL access of the resilience suite: the API over real HTTP, the console with a real sign-in, and
plain SQL (a fresh connection per query, so that a stopped and restarted server is no problem)."""

from __future__ import annotations

import re
import threading
from typing import Any

import requests

from tests.resilience.servers import Stack

SCOPES = ["ingest:write", "consent:read", "consent:write", "score:read", "outcome:write", "route:read", "dsr:read",
          "dsr:write", "actions:read", "actions:write", "kpis:read", "webhooks:admin"]
PURPOSES = ["automated_scoring", "service_prioritization", "marketing"]
TIMEOUT_S = 90.0  # a request that takes longer counts as a hang (gunicorn's own timeout is 60 s)


DPO_USER = ("from django.contrib.auth.models import Group, User\n"
            "u = User.objects.create_user(username='dpo', password='resilience-dpo-pw-1')\n"
            "u.groups.add(Group.objects.get_or_create(name='dpo')[0])\n")


def api_token(stack: Stack, name: str, *, before: str = "") -> str:
    """An API client made by the product's ``create_api_client`` command (after the code ``before``, in the same
    process); returns its token."""
    code = (f"{before}\nimport io\nfrom django.core.management import call_command\nout = io.StringIO()\n"
            f"call_command('create_api_client', {name!r}, '--scopes', *{SCOPES!r}, '--purposes', *{PURPOSES!r}, "
            "stdout=out)\nprint(out.getvalue())\n")
    out = stack.shell(code)
    return out.strip().splitlines()[-1].strip()


class Api:
    """The REST API over HTTP, one ``requests`` session per thread."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
            s.headers["Authorization"] = f"Bearer {self.token}"
            s.headers["X-Forwarded-Proto"] = "https"
        return s

    def get(self, path: str, timeout: float = TIMEOUT_S, **kw: Any) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=timeout, **kw)

    def post(self, path: str, body: Any, timeout: float = TIMEOUT_S, headers: dict | None = None,
             **kw: Any) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=timeout, headers=headers or {}, **kw)

    def score(self, pseudonym: str, purpose: str = "automated_scoring", timeout: float = TIMEOUT_S
              ) -> requests.Response:
        return self.get(f"/api/v1/customers/{pseudonym}/score?purpose={purpose}", timeout=timeout)


class Console:
    """The DPO console over HTTP as a browser uses it: sign-in form, CSRF token, session cookie. The suite talks
    plain http to gunicorn and says ``X-Forwarded-Proto: https`` as the TLS proxy in front of it would; the
    cookies are secure-only, so they are sent by hand."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self.session = requests.Session()

    def _headers(self, path: str) -> dict[str, str]:
        return {"X-Forwarded-Proto": "https", "Host": "127.0.0.1",
                "Referer": f"https://127.0.0.1{path}", "Origin": "https://127.0.0.1",
                "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, response: requests.Response) -> None:
        for cookie in response.cookies:
            if cookie.value:
                self.cookies[cookie.name] = cookie.value

    def get(self, path: str) -> requests.Response:
        r = self.session.get(self.base_url + path, headers=self._headers(path), allow_redirects=False,
                             timeout=TIMEOUT_S)
        self._keep(r)
        return r

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        page = self.get(path if path.endswith("/login/") else "/console/")
        token = self.cookies.get("csrftoken", "")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        form = {"csrfmiddlewaretoken": match.group(1) if match else token, **data}
        r = self.session.post(self.base_url + path, data=form, headers=self._headers(path), allow_redirects=False,
                              timeout=TIMEOUT_S)
        self._keep(r)
        return r

    def login(self, username: str = "dpo", password: str = "resilience-dpo-pw-1") -> None:
        r = self.post("/console/login/", {"username": username, "password": password})
        assert r.status_code == 302, (r.status_code, r.text[:500])
        assert "sessionid" in self.cookies


class Db:
    """Plain SQL against one database of the suite's cluster; a new connection per call."""

    def __init__(self, stack: Stack, name: str | None = None) -> None:
        self.stack = stack
        self.name = name or stack.db

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        with self.stack.pg.connect(self.name) as conn:
            return list(conn.execute(sql, params).fetchall())

    def value(self, sql: str, params: Any = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Any = None) -> None:
        with self.stack.pg.connect(self.name) as conn:
            conn.execute(sql, params)
