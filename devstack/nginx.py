"""Debian's nginx in front of the daphne processes, configured from the one template the README
shows (deploy/nginx.conf.template).

`render(values)` fills the template's `{{name}}` placeholders. `PRODUCTION` holds the values of
the README's block ("Scale-out and deployment": TLS on 443, www-data, Debian's paths);
`python -m devstack.nginx` prints that rendering (tests/test_nginx.py checks the README's block is
exactly it). `NginxServer` renders the same template with loopback values (a free port on
127.0.0.1, no TLS, the daphne processes' ports, a private prefix with its pid, logs and temp
directories) and runs nginx in the foreground (`daemon off`) until `stop()`. The proxy directives
are the template's own in both: only values differ.

Debian's `nginx` package provides /usr/sbin/nginx. When it is missing, `start()` installs it
(scripts/ensure-debian-packages, as `make test` and `make run-stack` do); if that fails it is a
failure, never a skip. The package's own service is never started (policy-rc.d).
"""

from __future__ import annotations

import getpass
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .common import REPO, OnLoopback, free_port, wait_until

TEMPLATE = REPO / "deploy" / "nginx.conf.template"
NGINX = "/usr/sbin/nginx"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

# The README's configuration: one machine with nginx and two daphne processes behind it.
PRODUCTION: dict[str, str] = {
    "workers": "auto",
    "nofile": "131072",
    "connections": "65536",
    "user": "www-data",
    "pid": "/run/nginx.pid",
    "error_log": "/var/log/nginx/error.log",
    "access_log": "/var/log/nginx/access.log",
    "temp": "/var/lib/nginx",
    "upstreams": "server 127.0.0.1:8001; server 127.0.0.1:8002;",
    "listen": "443 ssl",
    "server_name": "live.example.com",
    "tls": "ssl_certificate /etc/ssl/liveblog.pem; "
           "ssl_certificate_key /etc/ssl/private/liveblog.key;",
    "media_root": "/srv/liveblog/media",
}


def render(values: Mapping[str, str], template: str | None = None) -> str:
    """The template with every placeholder filled; a line that was only an empty placeholder is
    left out. An unknown or missing name is an error."""
    text = TEMPLATE.read_text() if template is None else template
    names = set(PLACEHOLDER.findall(text))
    if missing := names - set(values):
        raise KeyError(f"no value for {', '.join(sorted(missing))}")
    if unused := set(values) - names:
        raise KeyError(f"not in the template: {', '.join(sorted(unused))}")
    lines = []
    for line in text.splitlines():
        filled = PLACEHOLDER.sub(lambda match: values[match.group(1)], line)
        if filled.strip() or not line.strip():
            lines.append(filled)
    return "\n".join(lines) + "\n"


def production() -> str:
    return render(PRODUCTION)


def upstream_connections(port: int) -> int:
    """Established TCP connections to 127.0.0.1:`port` (nginx's to one daphne process: with no
    keepalive to the upstream, one per open websocket or event stream, plus requests under way)."""
    count = 0
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "01":  # local address, ESTABLISHED
            count += 1
    return count


