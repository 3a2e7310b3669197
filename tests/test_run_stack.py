"""`make run-stack` as a person tries it: the script starts PostgreSQL, Redis, two daphne processes
and nginx in front of them (the README's configuration); a post made through either process or
through nginx reaches readers on both and through nginx; Ctrl-C stops every part, and a second
start finds the same data. It also starts from a
checkout the `postgres` user cannot enter (a clone under /root), whose cluster then lives under
/var/tmp."""

import asyncio
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from devstack.common import REPO, wait_until
from devstack.daphne import ApiClient
from devstack.postgres import PostgresServer, traversable_by_others
from tests.support.live_reader import LiveReader, all_reach

pytestmark = pytest.mark.server

# The /var/tmp fallback and the chown to `postgres` exist only for root; anyone else runs the
# cluster as themselves, in the state directory. CI runs as root, and there these never skip.
as_root = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                             reason="only root's cluster needs a directory `postgres` can reach")


def load_run_stack():
    """scripts/run_stack.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("run_stack", REPO / "scripts" / "run_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_stack = load_run_stack()


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


def assert_stops_on_ctrl_c(stack, port: int) -> None:
    """Ctrl-C stops every part: the script exits 0 and nginx's and both processes' ports close."""
    assert stack.interrupt() == 0, stack.output()
    for offset in (0, 1, 2):
        assert closed(port + offset)


class RunningStack:
    """scripts/run_stack.py in `checkout`, with `--state` unless None (then var/stack in it)."""

    def __init__(self, state: Path | None, port: int, checkout: Path = REPO) -> None:
        self.port = port
        self.lines: list[str] = []
        command = [sys.executable, "scripts/run_stack.py", "--port", str(port)]
        if state is not None:
            command += ["--state", str(state)]
        self.process = subprocess.Popen(
            command, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
        assert f"nginx            http://127.0.0.1:{port}/ -> {port + 1}, {port + 2}" in (
            stack.output())
        config = (state / "nginx" / "nginx.conf").read_text()
        assert "proxy_set_header Upgrade $http_upgrade;" in config
        upstreams = f"server 127.0.0.1:{port + 1}; server 127.0.0.1:{port + 2};"
        assert f"upstream liveblog {{ zone liveblog 64k; {upstreams} }}" in config
        urls = [f"http://127.0.0.1:{port + offset}" for offset in (0, 1, 2)]
        readers = [LiveReader(url.replace("http", "ws"), "demo", origin=url, name=url).start()
                   for url in urls]
        try:
            await asyncio.gather(*[
                reader.wait_for(lambda r: r.live.is_set(), timeout=20, what="live")
                for reader in readers
            ])
            head = readers[0].seq or 0
            for url in urls:  # a post through nginx, then through each process
                api = ApiClient(url).login("demo", "liveblog-demo")
                await asyncio.to_thread(api.post, "demo", f"through {url}")
            await all_reach(readers, head + 3, timeout=10)
        finally:
            await asyncio.gather(*[reader.stop() for reader in readers])
        assert_stops_on_ctrl_c(stack, port)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()

    # Started again, it finds the cluster it left: the posts are still there.
    again = RunningStack(state, port)
    try:
        await asyncio.to_thread(again.wait_ready)
        reader = LiveReader(f"ws://127.0.0.1:{port}", "demo", origin=urls[0]).start()
        try:
            await reader.wait_for(lambda r: (r.seq or 0) >= head + 3, timeout=20, what="posts")
        finally:
            await reader.stop()
        assert again.interrupt() == 0, again.output()
    finally:
        if again.process.poll() is None:
            again.process.kill()


@pytest.fixture
def private_checkout():
    """A copy of this checkout as `git clone` would give it (tracked and new files, as they are in
    the working tree now, so it tests this code) inside a `mktemp -d` folder: mode 0700, which the
    `postgres` user cannot enter, as with any clone under /root. Afterwards the folder and the
    run's /var/tmp fallback are removed."""
    home = Path(tempfile.mkdtemp(prefix="liveblog-private-"))
    checkout = home / "liveblog"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is gone here too
            target = checkout / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    try:
        yield checkout
    finally:
        shutil.rmtree(run_stack.fallback_directory(checkout / "var" / "stack"),
                      ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


async def test_run_stack_starts_from_a_checkout_the_postgres_user_cannot_enter(private_checkout):
    """What `make run-stack` runs, in a clone the `postgres` user cannot traverse, with the default
    state (var/stack in the clone): as root, the cluster goes to a fallback under /var/tmp that
    does not exist yet (the first run used to crash on it with FileNotFoundError). The stack
    starts, a post through nginx reaches a reader through nginx, and Ctrl-C stops every part. It
    runs with this checkout's virtualenv (`make` would first build the clone one of its own)."""
    state = private_checkout / "var" / "stack"
    fallback = run_stack.fallback_directory(state)
    as_root_here = os.geteuid() == 0
    assert not traversable_by_others(private_checkout)
    assert not fallback.exists()
    port = free_run_of_ports(2)
    stack = RunningStack(None, port, checkout=private_checkout)
    try:
        await asyncio.to_thread(stack.wait_ready)
        cluster = fallback / "postgres" if as_root_here else state / "postgres"
        assert f"data in {cluster}" in stack.output()
        assert f"log {state / f'daphne-{port + 1}.log'}" in stack.output()  # the clone's own
        url = f"http://127.0.0.1:{port}"
        reader = LiveReader(f"ws://127.0.0.1:{port}", "demo", origin=url).start()
        try:
            await reader.wait_for(lambda r: r.live.is_set(), timeout=20, what="live")
            api = ApiClient(url).login("demo", "liveblog-demo")
            answer = await asyncio.to_thread(api.post, "demo", "from a private checkout")
            await all_reach([reader], answer["seq"], timeout=10)
            assert answer["seq"] in reader.applied
        finally:
            await reader.stop()
        assert_stops_on_ctrl_c(stack, port)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
    if as_root_here:
        assert fallback.stat().st_uid == 0
        assert cluster.stat().st_uid == pwd.getpwnam("postgres").pw_uid


@pytest.fixture
def private_state():
    """A state directory the `postgres` user cannot reach (mkdtemp: 0700), and nothing of its
    /var/tmp fallback left afterwards."""
    state = Path(tempfile.mkdtemp(prefix="liveblog-private-state-"))
    fallback = run_stack.fallback_directory(state)
    try:
        yield state
    finally:
        if fallback.is_symlink():
            fallback.unlink()
        shutil.rmtree(fallback, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


@as_root
def test_a_private_state_gets_a_fallback_postgres_can_reach_made_once_and_found_again(
        private_state):
    fallback = run_stack.fallback_directory(private_state)
    assert not traversable_by_others(private_state)
    assert not fallback.exists()
    postgres = pwd.getpwnam("postgres")
    previous = os.umask(0o077)  # a cautious umask must not lock the `postgres` user out
    try:
        for _ in range(2):  # the second run finds what the first made
            directory = run_stack.cluster_directory(private_state)
            assert directory == fallback / "postgres"
            info = fallback.lstat()
            assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0
            assert stat.S_IMODE(info.st_mode) == 0o755
            assert PostgresServer(directory=directory)._own(directory) == directory
            for path in (directory, directory / "sockets"):
                assert (path.stat().st_uid, path.stat().st_gid) == (postgres.pw_uid,
                                                                    postgres.pw_gid)
            assert traversable_by_others(directory.parent)  # the directory is postgres's own
    finally:
        os.umask(previous)


@as_root
def test_a_fallback_that_is_not_roots_alone_is_refused(private_state):
    """/var/tmp is world-writable: a directory at the fallback's predictable name that another
    user made, or may write in, or a symlink there, is never handed to `postgres`."""
    fallback = run_stack.fallback_directory(private_state)
    nobody = pwd.getpwnam("nobody")
    fallback.mkdir()
    os.chmod(fallback, 0o777)
    with pytest.raises(SystemExit, match="not a directory of root's"):
        run_stack.cluster_directory(private_state)
    os.chmod(fallback, 0o755)
    os.chown(fallback, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(SystemExit, match="not a directory of root's"):
        run_stack.cluster_directory(private_state)
    fallback.rmdir()
    fallback.symlink_to(private_state)
    with pytest.raises(SystemExit, match="not a directory of root's"):
        run_stack.cluster_directory(private_state)
    assert not (private_state / "postgres").exists()


@as_root
def test_own_makes_the_missing_way_to_a_cluster_passable(private_state):
    """A kept cluster directory whose parents do not exist yet: they are made, passable by the
    `postgres` user whatever the umask, if the nearest existing one is; else nothing is made."""
    reachable = Path(tempfile.mkdtemp(prefix="liveblog-reachable-"))
    try:
        os.chmod(reachable, 0o755)
        directory = reachable / "a" / "b" / "postgres"
        previous = os.umask(0o077)
        try:
            assert PostgresServer(directory=directory)._own(directory) == directory
        finally:
            os.umask(previous)
        assert traversable_by_others(directory.parent)  # the directory is postgres's own
        assert directory.stat().st_uid == pwd.getpwnam("postgres").pw_uid

        behind = private_state / "a" / "postgres"
        with pytest.raises(AssertionError, match=re.escape(f"{private_state} is not reachable")):
            PostgresServer(directory=behind)._own(behind)
        assert not (private_state / "a").exists()
    finally:
        shutil.rmtree(reachable, ignore_errors=True)
