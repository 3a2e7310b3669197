"""The processes a benchmark run starts: Liveblog's daphne, the two reference servers (bare
`websockets`, and Socket.IO on Node) and the load generator. Each is a context manager that
always stops its process (and the process's children) on the way out, error or Ctrl-C included.
They run in sessions of their own, so a Ctrl-C in the terminal reaches only the benchmark, which
then stops them in order."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import zip_longest
from pathlib import Path
from typing import Any, TextIO

from devstack.common import REPO, OnLoopback, memory_kib
from devstack.daphne import DaphneServer, Site

from . import profile

# `python -m bench --profile DIR`: where py-spy's recordings go, and the row they are named after.
PROFILE_DIRECTORY = "BENCH_PROFILE_DIR"
PROFILE_ROW = "BENCH_PROFILE_ROW"

# The listen backlog `make run` gives daphne (Twisted's default of 50 drops a reconnect storm).
LISTEN_BACKLOG = 1024
ISSUE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


class BenchError(RuntimeError):
    """A process did not start or answer as expected."""


def stop_process_group(process: subprocess.Popen, *, timeout: float = 10) -> None:
    """SIGTERM the process's group (it leads its own session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_line(stream: TextIO, *, timeout: float, what: str) -> str:
    """The next line of a child's stdout, or BenchError after `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise BenchError(f"no answer within {timeout:.0f}s from {what}")
    line = stream.readline()
    if not line:
        raise BenchError(f"{what} exited without answering")
    return line.rstrip("\n")


def log_issues(path: Path, *, sample: int = 8) -> dict[str, Any]:
    """Count the warning/error lines of a server log; keep the first few."""
    if not path.exists():
        return {"lines": 0, "issues": 0, "sample": []}
    lines = path.read_text(errors="replace").splitlines()
    issues = [line for line in lines if ISSUE.search(line)]
    return {"log": str(path), "lines": len(lines), "issues": len(issues),
            "sample": issues[:sample]}


def logs_issues(paths: list[Path], *, sample: int = 8) -> dict[str, Any]:
    """log_issues over several server logs: the counts added up, the first few of each log."""
    each = [log_issues(path, sample=sample) for path in paths]
    return {"logs": [item.get("log", str(path)) for item, path in zip(each, paths, strict=True)],
            "lines": sum(item["lines"] for item in each),
            "issues": sum(item["issues"] for item in each),
            "sample": [line for lines in zip_longest(*(item["sample"] for item in each))
                       for line in lines if line is not None][:sample]}


# --- What /proc says about a server process ---------------------------------------------------


def rss_kb(pid: int) -> int:
    """The process's resident set size (VmRSS), in KiB."""
    return memory_kib(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system, all threads) the process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def open_files(pid: int) -> int:
    """How many file descriptors the process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def nofile_limit(pid: int) -> int:
    """The process's soft open-file limit."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise BenchError(f"no open-file limit in /proc/{pid}/limits")


def listen_drops() -> dict[str, int]:
    """The kernel's count (all sockets) of connections a full accept queue turned away."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=True))
            return {key: table.get(key, 0) for key in ("ListenOverflows", "ListenDrops")}
    return {"ListenOverflows": 0, "ListenDrops": 0}


class QuietDaphne(DaphneServer):
    """devstack's DaphneServer, started with `-v 0` (warnings and errors only, no access
    log: an INFO line per websocket connect would slow the server under test), through
    bench.launch_daphne (daphne's own CLI, plus a log line per full garbage collection and a
    database query counter behind a loopback side channel, see `queries`), in a session of its
    own. With `--profile` (PROFILE_DIRECTORY in the environment) it is recorded by py-spy in
    the measured window of its row (bench/profile.py)."""

    @property
    def probe_file(self) -> Path:
        return self.site.directory / f"probe-{self.port}.port"

    def start(self, timeout: float = 30) -> QuietDaphne:
        self.probe_file.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                # As `make run` serves it: a listen backlog that holds a reconnect storm.
                [sys.executable, "-m", "bench.launch_daphne", "-v", "0", "-e",
                 f"tcp:port={self.port}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}",
                 "project.asgi:application"],
                cwd=REPO, env=self.site.process_env(BENCH_PROBE_FILE=str(self.probe_file),
                                                    **self.extra_env),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise BenchError(f"daphne on port {self.port} did not start:\n{self.log()}")
            time.sleep(0.1)
        if directory := os.environ.get(PROFILE_DIRECTORY):
            row = os.environ.get(PROFILE_ROW, "row")
            profile.servers[self.pid] = Path(directory) / f"{row}-{self.port}.raw"
        return self

    def queries(self) -> dict[str, Any]:
        """The server's database query count so far: {"queries", "connections", "statements"}."""
        port = int(self.probe_file.read_text())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
            data = b""
            while chunk := probe.recv(65536):
                data += chunk
        return json.loads(data)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            profile.servers.pop(self.pid, None)
            stop_process_group(self.process)


@contextmanager
def liveblog_server(site: Site, **env: str) -> Iterator[QuietDaphne]:
    server = QuietDaphne(site, **env)
    try:
        yield server.start()
    finally:
        server.stop()