def ensure_installed() -> str:
    binary = shutil.which("nginx") or NGINX
    if Path(binary).exists():
        return binary
    result = subprocess.run([str(REPO / "scripts" / "ensure-debian-packages"), "nginx"],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not Path(NGINX).exists():
        raise AssertionError(
            "nginx is not installed and apt-get could not install it (`make test` installs it: "
            f"apt-get install nginx); tests never skip for a missing server:\n{result.stdout}"
            f"{result.stderr}")
    return NGINX


class NginxServer(OnLoopback):
    """nginx on 127.0.0.1:`port` (free by default), round robin over the daphne processes on
    `upstream_ports`, in a private prefix (a temporary directory, removed by `stop()`, unless
    `directory` is given: then kept, as `make run-stack`'s logs are)."""

    def __init__(self, upstream_ports: list[int], *, port: int | None = None,
                 media_root: Path | None = None, directory: Path | None = None,
                 workers: int | str = "auto") -> None:
        self.upstream_ports = list(upstream_ports)
        self.port = port or free_port()
        self.media_root = media_root
        self.workers = workers
        self.kept_in = directory
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() nginx first"
        return self.process.pid

    @property
    def config_path(self) -> Path:
        assert self.directory is not None, "start() nginx first"
        return self.directory / "nginx.conf"

    @property
    def error_log_path(self) -> Path:
        assert self.directory is not None, "start() nginx first"
        return self.directory / "error.log"

    def values(self) -> dict[str, str]:
        """The loopback rendering's values (the directory must exist)."""
        assert self.directory is not None
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if nofile == resource.RLIM_INFINITY or nofile > 131072:
            nofile = 131072
        media = self.media_root or self.directory / "media"
        return {
            # As root, the workers run as root too: they read the media of a private checkout.
            # (Anyone else: nginx ignores the directive and runs as that user.)
            "user": getpass.getuser(),
            "workers": str(self.workers),
            # Unless the machine's hard limit is higher (only root with CAP_SYS_RESOURCE may go
            # past it), the workers take the hard limit, which the bench raises its own to.
            "nofile": str(nofile),
            "connections": str(nofile),
            "pid": str(self.directory / "nginx.pid"),
            "error_log": f"{self.error_log_path} warn",
            "access_log": "off",
            "temp": str(self.directory / "temp"),
            "upstreams": " ".join(f"server 127.0.0.1:{port};" for port in self.upstream_ports),
            "listen": f"127.0.0.1:{self.port}",
            "server_name": "127.0.0.1 localhost",
            "tls": "",
            "media_root": str(media).rstrip("/"),
        }

    def start(self, timeout: float = 10) -> NginxServer:
        binary = ensure_installed()
        if self.kept_in is not None:
            self.kept_in.mkdir(parents=True, exist_ok=True)
            self.directory = self.kept_in
        else:
            self.directory = Path(tempfile.mkdtemp(prefix="liveblog-nginx-"))
        (self.directory / "temp").mkdir(exist_ok=True)
        self.config_path.write_text(render(self.values()))
        self.error_log_path.unlink(missing_ok=True)
        stderr = open(self.directory / "stderr.log", "wb")
        self.process = subprocess.Popen(
            # -e: the error log before the configuration is read (Debian's default is
            # /var/log/nginx/error.log, which another user cannot open).
            [binary, "-p", str(self.directory), "-c", str(self.config_path),
             "-e", str(self.error_log_path), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=stderr,
            # Its own session: a Ctrl-C in the terminal reaches the caller, which stops it.
            start_new_session=True,
        )
        stderr.close()
        try:
            wait_until(self._ready, timeout=timeout, message=f"nginx on port {self.port}")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"nginx exited with {self.process.returncode}:\n{self.log()}")
        return (self.directory / "nginx.pid").exists() and _accepts(self.port)

    def log(self) -> str:
        """The end of what nginx said: its stderr (before the configuration was read) and its
        error log."""
        text = ""
        for path in (self.directory / "stderr.log", self.error_log_path):
            try:
                text += path.read_text(errors="replace")
            except OSError:
                pass
        return text[-4000:]

    def worker_pids(self) -> list[int]:
        """The master's children: the worker processes."""
        workers = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:  # the parent's pid
                    workers.append(int(entry.name))
        return workers

    def stop(self) -> None:
        """Fast shutdown (SIGTERM: the workers close every connection at once), SIGKILL for the
        group if it hangs; a temporary prefix is removed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.directory is not None and self.kept_in is None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@contextmanager
def nginx_server(upstream_ports: list[int], **options) -> Iterator[NginxServer]:
    server = NginxServer(upstream_ports, **options).start()
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    sys.stdout.write(production())
