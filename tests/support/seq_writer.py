"""One author's process for the concurrent-writers proof (tests/test_scale_out.py).

    python -m tests.support.seq_writer --barrier PORT --slug SLUG --username NAME --writer N

With DATABASE_URL in the environment, it sets Django up, looks up the blog and its author,
then connects to the test's start barrier (a TCP socket on loopback), says `ready`, and blocks
until the test answers `go`: every writer's setup (interpreter start, imports, the first
connection) is over before any of them posts, so their posts really race for the blog row.
It then publishes `--count` posts through liveblog.services.post_create, the same call every
transport makes, with bodies "N-0", "N-1", …, and prints one JSON line: the seqs it was given
and how long its posts took.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import uuid

BARRIER_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one writer process of the seq proof")
    parser.add_argument("--barrier", type=int, required=True, help="loopback port to wait on")
    parser.add_argument("--slug", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--writer", type=int, required=True)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from liveblog import services
    from liveblog.models import Blog

    author = get_user_model().objects.get(username=args.username)
    blog = Blog.objects.get(slug=args.slug)
    vendor = connection.vendor

    with socket.create_connection(("127.0.0.1", args.barrier), timeout=BARRIER_TIMEOUT) as gate:
        gate.sendall(b"ready\n")
        if not gate.recv(16).startswith(b"go"):
            print("the start barrier closed without `go`", file=sys.stderr)
            return 2
        started = time.monotonic()
        seqs = []
        for number in range(args.count):
            written = services.post_create(
                actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                body=f"{args.writer}-{number}",
            )
            seqs.append(written.seq)
        seconds = time.monotonic() - started

    print(json.dumps({"writer": args.writer, "vendor": vendor, "seqs": seqs, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