class ReferenceServer(OnLoopback):
    """bench.reference in a process of its own, on a free loopback port."""

    def __init__(self, log_path: Path, *, replay_events: int = 0, frame_bytes: int = 800) -> None:
        self.log_path = log_path
        self.arguments = ["--replay-events", str(replay_events), "--frame-bytes", str(frame_bytes)]
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 30) -> ReferenceServer:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.reference", *self.arguments],
                cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
            )
        line = read_line(self.process.stdout, timeout=timeout, what="the reference server")
        if not line.startswith("listening "):
            raise BenchError(f"the reference server said {line!r}")
        self.port = int(line.split()[1])
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            profile.servers.pop(self.pid, None)
            stop_process_group(self.process)


@contextmanager
def reference_server(log_path: Path, **options: int) -> Iterator[ReferenceServer]:
    server = ReferenceServer(log_path, **options)
    try:
        yield server.start()
    finally:
        server.stop()


SOCKETIO_DIR = REPO / "bench" / "socketio"


def socketio_missing() -> str | None:
    """Why the Socket.IO server cannot start here (no node, or its packages not installed), or
    None when it can."""
    if shutil.which("node") is None:
        return "node is missing: the Socket.IO reference needs Node.js 20 (/usr/bin/node)"
    if not (SOCKETIO_DIR / "node_modules" / "socket.io").is_dir():
        return ("bench/socketio/node_modules is missing: `make bench` installs it "
                "(cd bench/socketio && npm ci)")
    return None


class SocketIOServer(ReferenceServer):
    """bench/socketio/server.js (Socket.IO 4.8 with connection state recovery) in a Node process
    of its own, on a free loopback port; readers at ws_url/socket.io/, the control socket at
    ws_url/control, as the bare reference's."""

    def __init__(self, log_path: Path) -> None:
        super().__init__(log_path)
        self.arguments = ["--backlog", str(LISTEN_BACKLOG)]

    def start(self, timeout: float = 30) -> SocketIOServer:
        if missing := socketio_missing():
            raise BenchError(missing)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [shutil.which("node"), str(SOCKETIO_DIR / "server.js"), *self.arguments],
                cwd=SOCKETIO_DIR, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True,
            )
        line = read_line(self.process.stdout, timeout=timeout, what="the Socket.IO server")
        if not line.startswith("listening "):
            raise BenchError(f"the Socket.IO server said {line!r}")
        self.port = int(line.split()[1])
        return self

    @property
    def readers_url(self) -> str:
        """The loadgen's URL for `--transport socketio` (it adds Engine.IO's query)."""
        return f"{self.ws_url}/socket.io/"


@contextmanager
def socketio_server(log_path: Path) -> Iterator[SocketIOServer]:
    server = SocketIOServer(log_path)
    try:
        yield server.start()
    finally:
        server.stop()


class LoadGen:
    """A running `python -m bench.loadgen`: wait for `ready`, then `finish` and read results."""

    def __init__(self, process: subprocess.Popen, out: Path) -> None:
        self.process = process
        self.out = out

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        line = read_line(self.process.stdout, timeout=timeout, what="the load generator")
        if not line.startswith("ready "):
            raise BenchError(f"the load generator said {line!r}")
        return json.loads(line.removeprefix("ready "))

    def storm(self, url: str, *, timeout: float) -> dict[str, Any]:
        """Every reader drops its socket at once and reconnects to `url`; returns when all are
        live again (or gave up), with the storm's numbers."""
        self.process.stdin.write(f"storm {url}\n")
        self.process.stdin.flush()
        line = read_line(self.process.stdout, timeout=timeout, what="the load generator's storm")
        if not line.startswith("stormed "):
            raise BenchError(f"the load generator said {line!r}")
        return json.loads(line.removeprefix("stormed "))

    def wait_for(self, events: int, *, timeout: float) -> dict[str, int]:
        """Wait until every live reader has `events` events (at most `timeout` s); how many
        readers there are and how many have them: {"readers", "complete"}."""
        self.process.stdin.write(f"wait {events} {timeout}\n")
        self.process.stdin.flush()
        line = read_line(self.process.stdout, timeout=timeout + 30, what="the load generator")
        if not line.startswith("arrived "):
            raise BenchError(f"the load generator said {line!r}")
        return json.loads(line.removeprefix("arrived "))

    def finish(self, *, events: int, timeout: float) -> dict[str, Any]:
        """Wait until every reader has `events` events (at most `timeout` s); the results."""
        self.process.stdin.write(f"finish {events} {timeout}\n")
        self.process.stdin.flush()
        code = self.process.wait(timeout=timeout + 60)
        if code != 0:
            raise BenchError(f"the load generator exited with {code}")
        return json.loads(self.out.read_text())


@contextmanager
def loadgen(url: str, *, origin: str | None, readers: int, procs: int, out: Path,
            extra: tuple[str, ...] = ()) -> Iterator[LoadGen]:
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--readers", str(readers),
               "--procs", str(procs), "--out", str(out), *extra]
    if origin:
        command += ["--origin", origin]
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        yield LoadGen(process, out)
    finally:
        stop_process_group(process)
