"""The Liveblog site as real server processes: a migrated database with a blog and its author
(`Site`), daphne on a free loopback port (`DaphneServer`), and a small HTTP client that signs in
like a browser (session + CSRF)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .common import BIN, REPO, OnLoopback, free_port, wait_until

TEST_SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdef"


def feed_url(ws_base: str, slug: str, **query: object) -> str:
    """`ws://host:port/ws/liveblog/<slug>/?since=…&epoch=…` (query items left out when None)."""
    params = {key: value for key, value in query.items() if value is not None}
    query_string = f"?{urllib.parse.urlencode(params)}" if params else ""
    return f"{ws_base}/ws/liveblog/{slug}/{query_string}"


@dataclass
class Site:
    """A database prepared for server processes: migrated, with a blog and its author."""

    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    username: str = "reporter"
    password: str = "correct-horse-battery"
    slug: str = "match"
    # A loopback port kept for a proxy in front of the site (FlakyProxy, NginxServer):
    # the browsers behind it send its origin, which the site trusts the way a deployment lists
    # its public origin in CSRF_TRUSTED_ORIGINS (the websocket origin check needs the port).
    front_port: int = 0

    @property
    def front_url(self) -> str:
        return f"http://127.0.0.1:{self.front_port}"

    @classmethod
    def create(cls, directory: Path, **env: str) -> Site:
        site = cls(directory=directory, front_port=free_port())
        site.env = {
            "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
            "MEDIA_ROOT": str(directory / "media"),
            "SECRET_KEY": TEST_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": site.front_url,
            "DEBUG": "0",
            # Plain http on loopback: no HTTPS redirect, no Secure-only cookies.
            "LIVEBLOG_PLAIN_HTTP": "1",
            "LIVEBLOG_HEARTBEAT_SECONDS": "15",
            # Tests and benchmarks post far faster than any author: the write throttle stays on,
            # out of their way (tests/test_throttle.py proves it; pass your own to test it here).
            "LIVEBLOG_THROTTLE_WRITES": "1000000/60",
            **env,
        }
        site.manage("migrate", "--noinput", "-v0")
        site.manage(
            "liveblog_demo", "--username", site.username, "--password", site.password,
            "--slug", site.slug, "--title", "Cup final",
        )
        return site

    def process_env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LIVEBLOG_")}
        env.pop("REDIS_URL", None)
        return {**env, **self.env, **extra}

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO, env=self.process_env(), capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout


class DaphneServer(OnLoopback):
    """One daphne process serving the project; kill it, start it again on the same port."""

    def __init__(self, site: Site, *, port: int | None = None, **env: str) -> None:
        self.site = site
        self.port = port or free_port()
        self.extra_env = env
        self.process: subprocess.Popen | None = None
        self.log_path = site.directory / f"daphne-{self.port}.log"

    def start(self, timeout: float = 30) -> DaphneServer:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            # The backlog `make run` uses: a thousand readers reconnecting at once fit.
            [str(BIN / "python"), "-m", "project.serve",
             "-e", f"tcp:port={self.port}:interface=127.0.0.1:backlog=1024",
             "project.asgi:application"],
            cwd=REPO, env=self.site.process_env(**self.extra_env),
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._ready, timeout=timeout, message=f"daphne on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"daphne exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/offline/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no goodbye to any client, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def daphne_processes(site: Site, count: int = 2, **env: str) -> Iterator[list[DaphneServer]]:
    """`count` daphne processes serving `site`, stopped afterwards (scale-out on one machine)."""
    servers = [DaphneServer(site, **env) for _ in range(count)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


class ApiClient:
    """Speaks to the JSON API as a signed-in browser would (session cookie + CSRF header)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _cookie(self, name: str) -> str | None:
        return next((cookie.value for cookie in self.cookies if cookie.name == name), None)

    def login(self, username: str, password: str) -> ApiClient:
        self.opener.open(f"{self.base_url}/accounts/login/", timeout=10).read()
        form = urllib.parse.urlencode({
            "username": username, "password": password,
            "csrfmiddlewaretoken": self._cookie("csrftoken"),
        }).encode()
        self.opener.open(f"{self.base_url}/accounts/login/", data=form, timeout=10).read()
        if not self._cookie("sessionid"):
            raise AssertionError(f"could not sign in as {username}")
        return self

    def request(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict]:
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=body, method=method)
        request.add_header("Content-Type", "application/json")
        if token := self._cookie("csrftoken"):
            request.add_header("X-CSRFToken", token)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def post_photo(self, slug: str, photo: bytes, alt: str, body: str = "") -> dict:
        """A photo post, sent as the author console sends it (multipart/form-data)."""
        boundary = uuid.uuid4().hex
        fields = {"client_id": str(uuid.uuid4()), "body": body, "photo_alt": alt}
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            .encode() for name, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="photo.jpg"'
            f"\r\nContent-Type: image/jpeg\r\n\r\n".encode() + photo + b"\r\n"
        )
        request = urllib.request.Request(
            f"{self.base_url}/api/liveblog/{slug}/posts",
            data=b"".join(parts) + f"--{boundary}--\r\n".encode(), method="POST",
        )
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        request.add_header("X-CSRFToken", self._cookie("csrftoken") or "")
        with self.opener.open(request, timeout=60) as response:
            return json.loads(response.read())

    def post(self, slug: str, body: str, **fields) -> dict:
        status, answer = self.request("POST", f"/api/liveblog/{slug}/posts", {
            "client_id": str(fields.pop("client_id", uuid.uuid4())), "body": body, **fields,
        })
        if status not in (200, 201):
            raise AssertionError(f"post failed: {status} {answer}")
        return answer
