"""The reference ceiling: a bare `websockets` broadcast server, no Django, no channel layer.

    python -m bench.reference [--port 0] [--replay-events N --frame-bytes B]

A reader connects to any path and gets `{"type":"live","head":0}` (with `?since=0` and
--replay-events N, first N stored event frames of B bytes each, like a replay). Every text frame
sent to the `/control` path is broadcast unchanged to all readers. It prints `listening <port>`
once it accepts connections. What Liveblog does on top of this is what the benchmark weighs.
"""

import argparse
import asyncio
import json
import uuid

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench import gctrace
from bench.loadgen import raise_nofile_limit

LIVE_FRAME = json.dumps({"type": "live", "head": 0}, separators=(",", ":"))


# A Liveblog post.created event as the server writes it (liveblog/protocol.py, a post of
# bench/seed.py's body): the references send the same shape, so that a reader parses the same
# JSON (nested objects, escaped HTML) whichever server it reads; `size` pads body and HTML.
_BODY = ("**{seq}'** Goal! A curling shot from the edge of the box, past the keeper's outstretched"
         " glove and in off the post. The away end erupts; the home bench is on its feet appealing"
         " for offside, but the flag stays down and VAR confirms it. [Watch the replay]"
         "(https://example.com/replay) and *tell us* what you think.{pad}")
_HTML = ("<p><strong>{seq}'</strong> Goal! A curling shot from the edge of the box, past the "
         "keeper's outstretched glove and in off the post. The away end erupts; the home bench is"
         " on its feet appealing for offside, but the flag stays down and VAR confirms it. <a "
         'href="https://example.com/replay" rel="nofollow noopener noreferrer">Watch the replay'
         "</a> and <em>tell us</em> what you think.{pad}</p>")
_AT = "2026-12-01T15:24:48.192Z"


def event_frame(seq: int, size: int) -> str:
    """A JSON `event` frame for `seq` shaped as Liveblog's post.created, padded to `size` bytes
    (ASCII) when it is shorter."""

    def frame(pad: str) -> str:
        post = {"id": seq, "client_id": str(uuid.UUID(int=seq)),
                "author": {"username": "reporter", "name": "Demo Author"},
                "body": _BODY.format(seq=seq, pad=pad), "html": _HTML.format(seq=seq, pad=pad),
                "created_at": _AT, "edited_at": None, "pinned": False, "key_event": False,
                "photo": None}
        return json.dumps({"type": "event", "seq": seq, "kind": "post.created", "at": _AT,
                           "post": post}, separators=(",", ":"))

    short = size - len(frame(""))
    return frame(" " * ((short + 1) // 2)) if short > 0 else frame("")


class Reference:
    def __init__(self, replay: list[str]) -> None:
        self.readers: set[ServerConnection] = set()
        self.replay = replay

    async def handle(self, ws: ServerConnection) -> None:
        if ws.request.path == "/control":
            async for message in ws:
                broadcast(self.readers, message)
            return
        if ws.request.path.endswith("since=0"):
            for frame in self.replay:
                await ws.send(frame)
        await ws.send(LIVE_FRAME)
        self.readers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.readers.discard(ws)


async def serve_forever(port: int, replay: list[str]) -> None:
    reference = Reference(replay)
    # The listen backlog daphne and the Socket.IO server get too: a storm is not the kernel's.
    async with serve(reference.handle, "127.0.0.1", port, compression=None, backlog=1024,
                     max_size=None) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--replay-events", type=int, default=0)
    parser.add_argument("--frame-bytes", type=int, default=800)
    args = parser.parse_args()
    gctrace.install()
    raise_nofile_limit()
    replay = [event_frame(seq, args.frame_bytes) for seq in range(1, args.replay_events + 1)]
    try:
        asyncio.run(serve_forever(args.port, replay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
