"""daphne exactly as `make run` runs it (`python -m project.serve`, daphne with Liveblog's
limits), plus what the benchmark measures from inside:

- one log line per full garbage collection (bench.gctrace);
- its open-file limit raised to the hard limit (10 000 idle readers are 10 000 sockets);
- a count of the database queries this process runs: a `connection_created` receiver puts an
  execute wrapper on every database connection Django opens, and the wrapper counts each
  statement that goes through Django's cursors (the ones `django_assert_num_queries` counts,
  BEGIN and savepoints included) in a process-wide, thread-safe counter. No application code
  changes;
- a loopback side channel for that count: with BENCH_PROBE_FILE set, a thread listens on a free
  127.0.0.1 port and writes the port to that file. Every connection to it gets one JSON line,
  `{"queries": …, "connections": …, "statements": {sql: count, …}}`, and is closed.

Arguments are daphne's: python -m bench.launch_daphne -v 0 -b HOST -p PORT app
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db.backends.signals import connection_created

from bench import gctrace
from bench.loadgen import raise_nofile_limit
from project import serve

PROBE_ENV = "BENCH_PROBE_FILE"
MAX_STATEMENTS = 200  # distinct SQL texts kept apart; the rest only add to the total


class QueryCounter:
    """Counts every statement run through a Django cursor in this process, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queries = 0
        self.connections = 0
        self.statements: Counter[str] = Counter()

    def install(self) -> None:
        connection_created.connect(self._connection_created, weak=False)

    def _connection_created(self, sender: object, connection: Any, **kwargs: object) -> None:
        with self._lock:
            self.connections += 1
        # A DatabaseWrapper keeps its execute_wrappers across reconnects (CONN_MAX_AGE=0
        # reconnects all the time): wrap it once, or every query would count many times.
        if self._execute not in connection.execute_wrappers:
            connection.execute_wrappers.append(self._execute)

    def _execute(self, execute: Callable, sql: str, params: Any, many: bool,
                 context: dict) -> Any:
        with self._lock:
            self.queries += 1
            if sql in self.statements or len(self.statements) < MAX_STATEMENTS:
                self.statements[sql] += 1
        return execute(sql, params, many, context)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"queries": self.queries, "connections": self.connections,
                    "statements": dict(self.statements)}


def serve_probe(counter: QueryCounter, port_file: Path) -> None:
    """Answer every loopback connection with the counter's snapshot, in a daemon thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    port_file.write_text(str(listener.getsockname()[1]))

    def answer() -> None:
        while True:
            client, _ = listener.accept()
            with client:
                client.sendall(json.dumps(counter.snapshot()).encode() + b"\n")

    threading.Thread(target=answer, name="bench-probe", daemon=True).start()


def main() -> None:
    gctrace.install()
    raise_nofile_limit()
    counter = QueryCounter()
    counter.install()
    if port_file := os.environ.get(PROBE_ENV):
        serve_probe(counter, Path(port_file))
    serve.main(sys.argv[1:])


if __name__ == "__main__":
    main()
