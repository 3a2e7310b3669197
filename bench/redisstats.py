"""A Redis server for the benchmark, and what Redis says about its own work.

`BenchRedis` is devstack's RedisServer (a free loopback port, no persistence), started in a
session of its own (a Ctrl-C in the terminal reaches only the benchmark, which stops it) with its
log in a file. `RedisStats` reads `INFO stats cpu commandstats errorstats` over one plain socket
(a few lines of RESP; no client library, so nothing but the INFO itself is sent) and
`stats_delta` turns two readings into the work Redis did between them: commands per command
name, CPU (used_cpu_sys + used_cpu_user, the whole process) and network bytes, with the
measurement's own INFO call taken out.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devstack.common import wait_until
from devstack.redis import REDIS_SERVER, RedisServer, answers_ping

from .processes import BenchError, stop_process_group

INFO_REQUEST = b"*5\r\n$4\r\nINFO\r\n$5\r\nstats\r\n$3\r\ncpu\r\n$12\r\ncommandstats\r\n" \
               b"$10\r\nerrorstats\r\n"
SERVER_REQUEST = b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"


class BenchRedis(RedisServer):
    """redis-server on a free loopback port, in a session of its own, logging to a file."""

    @property
    def log_path(self) -> Path:
        return self.directory / f"redis-{self.port}.log"

    def start(self) -> BenchRedis:
        binary = shutil.which("redis-server") or REDIS_SERVER
        if not Path(binary).exists():
            raise BenchError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--loglevel", "notice",
             "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_until(lambda: answers_ping(self.port), timeout=10, message="redis-server")
        except AssertionError as error:
            self.stop()
            raise BenchError(str(error)) from None
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)


@contextmanager
def bench_redis(directory: Path) -> Iterator[BenchRedis]:
    server = BenchRedis(directory)
    try:
        yield server.start()
    finally:
        server.stop()


def parse_info(text: str) -> dict[str, Any]:
    """INFO's `key:value` lines; `cmdstat_*` and `errorstat_*` values as dicts of numbers."""
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if key.startswith(("cmdstat_", "errorstat_")):
            info[key] = {name: float(number) for name, number in
                         (item.split("=", 1) for item in value.split(","))}
        else:
            info[key] = value
    return info


class RedisStats:
    """One socket to Redis that asks for INFO; each `read()` is a reading."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> RedisStats:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise BenchError("Redis closed the INFO connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _bulk(self, request: bytes) -> bytes:
        self.socket.sendall(request)
        header = self._line()
        if not header.startswith(b"$"):
            raise BenchError(f"Redis answered INFO with {header[:200]!r}")
        size = int(header[1:])
        while len(self.buffer) < size + 2:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise BenchError("Redis closed the INFO connection")
            self.buffer += chunk
        body, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return body

    def server(self) -> dict[str, Any]:
        return parse_info(self._bulk(SERVER_REQUEST).decode())

    def read(self) -> dict[str, Any]:
        """A reading: the monotonic time, INFO's numbers, and the size of this INFO's reply."""
        at = time.monotonic()
        body = self._bulk(INFO_REQUEST)
        reply_bytes = len(f"${len(body)}\r\n") + len(body) + 2
        return {"at": at, "info": parse_info(body.decode()), "reply_bytes": reply_bytes}


def _number(reading: dict[str, Any], key: str) -> float:
    return float(reading["info"].get(key, 0))


def _calls(reading: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    """{command: (calls, usec, failed + rejected calls)} of a reading."""
    return {key.removeprefix("cmdstat_"): (value.get("calls", 0), value.get("usec", 0),
                                           value.get("failed_calls", 0)
                                           + value.get("rejected_calls", 0))
            for key, value in reading["info"].items() if key.startswith("cmdstat_")}


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What Redis did between two readings, without the readings' own INFO: commands by name
    (calls, and the microseconds Redis spent in them), the total, CPU seconds (sys + user, net
    of INFO's time), network bytes in and out (net of the INFO request and of the first
    reading's reply), failed calls and errors."""
    old, new = _calls(before), _calls(after)
    commands, usec, failed = {}, {}, 0.0
    for name, (calls, spent, bad) in new.items():
        was = old.get(name, (0, 0, 0))
        if name == "info" or calls == was[0]:
            continue
        commands[name] = int(calls - was[0])
        usec[name] = round(spent - was[1])
        failed += bad - was[2]
    info_calls = new.get("info", (0, 0, 0))[0] - old.get("info", (0, 0, 0))[0]
    info_usec = new.get("info", (0, 0, 0))[1] - old.get("info", (0, 0, 0))[1]
    cpu = sum(_number(after, key) - _number(before, key)
              for key in ("used_cpu_sys", "used_cpu_user"))
    errors = {key.removeprefix("errorstat_"): value.get("count", 0)
              for key, value in after["info"].items() if key.startswith("errorstat_")}
    for key, value in before["info"].items():
        if key.startswith("errorstat_"):
            name = key.removeprefix("errorstat_")
            errors[name] = errors.get(name, 0) - value.get("count", 0)
    return {
        "seconds": round(after["at"] - before["at"], 3),
        "commands": sum(commands.values()),
        "total_commands_processed": int(_number(after, "total_commands_processed")
                                        - _number(before, "total_commands_processed")
                                        - info_calls),
        "by_command": dict(sorted(commands.items(), key=lambda item: -item[1])),
        "usec_by_command": usec,
        "cpu_s": round(max(0.0, cpu - info_usec / 1e6), 6),
        "net_in_bytes": int(_number(after, "total_net_input_bytes")
                            - _number(before, "total_net_input_bytes") - len(INFO_REQUEST)),
        "net_out_bytes": int(_number(after, "total_net_output_bytes")
                             - _number(before, "total_net_output_bytes")
                             - before["reply_bytes"]),
        "failed_calls": int(failed),
        "errors": {name: int(count) for name, count in errors.items() if count},
        "instantaneous_ops_per_sec": {"before": int(_number(before, "instantaneous_ops_per_sec")),
                                      "after": int(_number(after, "instantaneous_ops_per_sec"))},
    }
