"""`make run-stack` as a person tries it: the script starts PostgreSQL, Redis, two daphne processes
and the balancer; a post made through one process reaches readers on both and through the
balancer; Ctrl-C stops every part, and a second start finds the same data."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from devstack.common import REPO, wait_until
from devstack.daphne import ApiClient
from tests.support.live_reader import LiveReader, all_reach

pytestmark = pytest.mark.server


def free_run_of_ports(count: int) -> int:
    """A port such that it and the `count` after it are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count + 1):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no run of free ports")


class RunningStack:
    def __init__(self, state, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run_stack.py", "--port", str(port), "--state", str(state)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> None:
        wait_until(lambda: "Ctrl-C stops everything" in self.output()
                   or self.process.poll() is not None, timeout=120, message="the stack")
        assert self.process.poll() is None, self.output()

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)  # Ctrl-C
        return self.process.wait(timeout=60)


def closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture
def state():
    """The stack's state directory, reachable by the `postgres` user (pytest's tmp_path is in a
    private directory), as var/stack in a checkout is."""
    directory = Path(tempfile.mkdtemp(prefix="liveblog-stack-test-", dir="/tmp"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


async def test_run_stack_serves_one_blog_from_two_processes_and_stops_cleanly(state):
    port = free_run_of_ports(2)
    stack = RunningStack(state, port)
    try:
        await asyncio.to_thread(stack.wait_ready)
        assert "Demo login       demo / liveblog-demo" in stack.output()
        assert f"data in {state / 'postgres'}" in stack.output()
        urls = [f"http://127.0.0.1:{port + offset}" for offset in (0, 1, 2)]
        readers = [LiveReader(url.replace("http", "ws"), "demo", origin=url, name=url).start()
                   for url in urls]
        try:
            await asyncio.gather(*[
                reader.wait_for(lambda r: r.live.is_set(), timeout=20, what="live")
                for reader in readers
            ])
            head = readers[0].seq or 0
            for url in urls[1:]:  # a post through each process
                api = ApiClient(url).login("demo", "liveblog-demo")
                await asyncio.to_thread(api.post, "demo", f"through {url}")
            await all_reach(readers, head + 2, timeout=10)
        finally:
            await asyncio.gather(*[reader.stop() for reader in readers])
        assert stack.interrupt() == 0, stack.output()
        for offset in (0, 1, 2):
            assert closed(port + offset)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()

    # Started again, it finds the cluster it left: the posts are still there.
    again = RunningStack(state, port)
    try:
        await asyncio.to_thread(again.wait_ready)
        reader = LiveReader(f"ws://127.0.0.1:{port}", "demo", origin=urls[0]).start()
        try:
            await reader.wait_for(lambda r: (r.seq or 0) >= head + 2, timeout=20, what="posts")
        finally:
            await reader.stop()
        assert again.interrupt() == 0, again.output()
    finally:
        if again.process.poll() is None:
            again.process.kill()
