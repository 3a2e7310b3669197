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

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench import gctrace
from bench.loadgen import raise_nofile_limit

LIVE_FRAME = json.dumps({"type": "live", "head": 0}, separators=(",", ":"))


def event_frame(seq: int, size: int) -> str:
    """A JSON `event` frame for `seq`, padded to `size` bytes (ASCII)."""
    frame = json.dumps({"type": "event", "seq": seq, "kind": "post.created", "pad": ""},
                       separators=(",", ":"))
    return frame.replace('"pad":""', '"pad":"' + "x" * max(0, size - len(frame)) + '"')


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
