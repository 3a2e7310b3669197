"""`make run-stack`: scale-out on one machine. PostgreSQL, Redis, two daphne processes and
Debian's nginx in front of them with the README's configuration (deploy/nginx.conf.template,
loopback values), all on 127.0.0.1; Ctrl-C stops everything.

    http://127.0.0.1:8000   nginx: round robin over the processes, websockets and event streams
    http://127.0.0.1:8001   daphne process 1 (open it directly to pin a tab to one process)
    http://127.0.0.1:8002   daphne process 2

PostgreSQL keeps its data in var/stack/postgres when the `postgres` user can reach that
directory (it must own the cluster when we run as root), else under /var/tmp; the uploaded
photos go to var/stack/media, shared by both processes and served by nginx; nginx's
configuration, pid and logs are in var/stack/nginx. Redis keeps nothing: the log in the
database is the truth, the channel layer only the fast path, so a fresh Redis is as good as an
old one. Try it: open a reader on :8001 and one on :8002, post on either; kill one process
(its pid is printed) and watch its readers move to the other through nginx on :8000.

The servers are devstack's process fixtures, the same code the tests' scale-out proofs and the
benchmarks run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import stat
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devstack.daphne import DaphneServer, Site  # noqa: E402
from devstack.nginx import NginxServer  # noqa: E402
from devstack.postgres import PostgresServer, traversable_by_others  # noqa: E402
from devstack.redis import RedisServer  # noqa: E402

STACK = REPO / "var" / "stack"


def cluster_directory(state: Path) -> Path:
    """Where PostgreSQL keeps the stack's data between runs: in `state` when the `postgres` user
    can reach it, else in a directory of root's under /var/tmp, made on the first run and found
    again by the next."""
    if os.geteuid() != 0 or traversable_by_others(state):
        return state / "postgres"
    # Root's home (or a mktemp -d folder) is private: `postgres` could not reach var/ inside it.
    return roots_own_directory(fallback_directory(state)) / "postgres"


def fallback_directory(state: Path) -> Path:
    """One directory per state directory, under /var/tmp (which, unlike /tmp, survives a
    reboot)."""
    digest = hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"liveblog-stack-{digest}"


def roots_own_directory(path: Path) -> Path:
    """`path`, made if missing, with mode 0755 (the `postgres` user passes through to its cluster;
    only root writes). Refused if it is anything but root's own directory that only root can write:
    /var/tmp is world-writable, so another user could have made one at this predictable name
    and swap what is inside for a symlink while we chown the cluster to `postgres`."""
    path.mkdir(mode=0o755, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise SystemExit(f"{path} is not a directory of root's that only root can write; "
                         "remove it, or pass --state a directory every user can traverse")
    path.chmod(0o755)  # whatever the umask was when it was made
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PostgreSQL + Redis + two daphne processes "
                                                 "behind nginx")
    parser.add_argument("--port", type=int, default=8000, help="nginx's port (8000)")
    parser.add_argument("--processes", type=int, default=2, help="daphne processes (2)")
    parser.add_argument("--layer", choices=("pubsub", "lists"), default="pubsub",
                        help="channels-redis layer (pubsub)")
    parser.add_argument("--state", type=Path, default=STACK,
                        help="where the data and logs are kept (var/stack)")
    args = parser.parse_args(argv)
    state = args.state.resolve()
    ports = [args.port + number for number in range(1, args.processes + 1)]

    with ExitStack() as stack:
        state.mkdir(parents=True, exist_ok=True)
        print("Starting PostgreSQL…", flush=True)
        postgres = PostgresServer(database="liveblog", directory=cluster_directory(state))
        stack.callback(postgres.stop)
        postgres.start()
        redis = RedisServer(state)
        stack.callback(redis.stop)
        redis.start()
        # The caller's own LIVEBLOG_* settings (the heartbeat, say) apply; SECRET_KEY comes from
        # the environment or var/secret_key, as with `make run`.
        site = Site(directory=state, env={
            **{key: value for key, value in os.environ.items() if key.startswith("LIVEBLOG_")},
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "LIVEBLOG_REDIS_LAYER": args.layer,
            "MEDIA_ROOT": str(state / "media"),
            # Plain http on loopback; browsers come through nginx, whose origin the processes
            # must trust (the websocket origin check compares ports), and whose X-Forwarded-For
            # they believe (the per-address limits count the browsers, not nginx).
            "LIVEBLOG_PLAIN_HTTP": "1",
            "LIVEBLOG_TRUSTED_PROXIES": "127.0.0.1",
            "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{args.port},http://localhost:{args.port}",
        })
        site.manage("migrate", "--noinput", "-v0")
        site.manage("collectstatic", "--noinput", "-v0")
        servers = []
        for port in ports:
            server = DaphneServer(site, port=port)
            stack.callback(server.stop)
            server.start(timeout=60)
            servers.append(server)
        nginx = NginxServer(ports, port=args.port, media_root=state / "media",
                            directory=state / "nginx")
        stack.callback(nginx.stop)
        nginx.start()
        print(site.manage("liveblog_demo", "--url", f"http://127.0.0.1:{args.port}"))
        print(f"  PostgreSQL       {postgres.url}  (data in {postgres.kept_in})")
        print(f"  Redis            {redis.url}  (layer: {args.layer})")
        for server in servers:
            print(f"  daphne           {server.url}/  (pid {server.process.pid}, "
                  f"log {server.log_path})")
        print(f"  nginx            http://127.0.0.1:{args.port}/ -> {', '.join(map(str, ports))}"
              f"  (pid {nginx.pid}, {nginx.config_path})")
        print("\nCtrl-C stops everything.", flush=True)
        wait_for_interrupt([server.process for server in servers])
    return 0


def wait_for_interrupt(processes: list[subprocess.Popen]) -> None:
    """Until Ctrl-C or SIGTERM. A daphne process that dies stays dead (that is the experiment);
    nginx sends new connections to the others."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    reported: set[int] = set()
    while not stopping.wait(1):
        for process in processes:
            if process.poll() is not None and process.pid not in reported:
                reported.add(process.pid)
                print(f"daphne pid {process.pid} exited ({process.returncode}); nginx sends "
                      "new connections to the others", flush=True)
    print("\nStopping…", flush=True)


if __name__ == "__main__":
    sys.exit(main())
