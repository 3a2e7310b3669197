"""A private PostgreSQL cluster on a free loopback port: a throwaway one for a test or a benchmark
(removed afterwards), or a kept one for `make run-stack`.

Debian's `postgresql` package (installed by `make test`) provides the binaries under
/usr/lib/postgresql/<version>/bin; its own system cluster is never touched. A throwaway server is
a fresh `initdb` in a temporary directory with trust authentication on loopback only, and runs
without fsync: a test cluster has nothing worth keeping across a crash, and durability costs
most of the time a write takes.

PostgreSQL refuses to run as root. When run as root (CI, the developer machines), the
cluster belongs to the `postgres` system user: its directory is chown'ed to it and initdb,
postgres and pg_ctl are started with that user's uid/gid (subprocess's `user=`/`group=`, the
same as `runuser -u postgres --`, without an extra process between us and the server). Run as
anyone else, they run as the current user.

A missing installation is a failure, never a skip: a suite that silently skips its PostgreSQL
tests proves nothing about PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from .common import free_port, wait_until

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
# Two daphne processes with a pool of up to 20 each, writer processes, the test's own
# connections and pytest-django's: well above PostgreSQL's default of 100 is cheap insurance.
MAX_CONNECTIONS = 300


def postgres_bin_dir() -> Path:
    """The newest installed major version's bin directory, or an AssertionError that says how
    to get one."""
    candidates = []
    for initdb in POSTGRES_ROOT.glob("*/bin/initdb"):
        version = initdb.parent.parent.name
        if re.fullmatch(r"\d+(\.\d+)?", version):
            candidates.append((tuple(int(part) for part in version.split(".")), initdb.parent))
    if not candidates:
        raise AssertionError(
            f"PostgreSQL is not installed (no {POSTGRES_ROOT}/*/bin/initdb): `make test` installs "
            "it (apt-get install postgresql); tests never skip for a missing server"
        )
    return max(candidates)[1]


def _run_as() -> pwd.struct_passwd | None:
    """The account the cluster runs under: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise AssertionError(
            f"running as root, and there is no `{SUPERUSER}` system user to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from None


def traversable_by_others(path: Path) -> bool:
    """Whether `path` and every directory above it let another user pass (o+x)."""
    path = path.resolve()
    return all(directory.stat().st_mode & 0o001 for directory in (path, *path.parents))


def make_traversable(directory: Path) -> None:
    """Make `directory` and whichever of its parents are missing so that another user (the
    `postgres` account) can pass through all of them: the nearest one that exists must already
    let it, and each one made here gets mode 0755 whatever the umask (0700 would lock it out).
    Directories that exist are left as they are."""
    missing: list[Path] = []
    nearest = directory.absolute()
    while not nearest.exists():
        missing.append(nearest)
        nearest = nearest.parent
    if not traversable_by_others(nearest):
        raise AssertionError(
            f"{nearest} is not reachable by the `{SUPERUSER}` user, who must own the cluster: "
            "choose a directory every user can traverse"
        )
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        path.chmod(0o755)


class PostgresServer:
    """One cluster: `start()`, then `url` (its default database) or `create_database(name)`;
    `stop()` shuts it down and deletes its directory, unless the cluster lives in a `directory`
    given here (`make run-stack`): that one is kept, and started again as it was next time."""

    def __init__(self, *, database: str = "liveblog", port: int | None = None,
                 directory: Path | None = None) -> None:
        self.database = database
        self.port = port or free_port()
        self.bin_dir = postgres_bin_dir()
        self.account = _run_as()
        self.kept_in = directory
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None, "start() the server first"
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None, "start() the server first"
        return self.directory / "postgres.log"

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> PostgresServer:
        self.directory = self._make_directory()
        try:
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            self._launch(timeout)
            if not self.has_database(self.database):
                self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def _make_directory(self) -> Path:
        if self.kept_in is not None:
            return self._own(self.kept_in)
        parent = None
        if self.account is not None and not traversable_by_others(Path(tempfile.gettempdir())):
            parent = "/tmp"  # the postgres user must be able to reach its own directory
        return self._own(Path(tempfile.mkdtemp(prefix="liveblog-pg-", dir=parent)))

    def _own(self, directory: Path) -> Path:
        """`directory` and its sockets directory, made if missing, owned by the account (whose
        way in, the directories above, is made passable first)."""
        if self.account is not None:
            make_traversable(directory.parent)
        sockets = directory / "sockets"
        sockets.mkdir(parents=True, exist_ok=True)
        if self.account is not None:
            for path in (directory, sockets):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        return directory

    def _command(self, program: str, *args: str, **popen) -> dict:
        """Popen/run keyword arguments that start `program` as the cluster's account."""
        options: dict = {
            "args": [str(self.bin_dir / program), *args],
            # The account's own directory: postgres cannot chdir into root's working directory.
            "cwd": self.directory,
            # The C locale whatever the caller's environment: initdb derives the cluster's
            # locale from it and refuses one the machine has not generated.
            "env": {**os.environ, "LC_ALL": "C", "LANG": "C"},
            **popen,
        }
        if self.account is not None:
            options.update(
                user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[],
            )
            options["env"]["HOME"] = self.account.pw_dir
            options["env"]["USER"] = options["env"]["LOGNAME"] = self.account.pw_name
        return options

    def _initdb(self) -> None:
        result = subprocess.run(**self._command(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions",
            capture_output=True, text=True, timeout=120,
        ))
        if result.returncode != 0:
            raise AssertionError(f"initdb failed ({result.returncode}):\n{result.stderr}")

    def _launch(self, timeout: float) -> None:
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(**self._command(
                "postgres", "-D", str(self.data_dir), "-p", str(self.port),
                "-k", str(self.directory / "sockets"),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"max_connections={MAX_CONNECTIONS}",
                *self._durability(),
                stdout=log, stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches pytest, which then stops
                # the server in order, instead of both racing to exit.
                start_new_session=True,
            ))
        finally:
            log.close()
        wait_until(self._accepts_connections, timeout=timeout,
                   interval=0.1, message=f"PostgreSQL on port {self.port}")

    def _durability(self) -> list[str]:
        """Speed for a throwaway cluster, where nothing has to survive a crash; a kept one
        keeps PostgreSQL's defaults."""
        if self.kept_in is not None:
            return []
        return ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]

    def _accepts_connections(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"postgres exited with {self.process.returncode}:\n{self.log()}")
        try:
            with psycopg.connect(self.url_for("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def has_database(self, name: str) -> bool:
        with psycopg.connect(self.url_for("postgres"), connect_timeout=10) as db:
            found = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        return found is not None

    def create_database(self, name: str) -> str:
        """Create database `name` (UTF8, as the cluster); returns its URL."""
        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, close connections, exit), then
        SIGKILL if it hangs; the directory goes either way."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Its own session (start_new_session): the group is postgres and its children.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.directory is not None and self.kept_in is None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


@contextmanager
def postgres_server(*, database: str = "liveblog") -> Iterator[PostgresServer]:
    server = PostgresServer(database=database).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.postgres -- COMMAND…`: run COMMAND with DATABASE_URL pointing at
    a fresh cluster, which is removed afterwards (for trying things by hand)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    command = parser.parse_args(argv).command
    if command[:1] == ["--"]:
        command = command[1:]
    with postgres_server() as server:
        print(f"PostgreSQL {server.bin_dir.parent.name} at {server.url}", file=sys.stderr)
        if not command:
            print("no command given; the server stops now", file=sys.stderr)
            return 0
        started = time.monotonic()
        code = subprocess.call(command, env={**os.environ, "DATABASE_URL": server.url})
        print(f"{command[0]} exited {code} after {time.monotonic() - started:.1f}s",
              file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
