"""Run the database-heavy part of the unit suite against PostgreSQL (`make test` does, after the
main run on SQLite).

Production scale-out runs on PostgreSQL, whose row locks, constraint errors, JSON and time zone
handling differ from SQLite's; these files exercise every write and read path through them.
The server is a private cluster (devstack/postgres.py) that is removed afterwards;
pytest-django creates its test database in it.

    .venv/bin/python -m tests.support.postgres_suite [extra pytest arguments]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from devstack.common import REPO
from devstack.postgres import postgres_server

SUITE = [
    "tests/test_services.py",
    "tests/test_selectors.py",
    "tests/test_api.py",
    "tests/test_consumer.py",
    "tests/test_hub.py",
    "tests/test_photos.py",
    "tests/test_desk_consumer.py",
    "tests/test_scheduler.py",
]


def main(argv: list[str]) -> int:
    with postgres_server(database="liveblog") as server:
        env = {**os.environ, "DATABASE_URL": server.url}
        # Not the developer's Redis: these tests use the in-memory layer, as in the main run.
        env.pop("REDIS_URL", None)
        command = [
            sys.executable, "-m", "pytest", *SUITE,
            # The whole cluster is deleted afterwards, so pytest-django need not drop its test
            # database; dropping it would fail anyway while channels' test communicator (which
            # turns close_old_connections into a no-op) leaves an executor thread's connection
            # open, and the run would end with a spurious warning.
            "--reuse-db",
            # Keep the main run's cache (last failures) about the main run.
            "-p", "no:cacheprovider",
            *argv,
        ]
        print(f"PostgreSQL {server.bin_dir.parent.name} on port {server.port}: "
              f"{' '.join(SUITE)}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=REPO, env=env)
        print(f"PostgreSQL suite: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
