"""`python -m project.serve [daphne's arguments]`: daphne with Liveblog's limits.

daphne would buffer a websocket message of up to 1 MiB (its default) before the consumer's
LIVEBLOG_MAX_FRAME_BYTES check runs. Here Autobahn refuses a frame or message beyond a small
multiple of that check (closing with 1009), so a frame a little over it still gets `too_large`
with the socket kept (DESIGN.md), and one far beyond never costs more than this. An opening
handshake the application has not accepted within CONNECT_TIMEOUT_SECONDS is refused.

`make run`, `make run-stack`, the tests' and the benchmark's servers and the README's deployment
all start daphne this way. Arguments given after these win (argparse keeps the last).

A new connection must send its first request line and headers (a websocket upgrade's included)
within LIVEBLOG_HANDSHAKE_SECONDS, however it trickles them: Twisted's own timeout is reset by
every byte, so a client sending one byte a minute would hold a connection for days. The body
that follows (a photo upload on a slow network) is not timed.
"""

from __future__ import annotations

import os
import sys

# Frames between LIVEBLOG_MAX_FRAME_BYTES and this get `too_large`; beyond it, 1009.
MESSAGE_SIZE_FACTOR = 4
# The consumer accepts first thing in `connect`: 10 s is a server too busy to serve anyone.
CONNECT_TIMEOUT_SECONDS = 10


def limit_arguments() -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.conf import settings

    largest = settings.LIVEBLOG_MAX_FRAME_BYTES * MESSAGE_SIZE_FACTOR
    return [
        "--websocket-max-message-size", str(largest),
        "--websocket-max-frame-size", str(largest),
        "--websocket_connect_timeout", str(CONNECT_TIMEOUT_SECONDS),
    ]


def main(argv: list[str] | None = None) -> None:
    from daphne.cli import CommandLineInterface

    from project import lazylog
    from project.handshakes import LimitedServer

    lazylog.install()  # Autobahn's debug lines no longer cost every handshake

    arguments = argv if argv is not None else sys.argv[1:]
    cli = CommandLineInterface()
    cli.server_class = LimitedServer
    cli.run([*limit_arguments(), *arguments])


if __name__ == "__main__":
    main()
